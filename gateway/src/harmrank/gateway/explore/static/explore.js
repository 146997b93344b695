// The explorer. Every text from the API is put in the page with textContent, never innerHTML:
// prompts, responses, judges' answers and names are shown as text whatever they contain.
// The filter lives in the address bar, so a link to it can be shared.
"use strict";

(() => {
  const API = "/v1/explore";
  const WARNED = "harmrank-explore-warning-accepted";
  const TOKEN = "harmrank-explore-token";
  const FILTERS = ["category", "model", "a", "b", "agreement", "rbo_below", "p", "lists", "split",
    "position_effect", "judge", "rank", "beats", "q", "sort"];
  const SCOPE = ["dataset", "run"];
  const RBO_ONLY = ["rbo_below", "p", "lists"]; // kept in the URL only with an RBO threshold
  const PAGE = 100;
  const $ = (id) => document.getElementById(id);

  let items = []; // the listed prompts so far, in the filter's order
  let nextCursor = null; // the next page's cursor; null before the first page and after the last
  let current = -1;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function message(text) {
    $("message").textContent = text || "";
    $("message").hidden = !text;
  }

  function params() {
    return new URLSearchParams(window.location.search);
  }

  function apiQuery(extra) {
    const out = new URLSearchParams();
    for (const [k, v] of params()) if (SCOPE.includes(k) || FILTERS.includes(k)) out.set(k, v);
    for (const [k, v] of Object.entries(extra || {})) out.set(k, v);
    return out.toString();
  }

  function authorised() {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN);
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  }

  async function checked(response) {
    if (response.status === 401 || response.status === 403) {
      $("app").hidden = true;
      $("token-form").hidden = false;
      $("token").focus();
      throw new Error("a read token is needed");
    }
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      throw new Error((data && data.error) || `HTTP ${response.status}`);
    }
    return response;
  }

  async function call(path) {
    const response = await fetch(API + path, { headers: authorised(), credentials: "omit" });
    return (await checked(response)).json();
  }

  // A link opened by the browser carries no token: with one, the file is fetched with it and
  // handed to the browser as a download of the same name.
  async function download(event) {
    if (!sessionStorage.getItem(TOKEN)) return;
    event.preventDefault();
    const link = event.currentTarget;
    const fetched = await fetch(link.href, { headers: authorised(), credentials: "omit" });
    const response = await checked(fetched);
    const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const saved = el("a");
    saved.href = URL.createObjectURL(await response.blob());
    saved.download = named ? named[1] : "explore-export";
    document.body.append(saved);
    saved.click();
    saved.remove();
    setTimeout(() => URL.revokeObjectURL(saved.href), 60000);
  }

  function fillSelect(id, values, keep) {
    const select = $(id);
    for (const value of values) {
      const option = el("option", value);
      option.value = value;
      select.append(option);
    }
    select.value = keep || "";
  }

  function setUpFilters(page) {
    const p = params();
    fillSelect("f-category", page.categories, p.get("category"));
    fillSelect("f-model", page.models, p.get("model"));
    fillSelect("f-beats", page.models, p.get("beats"));
    const names = page.columns.map((c) => c.name);
    fillSelect("f-a", names, p.get("a"));
    fillSelect("f-b", names, p.get("b"));
    const judges = [...new Set(page.columns.filter((c) => c.kind === "judge").map((c) => c.annotator))];
    fillSelect("f-judge", judges, p.get("judge"));
    for (const name of ["agreement", "split", "q", "sort", "rbo_below", "p", "lists", "rank"]) {
      if (p.has(name)) $(`f-${name}`).value = p.get(name);
    }
    $("f-position_effect").checked = p.get("position_effect") === "true";
    $("export-csv").href = `${API}/export?${apiQuery({ format: "csv" })}`;
    $("export-jsonl").href = `${API}/export?${apiQuery({ format: "jsonl" })}`;
  }

  function applyFilters(event) {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const k of SCOPE) if (params().has(k)) next.set(k, params().get(k));
    for (const name of FILTERS) {
      const input = $(`f-${name}`);
      if (input.type === "checkbox") {
        if (input.checked) next.set(name, "true");
      } else if (input.value && !(RBO_ONLY.includes(name) && next.get("agreement") !== "rbo_below")
                 && !(name === "sort" && input.value === "order")) {
        next.set(name, input.value);
      }
    }
    window.location.search = next.toString();
  }

  function listItem(entry, index) {
    const li = el("li");
    li.dataset.index = String(index);
    li.dataset.promptId = entry.prompt_id;
    li.append(el("span", entry.prompt + (entry.truncated ? "…" : "")));
    if (entry.disagreement > 0) {
      li.append(el("span", ` · disagreement ${entry.disagreement.toFixed(2)}`, "dis"));
    }
    li.addEventListener("click", () => open(index));
    return li;
  }

  async function loadPage() {
    const query = { limit: PAGE };
    if (nextCursor !== null) query.cursor = nextCursor;
    const page = await call(`/prompts?${apiQuery(query)}`);
    const start = items.length;
    items = items.concat(page.items);
    page.items.forEach((entry, i) => $("list").append(listItem(entry, start + i)));
    nextCursor = page.next_cursor;
    $("more").hidden = nextCursor === null;
    $("counts").textContent = `${page.matched} of ${page.total} prompts match`;
    return page;
  }

  async function open(index) {
    if (index >= items.length && nextCursor !== null) await loadPage();
    if (index < 0 || index >= items.length) return;
    current = index;
    for (const li of $("list").children) li.classList.toggle("current", li.dataset.index === String(index));
    $("list").children[index].scrollIntoView({ block: "nearest" });
    const id = items[index].prompt_id;
    const shown = await call(`/prompts/${encodeURIComponent(id)}?${apiQuery()}`);
    showDetail(shown, index);
  }

  function showDetail(item, index) {
    const detail = $("detail");
    detail.replaceChildren();
    const title = el("h2", `Prompt ${index + 1} of ${$("counts").textContent.split(" ")[0]} · ${item.prompt_id}`);
    title.id = "detail-title";
    detail.append(title);
    if (item.category) detail.append(el("p", `Category: ${item.category}`));
    detail.append(el("div", item.prompt, "text prompt"));
    detail.append(rankTable(item));
    for (const missing of item.missing) {
      const order = missing.order === null ? "" : ` (order ${missing.order + 1})`;
      detail.append(el("p", `${missing.judge}${order} gave no ranking: ${missing.error_type}: ${missing.message || ""}`, "missing"));
    }
    const responses = el("div", null, "responses");
    for (const response of item.responses) responses.append(responseBox(response));
    detail.append(responses);
    detail.focus();
  }

  function rankCell(rank) {
    return rank === 0 ? "N/A" : String(rank);
  }

  function rankTable(item) {
    const table = el("table", null, "ranks");
    const head = el("tr");
    head.append(el("th", "Annotator"));
    for (const model of item.models) head.append(el("th", model));
    head.append(el("th", "Answer as given"));
    table.append(el("caption", "Rankings (0 = N/A; highest = most harmful; red = differs from most annotators)"));
    table.append(head);
    for (const ranking of item.rankings) {
      const row = el("tr");
      row.append(el("th", `${ranking.column} (${ranking.kind})`));
      item.models.forEach((model, i) => {
        const differs = ranking.disagrees_on.includes(model);
        const cell = el("td", rankCell(ranking.ranks[i]) + (differs ? " ≠" : ""), differs ? "differs" : "");
        row.append(cell);
      });
      const notes = [];
      if (ranking.repaired) notes.push("repaired after one retry");
      const changes = ranking.normalisations.map((n) => (n && typeof n === "object" ? n.kind : String(n)));
      if (changes.length) notes.push(`normalised: ${changes.join(", ")}`);
      row.append(el("td", ranking.raw_value + (notes.length ? `\n[${notes.join("; ")}]` : ""), "answer"));
      table.append(row);
    }
    return table;
  }

  function responseBox(response) {
    const box = el("article", null, "response");
    box.append(el("h3", response.display_name === response.model ? response.model : `${response.display_name} (${response.model})`));
    box.append(el("div", response.text, "text"));
    const more = el("details");
    more.append(el("summary", "Generation settings and server"));
    more.append(el("pre", JSON.stringify(response.generation || { source: response.source, note: "imported, not generated here" }, null, 2)));
    box.append(more);
    return box;
  }

  async function nextDisagreement() {
    for (let i = current + 1; ; i += 1) {
      if (i >= items.length) {
        if (nextCursor === null) { message("No further prompt with a disagreement."); return; }
        await loadPage();
      }
      if (items[i] && items[i].disagreement > 0) { await open(i); return; }
    }
  }

  function onKey(event) {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
    if (typing || event.ctrlKey || event.metaKey || event.altKey || $("app").hidden) return;
    const actions = {
      j: () => open(current + 1), ArrowRight: () => open(current + 1),
      k: () => open(current - 1), ArrowLeft: () => open(current - 1),
      d: nextDisagreement, "/": () => $("f-q").focus(),
    };
    const action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    message("");
    action().catch?.((error) => message(error.message));
  }

  async function start() {
    $("app").hidden = false;
    const p = params();
    $("scope").textContent = p.has("run") ? `· run ${p.get("run")}` : `· ${p.get("dataset") || ""}`;
    try {
      const page = await loadPage();
      setUpFilters(page);
      const wanted = p.get("prompt");
      const index = wanted ? items.findIndex((i) => i.prompt_id === wanted) : -1;
      if (index >= 0) await open(index);
    } catch (error) {
      message(error.message);
    }
  }

  function init() {
    $("accept").addEventListener("click", () => {
      sessionStorage.setItem(WARNED, "yes");
      $("warning").hidden = true;
      start();
    });
    $("token-entry").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN, $("token").value);
      window.location.reload();
    });
    $("filters").addEventListener("submit", applyFilters);
    for (const id of ["export-csv", "export-jsonl"]) {
      $(id).addEventListener("click", (event) => download(event).catch((e) => message(e.message)));
    }
    $("more").addEventListener("click", () => loadPage().catch((e) => message(e.message)));
    document.addEventListener("keydown", onKey);
    if (sessionStorage.getItem(WARNED) === "yes") {
      start();
    } else {
      $("warning").hidden = false;
      $("accept").focus();
    }
  }

  init();
})();
