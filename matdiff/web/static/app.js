// matdiff serve: the page. No inline scripts or styles (the server's CSP forbids them);
// mathematics is rendered by the KaTeX shipped with matdiff, through the DOM (katex.render).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const DEBOUNCE_MS = 350;
  const state = { expr: "", wrt: "", let: "", claim: "", tab: "result", target: "numpy" };
  let timer = null;
  let sequence = 0;
  let checkSequence = 0;
  let inflight = null;
  let lastGrad = null;

  // ------------------------------------------------------------ URL state

  function readHash() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    for (const key of Object.keys(state)) {
      if (params.has(key)) state[key] = params.get(key);
    }
  }

  function writeHash() {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(state)) {
      if (value && !(key === "tab" && value === "result") && !(key === "target" && value === "numpy")) {
        params.set(key, value);
      }
    }
    const hash = params.toString();
    history.replaceState(null, "", hash ? "#" + hash : location.pathname);
  }

  function query() {
    const params = new URLSearchParams({ expr: state.expr, wrt: state.wrt, let: state.let });
    return params.toString();
  }

  // ------------------------------------------------------------ rendering helpers

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function math(latex, display) {
    const box = el("div", { class: display ? "math display" : "math", "data-latex": latex });
    if (window.katex) {
      try {
        window.katex.render(latex, box, { displayMode: !!display, throwOnError: true, output: "htmlAndMathml" });
        return box;
      } catch (e) {
        box.classList.add("math-fallback");
      }
    }
    box.textContent = latex;
    return box;
  }

  function setStatus(text, kind) {
    const s = $("status");
    s.textContent = text;
    s.className = "status" + (kind ? " " + kind : "");
  }

  function showError(error) {
    hideErrors();
    const field = ["expr", "wrt", "let", "claim"].includes(error.field) ? error.field : "expr";
    const box = $("error-" + field);
    box.textContent = error.text || ("error: " + error.message);
    box.hidden = false;
    $(field).classList.add("invalid");
    $(field).setAttribute("aria-invalid", "true");
  }

  function hideErrors() {
    for (const field of ["expr", "wrt", "let", "claim"]) {
      $("error-" + field).hidden = true;
      $(field).classList.remove("invalid");
      $(field).removeAttribute("aria-invalid");
    }
  }

  // ------------------------------------------------------------ requests

  async function post(path, body, signal) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
    let data;
    try {
      data = await response.json();
    } catch (e) {
      data = { ok: false, error: { message: "the server answered " + response.status, text: "error: the server answered " + response.status, field: "expr" } };
    }
    return data;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(derive, DEBOUNCE_MS);
  }

  async function derive() {
    writeHash();
    if (!state.expr.trim()) {
      hideErrors();
      setStatus("");
      return;
    }
    const mine = ++sequence;
    if (inflight) inflight.abort();
    inflight = new AbortController();
    setStatus("deriving…", "busy");
    let data;
    try {
      data = await post("api/grad", { expr: state.expr, wrt: state.wrt, let: state.let }, inflight.signal);
    } catch (e) {
      if (e.name === "AbortError") return;
      if (mine === sequence) setStatus("cannot reach the matdiff server: is it still running?", "bad");
      return;
    }
    if (mine !== sequence) return; // a newer request is on its way
    if (!data.ok) {
      showError(data.error);
      setStatus(data.error.kind === "timeout" ? "abandoned: time limit" : "error", "bad");
      return;
    }
    hideErrors();
    lastGrad = data;
    renderResult(data);
    setStatus(data.checked ? "checked ✓" : "not checked", data.checked ? "good" : "warn");
    if (state.tab === "check" && state.claim.trim()) runCheck();
  }

  function renderResult(data) {
    const fn = $("function");
    clear(fn);
    fn.appendChild(math(data.function_latex, true));

    const table = $("variables");
    clear(table);
    const head = el("tr");
    for (const h of ["variable", "kind", "shape"]) head.appendChild(el("th", {}, h));
    table.appendChild(head);
    for (const v of data.variables) {
      const row = el("tr", { "data-variable": v.name });
      row.appendChild(el("td", {}, v.name));
      row.appendChild(el("td", {}, v.kind));
      row.appendChild(el("td", {}, v.shape));
      table.appendChild(row);
    }

    const grads = $("gradients");
    clear(grads);
    data.equations.forEach((line, i) => {
      const eq = math(line, true);
      eq.classList.add("equation");
      eq.setAttribute("data-kind", line.startsWith("\\mathrm{d}f") ? "differential" : "gradient");
      grads.appendChild(eq);
    });
    const plain = el("div", { class: "results-text" });
    for (const line of data.results) plain.appendChild(el("div", { class: "result-line" }, line));
    grads.appendChild(plain);
    for (const [name, g] of Object.entries(data.gradients)) {
      const row = el("div", { class: "gradient-text", "data-wrt": name });
      row.appendChild(el("span", { class: "label" }, "∂f/∂" + name + " in matdiff's language: "));
      row.appendChild(el("code", { class: "gradient-source" }, g.gradient));
      grads.appendChild(row);
    }

    const where = $("where");
    clear(where);
    if (data.where.length) {
      where.appendChild(el("div", { class: "where-title" }, "where"));
      for (const line of data.where) where.appendChild(el("div", { class: "where-line" }, line));
    }
    const check = $("selfcheck");
    check.textContent = data.check;
    check.className = "selfcheck " + (data.checked ? "good" : "warn");

    renderSteps(data.methods);
    renderGraph(data.graph);
    renderCode(data.code);
  }

  function renderSteps(methods) {
    const box = $("steps");
    clear(box);
    for (const method of methods) {
      box.appendChild(el("h3", {}, "Method: " + method.title));
      const list = el("ol", { class: "steps", "data-method": method.name });
      for (const step of method.steps) {
        const item = el("li");
        item.appendChild(el("div", { class: "step-line" }, step.line));
        item.appendChild(el("div", { class: "rule" }, step.rule));
        list.appendChild(item);
      }
      box.appendChild(list);
      for (const note of method.notes || []) box.appendChild(el("p", { class: "note" }, "note: " + note));
    }
  }

  function renderGraph(svg) {
    const box = $("graph");
    clear(box);
    $("graph-download").setAttribute("href", "api/graph.svg?" + query());
    if (!svg) {
      box.appendChild(el("p", {}, "The expression is too large to draw."));
      return;
    }
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    const root = doc.documentElement;
    if (root && root.nodeName === "svg") box.appendChild(document.importNode(root, true));
  }

  function renderCode(code) {
    const targets = $("code-targets");
    clear(targets);
    const names = Object.keys(code);
    if (!names.includes(state.target)) state.target = names[0];
    for (const name of names) {
      const b = el("button", { type: "button", class: "target" + (name === state.target ? " active" : ""), "data-target": name }, name);
      b.addEventListener("click", () => {
        state.target = name;
        writeHash();
        renderCode(code);
      });
      targets.appendChild(b);
    }
    $("code").textContent = code[state.target];
    $("download-code").setAttribute("href", "api/matdiff_grad.py?" + query());
  }

  async function runCheck() {
    writeHash();
    const verdict = $("verdict");
    if (!state.expr.trim() || !state.claim.trim()) {
      verdict.hidden = true;
      return;
    }
    setStatus("checking…", "busy");
    const mine = ++checkSequence;
    let data;
    try {
      data = await post("api/check", { expr: state.expr, wrt: state.wrt, let: state.let, claim: state.claim });
    } catch (e) {
      setStatus("cannot reach the matdiff server: is it still running?", "bad");
      return;
    }
    if (mine !== checkSequence) return;
    if (!data.ok) {
      showError(data.error);
      verdict.hidden = true;
      setStatus("error", "bad");
      return;
    }
    hideErrors();
    verdict.hidden = false;
    verdict.className = "verdict " + data.verdict;
    verdict.setAttribute("data-verdict", data.verdict);
    clear(verdict);
    const [first, ...rest] = data.text.split("\n");
    verdict.appendChild(el("div", { class: "verdict-head" }, first));
    for (const line of rest) verdict.appendChild(el("div", { class: "verdict-line" }, line));
    setStatus(data.verdict, data.verdict === "wrong" ? "bad" : "good");
  }

  // ------------------------------------------------------------ tabs and wiring

  function showTab(name) {
    state.tab = name;
    for (const b of document.querySelectorAll("[data-tab]")) {
      b.setAttribute("aria-selected", String(b.dataset.tab === name));
    }
    for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== "panel-" + name;
    writeHash();
  }

  function init() {
    readHash();
    for (const key of ["expr", "wrt", "let", "claim"]) {
      $(key).value = state[key];
      $(key).addEventListener("input", () => {
        state[key] = $(key).value;
        if (key === "claim") {
          writeHash();
        } else {
          schedule();
        }
      });
    }
    $("claim").addEventListener("keydown", (e) => {
      if (e.key === "Enter") runCheck();
    });
    $("check-button").addEventListener("click", runCheck);
    for (const b of document.querySelectorAll("[data-tab]")) {
      b.addEventListener("click", () => showTab(b.dataset.tab));
    }
    $("copy-code").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText($("code").textContent);
        setStatus("code copied", "good");
      } catch (e) {
        const range = document.createRange();
        range.selectNodeContents($("code"));
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        setStatus("code selected: press Ctrl-C to copy", "warn");
      }
    });
    $("share").addEventListener("click", async () => {
      writeHash();
      try {
        await navigator.clipboard.writeText(location.href);
        setStatus("link copied", "good");
      } catch (e) {
        setStatus("copy the address bar to share", "warn");
      }
    });
    window.addEventListener("hashchange", () => {
      readHash();
      for (const key of ["expr", "wrt", "let", "claim"]) $(key).value = state[key];
      showTab(state.tab);
      derive();
    });
    showTab(state.tab);
    if (!state.expr) {
      state.expr = "tr(A*X*B)";
      $("expr").value = state.expr;
    }
    derive();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
