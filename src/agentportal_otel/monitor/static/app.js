// agentportal-otel monitor page: plain JavaScript over /api/v1, no build step, no dependency.
// The whole view lives in the address (range, filters, split, sort, page, open call), so a link
// reproduces it. Every value from the API is written with textContent, never as HTML.
"use strict";

const API = "api/v1/";
const FILTERS = ["team", "project", "model", "key_alias", "user", "status"];
const RANGES = ["15m", "1h", "24h", "7d", "30d", "custom"];
const SPLITS = ["team", "project", "model"];
const PAGE = 20;
const REFRESH_MS = 30000;
const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];
const MAX_SERIES = 7;
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
let state = readState();
let session = null;
let timer = null;
let loading = 0;
let lastSeries = null;

// -- state <-> address -------------------------------------------------------------------------

function readState() {
  const p = new URLSearchParams(location.search);
  const pick = (name, allowed, fallback) => (allowed.includes(p.get(name)) ? p.get(name) : fallback);
  const s = {
    range: pick("range", RANGES, "24h"),
    start: p.get("start") || "",
    end: p.get("end") || "",
    split: pick("split", SPLITS, "team"),
    sort: p.get("sort") || "cost_usd",
    dir: pick("dir", ["asc", "desc"], "desc"),
    offset: Math.max(0, parseInt(p.get("offset") || "0", 10) || 0),
    call: /^[0-9a-f]{32}:[0-9a-f]{16}$/.test(p.get("call") || "") ? p.get("call") : "",
    refresh: p.get("refresh") === "1",
  };
  for (const f of FILTERS) s[f] = p.get(f) || "";
  if (s.range === "custom" && !(s.start && s.end)) s.range = "24h";
  return s;
}

function writeState() {
  const p = new URLSearchParams();
  if (state.range !== "24h") p.set("range", state.range);
  if (state.range === "custom") { p.set("start", state.start); p.set("end", state.end); }
  for (const f of FILTERS) if (state[f]) p.set(f, state[f]);
  if (state.split !== "team") p.set("split", state.split);
  if (state.sort !== "cost_usd" || state.dir !== "desc") { p.set("sort", state.sort); p.set("dir", state.dir); }
  if (state.offset) p.set("offset", String(state.offset));
  if (state.call) p.set("call", state.call);
  if (state.refresh) p.set("refresh", "1");
  const query = p.toString();
  history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
}

function windowParams() {
  const p = new URLSearchParams();
  if (state.range === "custom") {
    p.set("start", new Date(state.start).toISOString());
    p.set("end", new Date(state.end).toISOString());
  } else {
    p.set("since", state.range);
  }
  return p;
}

function windowBounds() {
  if (state.range === "custom") return [new Date(state.start), new Date(state.end)];
  const unit = { m: 60e3, h: 3600e3, d: 86400e3 }[state.range.slice(-1)];
  const end = new Date();
  return [new Date(end.getTime() - parseInt(state.range, 10) * unit), end];
}

function filterParams(extra) {
  const p = windowParams();
  for (const f of FILTERS) if (state[f]) p.set(f, state[f]);
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p;
}

// -- API -----------------------------------------------------------------------------------------

class Unauthorized extends Error {}

async function api(path, params) {
  const url = API + path + (params ? "?" + params.toString() : "");
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) throw new Unauthorized("sign in");
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const detail = body && body.message ? body.message : response.statusText;
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return body;
}

// -- formatting ----------------------------------------------------------------------------------

const nf = new Intl.NumberFormat("en-US");
function fmtInt(v) { return v == null ? "–" : nf.format(v); }
function fmtCompact(v) {
  if (v == null) return "–";
  if (Math.abs(v) < 10000) return nf.format(Math.round(v));
  return new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 }).format(v);
}
function fmtCost(v) {
  if (v == null) return "–";
  if (v === 0) return "$0";
  if (Math.abs(v) < 0.01) return "$" + v.toPrecision(2);
  return "$" + v.toFixed(2);
}
function fmtMs(v) {
  if (v == null) return "–";
  if (v < 1000) return (v < 10 ? v.toFixed(1) : Math.round(v)) + " ms";
  return (v / 1000).toFixed(v < 10000 ? 2 : 1) + " s";
}
function fmtPct(v) { return v == null ? "–" : (v * 100).toFixed(v < 0.1 ? 1 : 0) + "%"; }
function fmtTime(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function fmtValue(metric, v) {
  if (metric === "cost_usd") return fmtCost(v);
  if (metric === "error_rate") return fmtPct(v);
  if (metric.endsWith("_ms")) return fmtMs(v);
  if (metric.endsWith("tokens") || metric === "tokens") return fmtCompact(v);
  return fmtInt(v);
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child == null ? "" : child);
  return node;
}
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

// -- loading -------------------------------------------------------------------------------------

function showMessage(text) {
  const box = $("message");
  box.textContent = text || "";
  box.hidden = !text;
}

async function load() {
  writeState();
  const ticket = ++loading;
  const [start, end] = windowBounds();
  const bucket = end - start <= 3 * 86400e3 ? "hour" : "day";
  try {
    const [total, series, byTeam, errors, calls] = await Promise.all([
      api("usage", filterParams()),
      api("usage", filterParams({ by: state.split, bucket })),
      api("usage", filterParams({ by: "team,project" })),
      api("errors", filterParams()),
      api("calls", filterParams({ limit: String(PAGE), offset: String(state.offset) })),
    ]);
    if (ticket !== loading) return;
    showMessage("");
    renderFigures(total.items[0] || null);
    lastSeries = { items: series.items, bucket, start, end };
    renderCharts();
    renderUsage(byTeam.items);
    renderErrors(errors.items);
    renderCalls(calls);
    fillDatalists(byTeam.items, calls.items, series.items);
    setCsvLinks();
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    if (state.call) openCall(state.call, false);
  } catch (error) {
    if (ticket !== loading) return;
    if (error instanceof Unauthorized) { showLogin(""); return; }
    showMessage("Could not load the data: " + error.message);
  }
}

function renderFigures(row) {
  for (const metric of ["calls", "error_rate", "input_tokens", "output_tokens", "cost_usd", "p50_ms", "p95_ms", "p99_ms", "ttfc_p95_ms"]) {
    const node = $("fig-" + metric);
    const value = row ? row[metric] : metric === "calls" || metric.endsWith("tokens") || metric === "cost_usd" ? 0 : null;
    node.textContent = fmtValue(metric, value);
    node.dataset.value = value == null ? "" : String(value);
    node.title = value == null ? "no data" : String(value);
  }
}

// -- charts --------------------------------------------------------------------------------------

function seriesOf(items) {
  const totals = new Map();
  for (const r of items) totals.set(r[state.split], (totals.get(r[state.split]) || 0) + r.calls);
  const names = [...totals.entries()].sort((a, b) => b[1] - a[1]).map((e) => e[0]);
  const top = names.slice(0, MAX_SERIES);
  const hasOther = names.length > MAX_SERIES;
  return { names: hasOther ? [...top, "other"] : top, key: (name) => (top.includes(name) ? name : "other") };
}

function renderCharts() {
  if (!lastSeries) return;
  const { items, bucket, start, end } = lastSeries;
  const step = bucket === "hour" ? 3600e3 : 86400e3;
  const first = Math.floor(start.getTime() / step) * step;
  const buckets = [];
  for (let t = first; t < end.getTime(); t += step) buckets.push(t);
  const { names, key } = seriesOf(items);
  const legend = $("legend");
  legend.replaceChildren(...names.map((name, i) => el("span", {}, swatch(COLORS[i % COLORS.length]), name)));
  const metrics = {
    calls: (r) => r.calls,
    cost_usd: (r) => r.cost_usd,
    tokens: (r) => r.input_tokens + r.output_tokens,
    errors: (r) => r.errors,
  };
  for (const [metric, value] of Object.entries(metrics)) {
    const grid = buckets.map(() => names.map(() => 0));
    for (const r of items) {
      const b = Math.floor((new Date(r.bucket).getTime() - first) / step);
      if (b >= 0 && b < buckets.length) grid[b][names.indexOf(key(r[state.split]))] += value(r);
    }
    drawBars($("chart-" + metric), buckets, names, grid, metric, bucket);
  }
}

function swatch(color) {
  const i = el("i");
  i.style.background = color;
  return i;
}

function drawBars(container, buckets, names, grid, metric, bucket) {
  const width = Math.max(container.clientWidth, 200);
  const height = container.clientHeight || 170;
  const left = 52, right = 6, top = 8, bottom = 20;
  const plotW = width - left - right, plotH = height - top - bottom;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": metric });
  const max = Math.max(0, ...grid.map((row) => row.reduce((a, b) => a + b, 0)));
  if (max === 0) {
    root.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }));
    root.lastChild.textContent = "no data in this window";
    container.replaceChildren(root);
    return;
  }
  for (const frac of [0, 0.5, 1]) {
    const y = top + plotH * (1 - frac);
    root.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "gridline" }));
    const label = svg("text", { x: left - 6, y: y + 3, "text-anchor": "end" });
    label.textContent = fmtValue(metric, max * frac);
    root.append(label);
  }
  const slot = plotW / buckets.length;
  const barW = Math.max(1, slot * 0.78);
  buckets.forEach((t, b) => {
    let y = top + plotH;
    grid[b].forEach((v, s) => {
      if (!v) return;
      const h = (v / max) * plotH;
      y -= h;
      const rect = svg("rect", { x: left + b * slot + (slot - barW) / 2, y, width: barW, height: Math.max(h, 0.5), fill: COLORS[s % COLORS.length] });
      const tip = svg("title");
      tip.textContent = `${fmtTime(new Date(t).toISOString())} · ${names[s]}: ${fmtValue(metric, v)}`;
      rect.append(tip);
      root.append(rect);
    });
  });
  const labels = Math.min(buckets.length, Math.max(2, Math.floor(plotW / 90)));
  for (let i = 0; i < labels; i++) {
    const b = Math.round((i * (buckets.length - 1)) / Math.max(1, labels - 1));
    const d = new Date(buckets[b]);
    const text = svg("text", { x: left + b * slot + slot / 2, y: height - 5, "text-anchor": "middle" });
    text.textContent = bucket === "hour" ? `${String(d.getHours()).padStart(2, "0")}:00` : `${d.getMonth() + 1}/${d.getDate()}`;
    root.append(text);
  }
  container.replaceChildren(root);
}

// -- tables --------------------------------------------------------------------------------------

const USAGE_COLUMNS = [
  ["team", "Team"], ["project", "Project"], ["calls", "Calls"], ["errors", "Errors"], ["error_rate", "Error rate"],
  ["input_tokens", "In tokens"], ["output_tokens", "Out tokens"], ["cost_usd", "Cost"], ["p50_ms", "p50"],
  ["p95_ms", "p95"], ["p99_ms", "p99"], ["ttfc_p95_ms", "First chunk p95"],
];

let usageRows = [];
function renderUsage(items) {
  usageRows = items;
  const table = $("usage");
  const head = el("tr");
  for (const [key, label] of USAGE_COLUMNS) {
    const th = el("th", { scope: "col", tabindex: "0", "data-key": key }, label);
    if (!["team", "project"].includes(key)) th.className = "num";
    if (state.sort === key) th.setAttribute("aria-sort", state.dir === "asc" ? "ascending" : "descending");
    head.append(th);
  }
  table.tHead.replaceChildren(head);
  const sorted = [...items].sort((a, b) => {
    const x = a[state.sort], y = b[state.sort];
    const cmp = typeof x === "number" || typeof y === "number" ? (x ?? -1) - (y ?? -1) : String(x).localeCompare(String(y));
    return state.dir === "asc" ? cmp : -cmp;
  });
  const body = sorted.map((r) => el("tr", {}, ...USAGE_COLUMNS.map(([key]) =>
    el("td", { class: ["team", "project"].includes(key) ? "" : "num" }, ["team", "project"].includes(key) ? r[key] : fmtValue(key, r[key])))));
  table.tBodies[0].replaceChildren(...(body.length ? body : [emptyRow(USAGE_COLUMNS.length, "no calls in this window")]));
}

function emptyRow(span, text) {
  return el("tr", {}, el("td", { colspan: String(span), class: "empty" }, text));
}

function sortBy(key) {
  if (!USAGE_COLUMNS.some(([k]) => k === key)) return;
  state.dir = state.sort === key && state.dir === "desc" ? "asc" : "desc";
  state.sort = key;
  writeState();
  renderUsage(usageRows);
}

function renderErrors(items) {
  const rows = items.map((r) => el("tr", {}, el("td", { class: "error" }, r.error_type), el("td", {}, r.model),
    el("td", { class: "num" }, fmtInt(r.calls)), el("td", {}, fmtTime(r.last_seen))));
  $("errors").tBodies[0].replaceChildren(...(rows.length ? rows : [emptyRow(4, "no errors in this window")]));
}

function renderCalls(page) {
  const rows = page.items.map((c) => {
    const tr = el("tr", { tabindex: "0", "data-call": `${c.trace_id}:${c.span_id}` },
      el("td", {}, fmtTime(c.timestamp)), el("td", {}, c.team), el("td", {}, c.project), el("td", {}, c.model),
      el("td", {}, c.key_alias), el("td", {}, c.user),
      el("td", { class: "status-" + c.status }, c.status === "Error" ? c.error_type || "Error" : "ok"),
      el("td", { class: "num" }, fmtInt(c.input_tokens)), el("td", { class: "num" }, fmtInt(c.output_tokens)),
      el("td", { class: "num" }, fmtCost(c.cost_usd)), el("td", { class: "num" }, fmtMs(c.duration_ms)));
    if (state.call === tr.dataset.call) tr.classList.add("selected");
    return tr;
  });
  $("calls").tBodies[0].replaceChildren(...(rows.length ? rows : [emptyRow(11, "no calls match")]));
  const from = page.total ? page.offset + 1 : 0;
  const to = page.offset + page.items.length;
  $("calls-count").textContent = `${fmtInt(from)}–${fmtInt(to)} of ${fmtInt(page.total)}`;
  $("calls-count").dataset.total = String(page.total);
  $("prev").disabled = page.offset === 0;
  $("next").disabled = to >= page.total;
}

function fillDatalists(byTeam, calls, series) {
  const values = { team: new Set(), project: new Set(), model: new Set(), key_alias: new Set(), user: new Set() };
  for (const r of byTeam) { values.team.add(r.team); values.project.add(r.project); }
  for (const r of series) if (values[state.split]) values[state.split].add(r[state.split]);
  for (const c of calls) for (const f of ["model", "key_alias", "user"]) values[f].add(c[f]);
  for (const [f, set] of Object.entries(values)) {
    $("dl-" + f).replaceChildren(...[...set].filter((v) => v && v !== "unattributed").sort().map((v) => el("option", { value: v })));
  }
}

function setCsvLinks() {
  $("csv-usage").href = API + "usage?" + filterParams({ by: "team,project", format: "csv" });
  $("csv-errors").href = API + "errors?" + filterParams({ format: "csv" });
  $("csv-calls").href = API + "calls?" + filterParams({ limit: "1000", offset: String(state.offset), format: "csv" });
}

// -- one call and its trace ------------------------------------------------------------------------

async function openCall(ref, push) {
  const [traceId, spanId] = ref.split(":");
  state.call = ref;
  if (push !== false) writeState();
  for (const tr of $("calls").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.call === ref);
  const panel = $("detail");
  panel.hidden = false;
  $("detail-title").textContent = "Loading…";
  try {
    const [call, trace] = await Promise.all([api(`calls/${traceId}/${spanId}`), api(`traces/${traceId}`)]);
    if (state.call !== ref) return;
    renderDetail(call);
    renderWaterfall(trace, spanId);
  } catch (error) {
    if (error instanceof Unauthorized) { showLogin(""); return; }
    $("detail-title").textContent = error.status === 404 ? "Call not found (or not your team's)" : "Could not load: " + error.message;
    $("detail-fields").replaceChildren();
    $("waterfall").replaceChildren();
    $("detail-content").replaceChildren();
  }
}

function closeCall() {
  state.call = "";
  writeState();
  $("detail").hidden = true;
  for (const tr of $("calls").tBodies[0].rows) tr.classList.remove("selected");
}

function renderDetail(c) {
  $("detail-title").textContent = `${c.span_name}`;
  const fields = [
    ["Time", fmtTime(c.timestamp)],
    ["Status", c.status === "Error" ? "Error" : "ok"],
    ["Team", c.tenant.team_alias ? `${c.tenant.team} (${c.tenant.team_alias})` : c.tenant.team],
    ["Project", c.tenant.project], ["Key alias", c.tenant.key_alias], ["User", c.tenant.user],
    ["End user", c.tenant.end_user], ["Organization", c.tenant.org],
    ["Model", c.model.response && c.model.response !== c.model.request ? `${c.model.request} → ${c.model.response}` : c.model.request],
    ["Provider", c.model.provider], ["Operation", c.model.operation],
    ["Input tokens", fmtInt(c.usage.input_tokens)], ["Output tokens", fmtInt(c.usage.output_tokens)],
    ["Cost", fmtCost(c.cost_usd)], ["Duration", fmtMs(c.timings.duration_ms)],
    ["First chunk", c.timings.time_to_first_chunk_ms == null ? null : fmtMs(c.timings.time_to_first_chunk_ms)],
    ["Error type", c.error ? c.error.type : null], ["Error message", c.error ? c.error.message : null],
    ["Trace id", c.trace_id], ["Span id", c.span_id],
  ];
  const list = [];
  for (const [label, value] of fields) {
    if (value == null || value === "") continue;
    const dd = el("dd", {}, value);
    if (label.startsWith("Error")) dd.className = "error";
    list.push(el("dt", {}, label), dd);
  }
  $("detail-fields").replaceChildren(...list);
  const content = [];
  if (c.content) {
    for (const [key, label] of [["input_messages", "Input messages"], ["output_messages", "Output messages"]]) {
      if (c.content[key]) content.push(el("h3", {}, label), el("pre", {}, prettyJson(c.content[key])));
    }
  } else {
    content.push(el("p", { class: "muted" }, "Message content was not captured for this call."));
  }
  $("detail-content").replaceChildren(...content);
}

function prettyJson(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
}

function renderWaterfall(trace, currentSpan) {
  const byId = new Map(trace.spans.map((s) => [s.span_id, s]));
  const depth = (s) => { let d = 0, p = byId.get(s.parent_span_id); while (p && d < 20) { d++; p = byId.get(p.parent_span_id); } return d; };
  const total = Math.max(trace.duration_ms, 0.001);
  const rows = trace.spans.map((s) => {
    const name = el("div", { class: "wf-name", title: `${s.span_name} (${s.service_name})` });
    name.style.paddingLeft = 0.5 + depth(s) * 0.9 + "rem";
    if (s.llm) name.append(el("span", { class: "badge" }, "LLM"));
    name.append(s.span_name);
    const bar = el("div", { class: "wf-bar" + (s.llm ? " llm" : "") + (s.status === "Error" ? " err" : "") });
    const left = (s.offset_ms / total) * 100;
    const width = (s.duration_ms / total) * 100;
    bar.style.left = left + "%";
    bar.style.width = width + "%";
    const dur = el("span", { class: "wf-dur" }, fmtMs(s.duration_ms));
    if (left + width > 80) { dur.style.right = 100 - left + 1 + "%"; } else { dur.style.left = left + width + 1 + "%"; }
    const row = el("div", { class: "wf-row" + (s.span_id === currentSpan ? " current" : ""), "data-span": s.span_id, "data-llm": String(s.llm) },
      name, el("div", { class: "wf-track" }, bar, dur));
    return row;
  });
  const head = el("div", { class: "wf-row" }, el("div", { class: "wf-name muted" }, `${trace.spans.length} span${trace.spans.length === 1 ? "" : "s"}`),
    el("div", { class: "wf-name muted" }, "total " + fmtMs(trace.duration_ms)));
  $("waterfall").replaceChildren(head, ...rows);
}

// -- controls, login -------------------------------------------------------------------------------

function syncControls() {
  $("range").value = state.range;
  for (const node of document.querySelectorAll(".custom")) node.hidden = state.range !== "custom";
  $("start").value = state.start;
  $("end").value = state.end;
  for (const f of FILTERS) $("f-" + f).value = state[f];
  $("split").value = state.split;
  $("refresh").checked = state.refresh;
  if (session && session.scope === "team") {
    $("f-team").value = session.team;
    $("f-team").disabled = true;
  }
}

function setRefresh() {
  clearInterval(timer);
  timer = state.refresh ? setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS) : null;
}

function onControl(event) {
  const id = event.target.id;
  if (id === "range") {
    state.range = event.target.value;
    if (state.range === "custom" && !(state.start && state.end)) {
      const end = new Date();
      const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 16);
      state.start = local(new Date(end.getTime() - 86400e3));
      state.end = local(end);
    }
    syncControls();
  } else if (id === "start" || id === "end") {
    state[id] = event.target.value;
    if (!(state.start && state.end)) return;
  } else if (id === "refresh") {
    state.refresh = event.target.checked;
    setRefresh();
    writeState();
    return;
  } else if (id.startsWith("f-")) {
    state[id.slice(2)] = event.target.value.trim();
  } else {
    return;
  }
  state.offset = 0;
  load();
}

function showLogin(error) {
  session = null;
  clearInterval(timer);
  $("app").hidden = true;
  $("detail").hidden = true;
  $("logout").hidden = true;
  $("scope").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = error;
  $("token").focus();
}

// Signing in does not submit the form: a sandboxed frame without allow-forms (Open-WebUI's
// default for embeds) blocks form submission, but not a button's click handler.
async function login(event) {
  if (event) event.preventDefault();
  const input = $("token");
  if (!input.value) return;
  const token = input.value;
  input.value = "";
  const response = await fetch(API + "session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (!response.ok) {
    $("login-error").textContent = response.status === 401 ? "That token is not valid." : "Sign-in failed.";
    return;
  }
  start(await response.json());
}

async function logout() {
  await fetch(API + "session", { method: "DELETE", credentials: "same-origin" });
  showLogin("");
}

function start(who) {
  session = who;
  $("login").hidden = true;
  $("app").hidden = false;
  $("scope").textContent = who.scope === "admin" ? (who.auth === "off" ? "all teams (no auth)" : "all teams") : "team " + who.team;
  $("logout").hidden = who.auth === "off";
  if (who.scope === "team") state.team = "";
  syncControls();
  setRefresh();
  load();
}

document.addEventListener("DOMContentLoaded", async () => {
  $("login-form").addEventListener("submit", login);
  $("login-button").addEventListener("click", login);
  $("token").addEventListener("keydown", (e) => { if (e.key === "Enter") login(e); });
  $("logout").addEventListener("click", logout);
  const controls = $("controls");
  controls.addEventListener("change", onControl);
  controls.addEventListener("submit", (e) => e.preventDefault());
  $("reset").addEventListener("click", () => {
    for (const f of FILTERS) state[f] = "";
    state.offset = 0;
    syncControls();
    load();
  });
  $("split").addEventListener("change", (e) => { state.split = e.target.value; load(); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); load(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; load(); });
  $("usage").tHead.addEventListener("click", (e) => { const th = e.target.closest("th"); if (th) sortBy(th.dataset.key); });
  $("usage").tHead.addEventListener("keydown", (e) => { const th = e.target.closest("th"); if (th && e.key === "Enter") sortBy(th.dataset.key); });
  const calls = $("calls").tBodies[0];
  calls.addEventListener("click", (e) => { const tr = e.target.closest("tr[data-call]"); if (tr) openCall(tr.dataset.call); });
  calls.addEventListener("keydown", (e) => { const tr = e.target.closest("tr[data-call]"); if (tr && e.key === "Enter") openCall(tr.dataset.call); });
  $("detail-close").addEventListener("click", closeCall);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("detail").hidden) closeCall(); });
  let resize = null;
  window.addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(renderCharts, 150); });
  try {
    const who = await api("session");
    if (who.authenticated) start(who); else showLogin("");
  } catch (error) {
    if (error instanceof Unauthorized) showLogin(""); else showMessage("The monitor is not reachable: " + error.message);
  }
});
