"use strict";
/* wgtrace serve: the labs of this server, live. Our own plain script: no library, no build step.
   The state comes inlined in the page (#initial), then as server-sent events from /events
   ("lab": one lab changed, "gone": a lab was taken down, "snapshot": everything). Every word comes
   from #texts (texts/<lang>.toml, table [serve]). Text is always set as text, never as HTML; the
   only markup inserted is the server's own SVG picture. */
(() => {
  const T = JSON.parse(document.getElementById("texts").textContent);
  const init = JSON.parse(document.getElementById("initial").textContent);
  const say = (key, p = {}) => (T[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => (p[k] ?? "?"));
  const S = {run: init.run, seq: init.seq, probes: init.probes, whyNot: init.why_not,
             labs: new Map(), pictures: init.pictures || {}, parsed: new Map()};
  const cards = new Map();           // lab name -> its card's elements
  const main = document.getElementById("labs");
  const $ = id => document.getElementById(id);

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) if (k != null) e.append(k.nodeType ? k : String(k));
    return e;
  }
  const clock = t => new Date(t * 1000).toLocaleTimeString();

  /* --- pictures: parsed once per picture, cloned into each card, scaled to the card ------------ */
  function svgOf(key, text) {
    let svg = S.parsed.get(key);
    if (!svg) {
      const tpl = document.createElement("template");
      tpl.innerHTML = text;
      svg = tpl.content.querySelector("svg");
      if (!svg) return null;
      svg.setAttribute("viewBox", `0 0 ${svg.getAttribute("width")} ${svg.getAttribute("height")}`);
      svg.removeAttribute("width"); svg.removeAttribute("height");
      svg.setAttribute("class", "topology");
      if (S.parsed.size > 200) S.parsed.clear();
      S.parsed.set(key, svg);
    }
    return svg.cloneNode(true);
  }

  /* --- one card per lab ---------------------------------------------------------------------- */
  function card(name) {
    let c = cards.get(name);
    if (c) return c;
    c = {picKey: null, nodesKey: null, localError: null, gone: false};
    c.badge = h("span", {class: "badge"});
    c.file = h("span", {class: "file"});
    c.stage = h("p", {class: "stage"});
    c.note = h("p", {class: "note", hidden: true});
    c.picture = h("div", {class: "picture"});
    c.progress = h("p", {class: "progress"});
    c.matrix = h("div", {class: "matrix"});
    c.src = h("select", {class: "src", "aria-label": say("from")});
    c.dst = h("select", {class: "dst", "aria-label": say("to")});
    c.kind = h("select", {class: "kind", "aria-label": say("kind"), onchange: () => { c.port.hidden = c.kind.value === "icmp"; }},
               ["icmp", "tcp", "udp"].map(k => h("option", {value: k}, say("kind-" + k))));
    c.port = h("input", {class: "port", type: "number", min: 1, max: 65535, value: 22, hidden: true,
                         "aria-label": say("port")});
    c.go = h("button", {class: "diagnose", type: "submit"}, say("diagnose"));
    c.check = h("button", {class: "check", type: "button", onclick: () => checkAll(name)}, say("check-all"));
    c.why = h("p", {class: "why", hidden: true});
    c.form = h("form", {class: "probe", onsubmit: e => { e.preventDefault(); diagnose(name); }},
               h("span", {}, say("from")), c.src, h("span", {}, say("to")), c.dst, c.kind, c.port, c.go);
    c.verdict = h("div", {class: "verdict", hidden: true});
    c.root = h("section", {class: "lab", "data-lab": name},
               h("header", {}, h("h2", {}, name), c.badge, c.file), c.stage, c.note,
               h("div", {class: "body"}, c.picture,
                 h("div", {class: "side"}, c.progress, c.matrix, c.check, c.form, c.why, c.verdict)));
    cards.set(name, c);
    return c;
  }

  function options(select, nodes, pick) {
    const had = select.value;
    select.replaceChildren(...nodes.map(n => h("option", {value: n}, n)));
    select.value = nodes.includes(had) ? had : pick;
  }

  function render(lab) {
    const c = card(lab.name), p = lab.probe || {};
    c.gone = false;
    c.root.dataset.status = lab.status;
    c.badge.className = "badge s-" + lab.status;
    c.badge.textContent = say("status-" + lab.status);
    c.file.textContent = lab.file;
    // a lab without a walkthrough (only its base stage) has no stage to tell
    c.stage.textContent = lab.stage.index >= 0 && lab.stage.of > 0 ? say("stage", lab.stage) : "";
    c.stage.hidden = !c.stage.textContent;
    const note = lab.missing.length ? say("missing", {nodes: lab.missing.join(", ")}) : lab.error;
    c.note.hidden = !note; c.note.textContent = note || "";
    // the picture: the diagnosis's, with its path, or the plain one
    const d = p.diagnosis;
    const key = d ? "d" + d.at : lab.picture;
    if (key !== c.picKey) {
      const svg = d ? svgOf(key, d.picture) : lab.picture && S.pictures[lab.picture] ? svgOf(key, S.pictures[lab.picture]) : null;
      c.picture.replaceChildren(...(svg ? [svg] : []));
      c.picKey = key;
    }
    c.progress.textContent = progressText(lab.progress);
    c.progress.hidden = !lab.progress;
    c.matrix.replaceChildren(matrixOf(lab));
    // the probe form: nodes kept as the user picked them
    const nodesKey = lab.nodes.join(" ");
    if (nodesKey !== c.nodesKey) {
      options(c.src, lab.nodes, lab.probe_pair[0]);
      options(c.dst, lab.nodes, lab.probe_pair[1]);
      c.nodesKey = nodesKey;
    }
    const why = !S.probes ? S.whyNot : lab.status !== "up" ? say("not-up") :
                p.running ? say("running", {what: p.running}) : "";
    for (const el of [c.src, c.dst, c.kind, c.port, c.go]) el.disabled = !!why;
    c.check.disabled = !!why || !lab.checks;
    c.check.hidden = !lab.checks;
    c.why.textContent = why; c.why.hidden = !why;
    c.why.classList.toggle("busy", !!p.running);
    verdictOf(c, d, c.localError || p.error);
  }

  function progressText(pr) {
    if (!pr) return "";
    const last = pr.last ? say(pr.last.cause === "reachable" ? "last-ok" : "last-stop", pr.last) : "";
    if (pr.kind === "lesson")
      return say(pr.finished ? "lesson-done" : "lesson", pr) + last;
    return say(pr.finished ? "exercise-done" : "exercise", pr) + last;
  }

  function matrixOf(lab) {
    const m = lab.matrix;
    if (!m) return h("p", {class: "none"}, lab.checks ? say("no-matrix") : say("no-checks"));
    const head = h("tr", {}, h("th", {}, say("src-dst")), m.dsts.map(d => h("th", {}, d)));
    const rows = m.srcs.map((s, i) => h("tr", {}, h("th", {}, s), m.cells[i].map(cell =>
      !cell ? h("td", {class: "na"}, "-") :
      cell.ok ? h("td", {class: "ok"}, say("ok")) :
      h("td", {class: "bad", title: say("stopped-at-node", cell)}, `${cell.cause} @${cell.stop || "?"}`))));
    return h("table", {class: "checks"},
             h("caption", {}, say(m.passed ? "matrix-pass" : "matrix-fail", {stage: m.stage, time: clock(m.at)})),
             head, rows);
  }

  function verdictOf(c, d, error) {
    const v = c.verdict;
    if (error) {
      v.hidden = false; v.className = "verdict failed";
      v.replaceChildren(h("p", {class: "error"}, error));
      return;
    }
    if (!d) { v.hidden = true; v.replaceChildren(); return; }
    v.hidden = false;
    v.className = "verdict " + (d.reachable ? "reachable" : "stopped");
    v.dataset.cause = d.cause;
    const s = d.stop;
    const parts = [
      h("p", {class: "headline"}, h("b", {class: "cause"}, d.cause), " ",
        say("pair", {src: d.src, dst: d.dst, probe: d.probe})),
      s && !d.reachable ? h("p", {class: "where"}, say("stopped-at", {node: s.node, iface: s.iface || "-", phase: say("phase-" + s.phase)})) : null,
      h("p", {class: "explanation"}, d.explanation),
      d.fix.length ? h("div", {class: "fix"}, h("h3", {}, say("fix")),
                       h("pre", {}, d.fix.map(f => `${f.node}# ${f.command}`).join("\n"))) : null,
      d.hops.length ? h("details", {class: "hops"}, h("summary", {}, say("path", {n: d.hops.length})),
                        h("ol", {}, d.hops.map(x => h("li", {}, `${x.node} ${x.iface} ${x.dir} (${say("phase-" + x.role)})`)))) : null,
      d.evidence.length ? h("details", {class: "evidence"}, h("summary", {}, say("evidence", {n: d.evidence.length})),
                            h("ul", {}, d.evidence.map(e => h("li", {}, `[${e.node}] ${e.detail}`)))) : null,
      h("p", {class: "when"}, say("when", {time: clock(d.at), seconds: d.seconds})),
    ];
    v.replaceChildren(...parts.filter(Boolean));
  }

  function markGone(name, at) {
    const c = cards.get(name);
    S.labs.delete(name);
    if (!c || c.gone) return;
    c.gone = true;
    c.root.dataset.status = "gone";
    c.badge.className = "badge s-gone";
    c.badge.textContent = say("status-gone");
    c.note.hidden = false;
    c.note.textContent = say("gone", {time: clock(at || Date.now() / 1000)});
    for (const el of [c.src, c.dst, c.kind, c.port, c.go, c.check]) el.disabled = true;
    c.why.hidden = true;
  }

  /* --- the whole page ------------------------------------------------------------------------- */
  function summary() {
    const count = {};
    for (const l of S.labs.values()) count[l.status] = (count[l.status] || 0) + 1;
    const gone = [...cards.values()].filter(c => c.gone).length;
    const parts = [say("count", {n: S.labs.size})];
    for (const [st, n] of Object.entries(count)) parts.push(say("count-" + st, {n}));
    if (gone) parts.push(say("count-gone", {n: gone}));
    $("summary").textContent = S.labs.size || gone ? parts.join(" · ") : say("no-labs");
  }

  function place(names) {
    // cards in name order; new ones inserted where they belong
    const want = [...new Set([...names, ...cards.keys()])].sort();
    const frag = document.createDocumentFragment();
    let changed = want.length !== main.children.length;
    want.forEach((n, i) => { if (main.children[i] !== cards.get(n).root) changed = true; });
    if (!changed) return;
    for (const n of want) frag.append(cards.get(n).root);
    main.replaceChildren(frag);
    filter();
  }

  function snapshot(snap) {
    Object.assign(S.pictures, snap.pictures || {});
    const names = new Set(snap.labs.map(l => l.name));
    for (const name of [...cards.keys()]) if (!names.has(name)) markGone(name);
    for (const lab of snap.labs) { S.labs.set(lab.name, lab); render(lab); }
    S.seq = snap.seq; if (snap.run) S.run = snap.run;
    place(names);
    summary();
  }

  function filter() {
    const q = $("filter").value.trim().toLowerCase();
    for (const [name, c] of cards) c.root.hidden = !!q && !name.includes(q);
  }

  /* --- probes from the page --------------------------------------------------------------------- */
  async function post(name, what, body, running) {
    const c = cards.get(name);
    c.localError = null;
    const lab = S.labs.get(name);
    if (lab) { lab.probe = {...lab.probe, running}; render(lab); }
    let data = null;
    try {
      const r = await fetch(`/api/labs/${encodeURIComponent(name)}/${what}`,
                            {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
      const got = await r.json().catch(() => ({error: say("bad-answer", {status: r.status})}));
      if (r.ok) data = got; else c.localError = got.error;
    } catch (e) {
      c.localError = say("lost");
    }
    // the stream says the same soon; the answer is shown at once, and a refusal too
    const now = S.labs.get(name);
    if (now && !c.gone) {
      now.probe = {...now.probe, running: null, ...(data && what === "diagnose" ? {error: null, diagnosis: data} : {})};
      render(now);
    } else if (c.localError) verdictOf(c, null, c.localError);
    return data;
  }

  function diagnose(name) {
    const c = cards.get(name), kind = c.kind.value;
    return post(name, "diagnose", {src: c.src.value, dst: c.dst.value, kind, port: kind === "icmp" ? 0 : Number(c.port.value)},
                `${c.src.value} ${c.dst.value}`);
  }

  function checkAll(name) {
    return post(name, "check", {}, "check --all");
  }

  /* --- live updates ------------------------------------------------------------------------------- */
  let es = null;
  function connect() {
    if (es || !window.EventSource) return;
    es = new EventSource(`/events?since=${S.run}-${S.seq}`);
    es.onopen = () => { $("link").hidden = true; };
    es.onerror = () => { $("link").hidden = false; $("link").textContent = say("lost"); };
    es.addEventListener("snapshot", e => snapshot(JSON.parse(e.data)));
    es.addEventListener("lab", e => {
      const {lab, svg} = JSON.parse(e.data);
      if (svg && lab.picture) S.pictures[lab.picture] = svg;
      const isNew = !cards.has(lab.name);
      S.labs.set(lab.name, lab);
      render(lab);
      if (isNew) place([...S.labs.keys()]);
      summary();
    });
    es.addEventListener("gone", e => { const g = JSON.parse(e.data); markGone(g.name, g.at); summary(); });
  }
  // A hidden tab gives its stream back: a browser opens at most six connections to one server,
  // and a class's instructor may keep many tabs of this page open.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) { if (es) { es.close(); es = null; } }
    else connect();
  });

  $("filter").placeholder = say("filter");
  $("filter").addEventListener("input", filter);
  $("mode").textContent = S.probes ? say("probes-on") : S.whyNot;
  $("mode").className = "mode " + (S.probes ? "on" : "off");
  snapshot(init);
  performance.mark("labs-rendered");
  if (!document.hidden) connect();
})();
