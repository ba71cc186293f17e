// The lash UI: one page, three views (#/ overview, #/list, #/p/ID), fed by
// the JSON endpoints under /api/ (lua/lash/ui.lua). No dependencies.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const main = $("#main");
let timer = null;

function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, c => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function age(ms) {
  if (ms == null) return "–";
  if (ms < 1000) return Math.round(ms) + "ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  return Math.floor(s / 86400) + "d";
}

function when(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  return d.toLocaleString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function badge(st) {
  return `<span class="badge st-${esc(st)}" data-status="${esc(st)}">${esc(st)}</span>`;
}

function plink(id) {
  return `<a href="#/p/${encodeURIComponent(id)}">${esc(id)}</a>`;
}

function toast(msg, isError) {
  const t = $("#toast");
  t.textContent = msg;
  t.className = isError ? "error" : "";
  t.hidden = false;
  clearTimeout(toast.t);
  toast.t = setTimeout(() => { t.hidden = true; }, 4000);
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const res = await fetch("/api/" + path, opts);
  let data;
  try { data = await res.json(); } catch (e) { data = { error: res.status + " " + res.statusText }; }
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

function poll(fn, ms) {
  clearTimeout(timer);
  const tick = async () => {
    try { await fn(); $("#live").textContent = "updated " + new Date().toLocaleTimeString(undefined, { hour12: false }); }
    catch (e) { $("#live").textContent = "error: " + e.message; }
    if (ms) timer = setTimeout(tick, ms);
  };
  tick();
}

// ------------------------------------------------------------ overview

function sparkline(vals) {
  const w = 300, h = 48;
  if (!vals.length) return `<svg class="spark" viewBox="0 0 ${w} ${h}"></svg>`;
  const max = Math.max(1, ...vals);
  const step = vals.length > 1 ? w / (vals.length - 1) : w;
  const pts = vals.map((v, i) => [i * step, h - 2 - (v / max) * (h - 6)]);
  const d = pts.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join(" ");
  return `<svg class="spark" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none">
    <path class="area" d="${d} L${w} ${h} L0 ${h} Z"></path><path d="${d}"></path></svg>`;
}

async function overview() {
  const o = await api("overview");
  $("#store").textContent = o.store;
  const cards = o.statuses.map(s => `<div class="card st st-${s}"><div class="label">${s}</div>
    <div class="num" data-stat="${s}">${o.counts[s]}</div></div>`).join("");
  const kinds = o.kinds.map(k => `<tr><td><a href="#/list?kind=${encodeURIComponent(k.kind)}">${esc(k.kind)}</a></td>` +
    o.statuses.map(s => `<td class="n" data-kind="${esc(k.kind)}" data-kstat="${s}">${k[s]}</td>`).join("") +
    `<td class="n">${k.oldest_pending_at ? age(o.now - k.oldest_pending_at) : "–"}</td></tr>`).join("");
  main.innerHTML = `<h1>Overview</h1>
    <div class="cards">${cards}
      <div class="card"><div class="label">total</div><div class="num" data-stat="total">${o.total}</div></div>
    </div>
    <div class="wide">
      <div class="card"><div class="label">throughput, last minute</div>
        <div class="num"><span data-stat="throughput">${o.throughput.toFixed(1)}</span> <small class="muted">ended/s</small></div>
        ${sparkline(o.spark)}</div>
      <div class="card"><div class="label">backlog</div><div class="num" data-stat="backlog">${o.backlog}</div>
        <div class="muted">oldest <span data-stat="oldest">${age(o.oldest_pending_age_ms)}</span> ·
        suspended <span data-stat="suspended">${o.suspended}</span></div></div>
    </div>
    <h2>Per kind</h2>
    <table><thead><tr><th>kind</th>${o.statuses.map(s => `<th class="n">${s}</th>`).join("")}<th class="n">oldest pending</th></tr></thead>
    <tbody>${kinds || `<tr><td colspan="9" class="muted">no processes</td></tr>`}</tbody></table>`;
}

// ---------------------------------------------------------------- list

async function list(params) {
  const statuses = ["", "live", "pending", "running", "waiting", "completed", "failed", "cancelled", "abandoned"];
  const q = new URLSearchParams(params);
  const stack = (q.get("stack") || "").split(",").filter(Boolean);
  const qs = new URLSearchParams({ status: q.get("status") || "", kind: q.get("kind") || "",
    q: q.get("q") || "", after: q.get("after") || "", limit: "50" });
  const res = await api("list?" + qs);
  const rows = res.rows.map(r => `<tr data-id="${esc(r.id)}"><td>${plink(r.id)}</td><td>${esc(r.kind)}</td>
    <td>${badge(r.status)}</td><td class="n">${r.attempt}</td><td>${when(r.created_at)}</td>
    <td>${when(r.updated_at)}</td><td>${r.wait ? esc(r.wait) : ""}</td></tr>`).join("");
  main.innerHTML = `<h1>Processes</h1>
    <form class="filters" id="filters">
      <select name="status">${statuses.map(s => `<option value="${s}" ${s === (q.get("status") || "") ? "selected" : ""}>${s || "any status"}</option>`).join("")}</select>
      <input name="kind" placeholder="kind" value="${esc(q.get("kind") || "")}">
      <input name="q" placeholder="text in id" value="${esc(q.get("q") || "")}">
      <button class="primary">Filter</button>
    </form>
    <table class="list"><thead><tr><th>id</th><th>kind</th><th>status</th><th class="n">attempt</th>
      <th>created</th><th>updated</th><th>waits for</th></tr></thead>
      <tbody>${rows || `<tr><td colspan="7" class="muted">no processes match</td></tr>`}</tbody></table>
    <div class="pager"><button id="prev" ${stack.length ? "" : "disabled"}>‹ Previous</button>
      <button id="next" ${res.next ? "" : "disabled"}>Next ›</button>
      <span class="muted">${res.rows.length} shown</span></div>`;
  const go = p => { location.hash = "#/list?" + new URLSearchParams(p); };
  const base = { status: q.get("status") || "", kind: q.get("kind") || "", q: q.get("q") || "" };
  $("#filters").onsubmit = e => {
    e.preventDefault();
    const f = new FormData(e.target);
    go({ status: f.get("status"), kind: f.get("kind"), q: f.get("q") });
  };
  $("#next").onclick = () => go({ ...base, after: res.next, stack: [...stack, q.get("after") || "-"].join(",") });
  $("#prev").onclick = () => {
    const prev = stack.pop();
    go({ ...base, after: prev === "-" ? "" : prev, stack: stack.join(",") });
  };
}

// ------------------------------------------------------------- process

// Attempts (bands), waits and suspensions (gaps) from the events.
function phases(p) {
  const evs = p.events, rec = p.record;
  const end = p.terminal && evs.length ? evs[evs.length - 1].at : p.now;
  const attempts = [], gaps = [];
  let open = null;
  for (const ev of evs) {
    if (ev.type === "process.started") {
      if (attempts.length) attempts[attempts.length - 1].to = ev.at;
      attempts.push({ from: ev.at, to: end, n: (ev.payload && ev.payload.attempt) || attempts.length + 1 });
      if (open) { open.to = ev.at; gaps.push(open); open = null; }
    } else if (ev.type === "process.waiting" || ev.type === "process.suspended") {
      if (!open) open = { from: ev.at, what: (ev.payload && ev.payload.wait) || ev.type.slice(8) };
    } else if (ev.type === "process.resumed" || ev.type === "process.woken") {
      if (open) { open.to = ev.at; gaps.push(open); open = null; }
    }
  }
  if (open) { open.to = end; gaps.push(open); }
  return { start: rec.created_at, end, attempts, gaps, status: rec.status };
}

function timeline(p) {
  const ph = phases(p), evs = p.events;
  const W = 1000, H = 170, L = 70, R = 70;
  const span = Math.max(1, ph.end - ph.start);
  const x = t => L + (Math.min(Math.max(t, ph.start), ph.end) - ph.start) / span * (W - L - R);
  let s = `<svg viewBox="0 0 ${W} ${H}" id="timeline-svg"><defs><pattern id="hatch" width="6" height="6"
    patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fdf3dc"/>
    <line x1="0" y1="0" x2="0" y2="6" stroke="#e7b84a" stroke-width="2"/></pattern></defs>`;
  s += `<text x="4" y="44" class="evlabel">attempts</text><text x="4" y="104" class="evlabel">events</text>`;
  ph.attempts.forEach((a, i) => {
    const last = i === ph.attempts.length - 1;
    const cls = last && p.terminal ? (ph.status === "completed" ? "ended" : "failed") : (last ? "" : "failed");
    s += `<rect class="band ${cls}" data-attempt="${a.n}" x="${x(a.from)}" y="28" width="${Math.max(2, x(a.to) - x(a.from))}" height="26" rx="3">
      <title>attempt ${a.n}: ${age(a.to - a.from)}</title></rect>
      <text class="evlabel" x="${x(a.from) + 4}" y="45">#${a.n}</text>`;
  });
  ph.gaps.forEach(g => {
    s += `<rect class="gap" data-gap="${esc(g.what)}" x="${x(g.from)}" y="24" width="${Math.max(2, x(g.to) - x(g.from))}" height="34">
      <title>${esc(g.what)}: ${age(g.to - g.from)}</title></rect>`;
  });
  const colors = { "process.started": "#2f7de1", "process.completed": "#2e9e5b", "process.failed": "#d64545",
    "process.cancelled": "#7d5ba6", "process.child": "#0f766e", "process.waiting": "#d69a1c",
    "process.resumed": "#d69a1c" };
  // labels go on the first of ROWS rows where they do not overlap the
  // previous one; an event with no room keeps its dot and its tooltip
  const ROWS = 5, ends = new Array(ROWS).fill(-1e9);
  evs.forEach((ev, i) => {
    const cx = x(ev.at);
    const label = ev.type.replace(/^process\./, "");
    let row = ends.findIndex(e => e < cx);
    const shown = row >= 0;
    if (!shown) row = i % ROWS;
    else ends[row] = cx + 10 + label.length * 5.6;
    const c = colors[ev.type] || (ev.type.startsWith("signal.") ? "#c026d3" : "#64748b");
    const y = 82 + row * 14;
    s += `<g class="ev" data-seq="${ev.seq}" onclick="document.getElementById('ev-${ev.seq}').scrollIntoView({block:'center'});document.getElementById('ev-${ev.seq}').click()">
      <line x1="${cx}" y1="64" x2="${cx}" y2="${y - 4}" stroke="${c}" stroke-width="1" opacity=".6"/>
      <circle cx="${cx}" cy="${y}" r="4" fill="${c}"><title>#${ev.seq} ${esc(ev.type)} ${when(ev.at)}</title></circle>
      ${shown ? `<text class="evlabel" x="${cx + 6}" y="${y + 4}">${esc(label)}</text>` : ""}</g>`;
  });
  s += `<g class="axis"><line x1="${L}" y1="64" x2="${W - R}" y2="64" stroke="#c3c9d3"/>`;
  for (let i = 0; i <= 5; i++) {
    const tx = L + i * (W - L - R) / 5;
    s += `<line x1="${tx}" y1="60" x2="${tx}" y2="68" stroke="#c3c9d3"/><text x="${tx}" y="${H - 4}" text-anchor="middle">+${age(span * i / 5)}</text>`;
  }
  s += `</g></svg>`;
  return `<div class="timeline">${s}<div class="legend"><span><i style="background:#dbe8fb;border:1px solid #2f7de1"></i>attempt</span>
    <span><i style="background:#fdf3dc;border:1px dashed #d69a1c"></i>wait / suspension</span>
    <span><i style="background:#0f766e;border-radius:50%"></i>child started</span>
    <span><i style="background:#c026d3;border-radius:50%"></i>signal</span></div></div>`;
}

function tree(nodes) {
  if (!nodes || !nodes.length) return "";
  return `<ul>${nodes.map(n => `<li data-child="${esc(n.id)}">${plink(n.id)} <span class="muted">${esc(n.kind || "")}</span>
    ${n.status ? badge(n.status) : ""}${n.more ? ' <span class="muted">… more</span>' : ""}${tree(n.children)}</li>`).join("")}</ul>`;
}

function short(v) {
  const s = JSON.stringify(v);
  if (s === undefined) return "";
  return s.length > 90 ? s.slice(0, 90) + "…" : s;
}

async function processView(id) {
  const p = await api("process?id=" + encodeURIComponent(id));
  const r = p.record;
  const f = (k, v) => `<dt>${k}</dt><dd>${v}</dd>`;
  const rows = p.events.map(ev => `<tr id="ev-${ev.seq}" class="evrow"><td class="n">${ev.seq}</td>
    <td>${esc(ev.type)}</td><td>${when(ev.at)}</td><td class="muted">+${age(ev.at - r.created_at)}</td>
    <td><span class="payload" data-full="0">${esc(short(ev.payload))}</span></td></tr>`).join("");
  main.innerHTML = `<h1>${esc(r.id)} ${badge(r.status)}</h1>
    <dl class="fields">${f("kind", esc(r.kind))}${f("disposition", esc(r.disposition))}
      ${f("attempt", r.attempt ? r.attempt.number + (r.max_attempts ? " of " + r.max_attempts : "") +
        " · owner " + esc(r.attempt.owner) : "none yet")}
      ${r.parent ? f("parent", plink(r.parent)) : ""}
      ${f("created", when(r.created_at))}${f("updated", when(r.updated_at) + " (" + age(p.now - r.updated_at) + " ago)")}
      ${r.wait ? f("waits for", esc(r.wait) + (r.wait_since ? " since " + when(r.wait_since) : "")) : ""}
      ${r.cancel_requested ? f("cancel requested", esc(r.cancel_reason || "")) : ""}
      ${f("input", `<span class="payload" data-full="0">${esc(short(r.input))}</span>`)}
      ${p.terminal ? f("outcome", `<span class="payload" data-full="0">${esc(short(r.outcome))}</span>`) : ""}</dl>
    <div class="actions">
      <input id="sig-name" placeholder="signal name" size="14">
      <input id="sig-payload" placeholder='payload JSON, e.g. {"by":"ann"}' size="28">
      <button id="btn-signal" ${p.terminal ? "disabled" : ""}>Signal</button>
      <input id="cancel-reason" placeholder="reason" size="16">
      <button id="btn-cancel" class="danger" ${p.terminal || r.cancel_requested ? "disabled" : ""}>Cancel</button>
      ${p.can_retry ? `<button id="btn-retry" ${r.status === "failed" || r.status === "abandoned" || r.status === "cancelled" ? "" : "disabled"}>Retry</button>` : ""}
    </div>
    <h2>Timeline</h2>${timeline(p)}
    <h2>Children</h2><div class="tree" id="children">${tree(p.children) || '<span class="muted">none</span>'}</div>
    <h2>Events</h2><table class="events"><thead><tr><th class="n">seq</th><th>type</th><th>at</th><th>since start</th><th>payload (click to expand)</th></tr></thead>
      <tbody>${rows}</tbody></table>`;
  const payloads = [...main.querySelectorAll(".payload")];
  const values = [...p.events.map(ev => ev.payload)];
  // input and outcome come first in the page
  const head = [r.input].concat(p.terminal ? [r.outcome] : []);
  const all = head.concat(values);
  payloads.forEach((el, i) => {
    el.onclick = () => {
      const full = el.dataset.full === "1";
      el.dataset.full = full ? "0" : "1";
      el.innerHTML = full ? esc(short(all[i])) : `<pre>${esc(JSON.stringify(all[i], null, 2))}</pre>`;
    };
  });
  main.querySelectorAll("tr.evrow").forEach(tr => { tr.onclick = e => { if (e.target === tr || e.target.tagName === "TD") tr.querySelector(".payload").click(); }; });
  const act = async (what, body) => {
    try { await api(what, body); toast(what + " sent"); route(); }
    catch (e) { toast(what + ": " + e.message, true); }
  };
  $("#btn-signal").onclick = () => {
    const name = $("#sig-name").value.trim();
    if (!name) return toast("give a signal name", true);
    let payload = null;
    const text = $("#sig-payload").value.trim();
    if (text) { try { payload = JSON.parse(text); } catch (e) { return toast("payload: " + e.message, true); } }
    act("signal", { id: r.id, name, payload });
  };
  $("#btn-cancel").onclick = () => act("cancel", { id: r.id, reason: $("#cancel-reason").value.trim() });
  if ($("#btn-retry")) $("#btn-retry").onclick = () => act("retry", { id: r.id });
  return p.terminal;
}

// --------------------------------------------------------------- router

function route() {
  clearTimeout(timer);
  const h = location.hash || "#/";
  document.querySelectorAll("[data-nav]").forEach(a => a.classList.toggle("active",
    (h.startsWith("#/list") && a.dataset.nav === "list") || ((h === "#/" || h === "#") && a.dataset.nav === "overview")));
  if (h.startsWith("#/p/")) {
    const id = decodeURIComponent(h.slice(4));
    const tick = async () => {
      try {
        const done = await processView(id);
        $("#live").textContent = "updated " + new Date().toLocaleTimeString(undefined, { hour12: false });
        if (!done) timer = setTimeout(tick, 3000);
      } catch (e) { main.innerHTML = `<h1>${esc(id)}</h1><p class="error">${esc(e.message)}</p>`; }
    };
    tick();
  } else if (h.startsWith("#/list")) {
    const i = h.indexOf("?");
    poll(() => list(i >= 0 ? h.slice(i + 1) : ""), 0);
  } else {
    poll(overview, 1000);
  }
}

window.addEventListener("hashchange", route);
route();
