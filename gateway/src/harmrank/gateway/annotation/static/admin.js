// The admin page: settings, invitations, progress and agreement of one dataset. Values from
// the server are put in the page with textContent only. The token stays in memory and goes with
// every call, reads included: a gateway may require a token to read.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  function message(text) {
    $("message").textContent = text || "";
    $("message").hidden = !text;
  }

  function base() {
    return `/v1/datasets/${encodeURIComponent($("dataset").value.trim())}/annotation`;
  }

  async function call(method, path, body) {
    const headers = {};
    const token = $("write-token").value;
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(base() + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = response.status === 204 ? null : await response.json();
    if (!response.ok) throw new Error((data && data.error) || `HTTP ${response.status}`);
    return data;
  }

  function table(id, columns, rows) {
    const t = $(id);
    t.replaceChildren();
    const head = t.insertRow();
    for (const c of columns) {
      const th = document.createElement("th");
      th.textContent = c;
      head.append(th);
    }
    for (const row of rows) {
      const tr = t.insertRow();
      for (const c of columns) tr.insertCell().textContent = row[c] === null ? "" : String(row[c]);
    }
  }

  async function load() {
    const progress = await call("GET", "/progress");
    $("k").value = progress.k;
    $("summary").textContent =
      `${progress.items_complete} of ${progress.items} items complete (k = ${progress.k}, ` +
      `effective ${progress.effective_k}); ${progress.rankings} rankings.`;
    table("annotators", ["invitation_id", "label", "annotator", "assigned", "done", "pending",
      "skipped", "flagged", "median_seconds", "revoked"], progress.annotators);
    table("items", ["prompt_id", "annotators", "done", "skipped", "flagged", "complete"],
      progress.per_item);
  }

  async function run(action) {
    try {
      message("");
      await action();
    } catch (error) {
      message(error.message);
    }
  }

  function start() {
    $("page-url").textContent = `${location.origin}/annotate/`;
    $("dataset-form").addEventListener("submit", (event) => {
      event.preventDefault();
      run(load);
    });
    $("save-k").addEventListener("click", () => run(async () => {
      await call("PUT", "/settings", { k: Number($("k").value) });
      await load();
    }));
    $("invite").addEventListener("click", () => run(async () => {
      const made = await call("POST", "/invitations", { count: 1, label: $("label").value || null });
      for (const invitation of made.invitations) {
        const li = document.createElement("li");
        li.textContent = `${invitation.label || "invitation " + invitation.id}: ${invitation.token}`;
        $("tokens").append(li);
      }
      await load();
    }));
    $("agreement").addEventListener("click", () => run(async () => {
      const result = await call("GET", `/agreement?p=${encodeURIComponent($("p").value)}&resamples=100`);
      const alpha = result.krippendorff_alpha.value;
      const pooled = result.pairwise_exact_pooled.value;
      $("agreement-summary").textContent =
        `Krippendorff's α (ordinal, ${result.humans.length} humans): ` +
        `${alpha === null ? "undefined" : alpha.toFixed(3)}; pooled pairwise exact match: ` +
        `${pooled === null ? "undefined" : pooled.toFixed(3)}; aggregate ties: ` +
        `${result.aggregate.n_ties}.`;
    }));
  }

  start();
})();
