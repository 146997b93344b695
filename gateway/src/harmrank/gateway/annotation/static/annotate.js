// The annotation page. Every piece of model output is put in the page with textContent, never
// innerHTML: it is shown as text whatever it contains. The session lives in an HttpOnly cookie
// this script cannot read; it only calls the API under /annotate/api/.
"use strict";

(() => {
  const API = "/annotate/api";
  const $ = (id) => document.getElementById(id);
  const SECTIONS = ["sign-in", "warning", "item", "finished"];

  let item = null; // the item on screen: {prompt_id, prompt, responses: [{label, text}]}
  let ranks = {}; // label -> rank (0 = N/A) for the item on screen
  let current = 0; // index of the chosen response
  let flagged = false;
  let shownAt = 0;
  let busy = false;

  function show(id) {
    for (const s of SECTIONS) $(s).hidden = s !== id;
  }

  function message(text, ok = false) {
    const box = $("message");
    box.textContent = text || "";
    box.hidden = !text;
    box.classList.toggle("ok", ok);
  }

  async function call(method, path, body) {
    const options = { method, headers: {}, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(API + path, options);
    const data = response.status === 204 ? null : await response.json();
    if (!response.ok) {
      const error = new Error((data && data.error) || `HTTP ${response.status}`);
      error.status = response.status;
      error.type = data && data.error_type;
      throw error;
    }
    return data;
  }

  function setProgress(progress) {
    const { done, total, skipped } = progress;
    $("progress-bar").max = Math.max(total, 1);
    $("progress-bar").value = done;
    const extra = skipped ? `, ${skipped} skipped` : "";
    $("progress-text").textContent = `${done} of ${total} done${extra}`;
    $("finished-progress").textContent = `${done} ranked${extra}.`;
  }

  function showState(state) {
    $("who").hidden = false;
    $("who-name").textContent = state.annotator;
    $("who-dataset").textContent = state.dataset;
    setProgress(state.progress);
    if (!state.warning_accepted) {
      $("warning-text").textContent = state.content_warning;
      show("warning");
      $("accept").focus();
      return Promise.resolve();
    }
    return loadNext();
  }

  async function loadNext() {
    showItem(await call("GET", "/next"));
  }

  function showItem(next) {
    setProgress(next.progress);
    if (next.finished) {
      item = null;
      show("finished");
      return;
    }
    item = next;
    ranks = {};
    current = 0;
    flagged = false;
    $("flag").setAttribute("aria-pressed", "false");
    $("note").value = "";
    $("prompt").textContent = item.prompt;
    renderResponses();
    show("item");
    shownAt = performance.now();
  }

  function renderResponses() {
    const list = $("responses");
    list.replaceChildren();
    const n = item.responses.length;
    item.responses.forEach((response, index) => {
      const li = document.createElement("li");
      li.className = "response" + (index === current ? " current" : "");
      li.dataset.label = response.label;
      li.addEventListener("click", () => choose(index));
      const title = document.createElement("h3");
      title.textContent = `Response ${response.label} `;
      const value = document.createElement("span");
      value.className = "rank-value";
      value.textContent = rankText(ranks[response.label]);
      title.append(value);
      const text = document.createElement("div");
      text.className = "text";
      text.textContent = response.text;
      const buttons = document.createElement("div");
      buttons.className = "ranks";
      buttons.setAttribute("role", "group");
      buttons.setAttribute("aria-label", `Rank of response ${response.label}`);
      for (let r = 0; r <= n; r += 1) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = r === 0 ? "N/A" : String(r);
        b.setAttribute("aria-pressed", String(ranks[response.label] === r));
        b.addEventListener("click", (event) => {
          event.stopPropagation();
          current = index;
          setRank(r, false);
        });
        buttons.append(b);
      }
      li.append(title, text, buttons);
      list.append(li);
    });
  }

  function rankText(rank) {
    if (rank === undefined) return "· not ranked yet";
    return rank === 0 ? "· not harmful (N/A)" : `· rank ${rank}`;
  }

  function choose(index) {
    current = index;
    renderResponses();
  }

  function setRank(rank, advance) {
    const label = item.responses[current].label;
    if (rank === null) delete ranks[label];
    else ranks[label] = rank;
    if (advance && current < item.responses.length - 1) current += 1;
    message("");
    renderResponses();
  }

  // The same rules the server applies: every response ranked or N/A, no ties, no gaps.
  function problem() {
    const labels = item.responses.map((r) => r.label);
    const missing = labels.filter((l) => ranks[l] === undefined);
    if (missing.length) return `Rank or mark N/A every response (missing: ${missing.join(", ")}).`;
    const harmful = labels.map((l) => ranks[l]).filter((r) => r > 0).sort((a, b) => a - b);
    for (let i = 1; i < harmful.length; i += 1) {
      if (harmful[i] === harmful[i - 1]) {
        return `Ties are not allowed: rank ${harmful[i]} is given more than once.`;
      }
    }
    if (harmful.some((r, i) => r !== i + 1)) {
      const k = harmful.length;
      return `Gaps are not allowed: the ${k} harmful response(s) need ranks 1..${k}.`;
    }
    return null;
  }

  function seconds() {
    return Math.round((performance.now() - shownAt) / 100) / 10;
  }

  async function guarded(action) {
    if (busy) return;
    busy = true;
    try {
      await action();
    } catch (error) {
      if (error.status === 401) {
        item = null;
        $("who").hidden = true;
        show("sign-in");
      } else if (error.type === "not_assigned") {
        await loadNext();
      }
      message(error.message);
    } finally {
      busy = false;
    }
  }

  function submit() {
    if (!item) return;
    const wrong = problem();
    if (wrong) {
      message(wrong);
      return;
    }
    const body = { ranks, seconds: seconds(), flagged, note: $("note").value };
    guarded(async () => {
      const next = await call("POST", `/items/${encodeURIComponent(item.prompt_id)}/ranking`, body);
      message("Saved.", true);
      showItem(next);
    });
  }

  function skip() {
    if (!item) return;
    const body = { seconds: seconds(), note: $("note").value };
    guarded(async () => {
      const next = await call("POST", `/items/${encodeURIComponent(item.prompt_id)}/skip`, body);
      message("Skipped.", true);
      showItem(next);
    });
  }

  function toggleFlag() {
    flagged = !flagged;
    $("flag").setAttribute("aria-pressed", String(flagged));
  }

  function onKey(event) {
    if (!item || $("item").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target instanceof HTMLInputElement) {
      if (event.key === "Enter") {
        event.preventDefault();
        submit();
      }
      return;
    }
    const key = event.key;
    const n = item.responses.length;
    let handled = true;
    if (key === "ArrowDown") choose(Math.min(current + 1, n - 1));
    else if (key === "ArrowUp") choose(Math.max(current - 1, 0));
    else if (key === "n" || key === "N" || key === "0") setRank(0, true);
    else if (/^[1-9]$/.test(key) && Number(key) <= n) setRank(Number(key), true);
    else if (key === "Backspace" || key === "Delete") setRank(null, false);
    else if (key === "Enter") submit();
    else if (key === "f" || key === "F") toggleFlag();
    else if (key === "s" || key === "S") skip();
    else handled = false;
    if (handled) event.preventDefault();
  }

  function signIn(event) {
    event.preventDefault();
    const body = { name: $("name").value, token: $("token").value };
    guarded(async () => {
      const state = await call("POST", "/session", body);
      $("token").value = "";
      message("");
      await showState(state);
    });
  }

  function accept() {
    guarded(async () => {
      const state = await call("POST", "/warning");
      await showState(state);
    });
  }

  function signOut() {
    guarded(async () => {
      await call("DELETE", "/session");
      item = null;
      $("who").hidden = true;
      show("sign-in");
    });
  }

  // A sign-in link carries the token in the fragment (never sent to a server, so never in an
  // access log): fill it in, then take it out of the address bar and the history.
  function tokenFromLink() {
    const found = new URLSearchParams(location.hash.slice(1)).get("token");
    if (found) {
      $("token").value = found;
      history.replaceState(null, "", location.pathname + location.search);
    }
  }

  async function start() {
    tokenFromLink();
    $("sign-in-form").addEventListener("submit", signIn);
    $("accept").addEventListener("click", accept);
    $("submit").addEventListener("click", submit);
    $("skip").addEventListener("click", skip);
    $("flag").addEventListener("click", toggleFlag);
    $("sign-out").addEventListener("click", signOut);
    document.addEventListener("keydown", onKey);
    try {
      await showState(await call("GET", "/state"));
    } catch (error) {
      show("sign-in");
      if (error.status !== 401) message(error.message);
    }
    document.body.dataset.ready = "true";
  }

  start();
})();
