// The streaming page: polls api/batches every second and redraws the summary, one SVG
// timeline per metric (points per batch, oldest left) and the table of completed batches
// (newest first, as Spark lists them). No libraries: it must work offline.
'use strict';

const POLL_MS = 1000;
// Rows drawn in the batch table; the charts use every retained batch.
const TABLE_ROWS = 100;
const SVG_NS = 'http://www.w3.org/2000/svg';
const METRICS = [
  { key: 'input_rate', fmt: (v) => fmtRate(v) },
  { key: 'scheduling_delay_ms', fmt: (v) => fmtMs(v) },
  { key: 'processing_delay_ms', fmt: (v) => fmtMs(v) },
  { key: 'total_delay_ms', fmt: (v) => fmtMs(v) },
];

function pad(n, w) { return String(n).padStart(w || 2, '0'); }

// Spark's UI format, 2015/07/01 12:34:56 (local time), with milliseconds added when the
// batch interval is not whole seconds (two batches would otherwise show the same time).
let showMillis = false;
function fmtTime(ms) {
  const d = new Date(ms);
  const millis = showMillis ? `.${pad(d.getMilliseconds(), 3)}` : '';
  return `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${millis}`;
}

function fmtClock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtMs(v) {
  if (v < 10) return `${v.toFixed(2)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(1)} s`;
}

function fmtRate(v) { return `${v.toFixed(2)} records/sec`; }

function fmtSpan(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} seconds`;
  if (s < 3600) return `${Math.floor(s / 60)} minutes ${s % 60} seconds`;
  return `${Math.floor(s / 3600)} hours ${Math.floor((s % 3600) / 60)} minutes`;
}

function fmtLimit(v) { return v === null || v === undefined ? 'none' : `${Math.round(v)} records/sec`; }

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// One timeline: x = batch time, y = value, from 0 to the largest value.
function drawChart(node, batches, key, fmt) {
  while (node.firstChild) node.removeChild(node.firstChild);
  const W = 640, H = 150, L = 90, R = 10, T = 10, B = 24;
  node.appendChild(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }));
  node.appendChild(svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
  if (batches.length === 0) {
    node.appendChild(svg('text', { x: L + 10, y: H / 2 }, 'no batches yet'));
    return;
  }
  const xs = batches.map((b) => b.batch_time_ms);
  const ys = batches.map((b) => b[key]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const yMax = Math.max(...ys) || 1;
  const px = (x) => (x1 === x0 ? (L + W - R) / 2 : L + ((x - x0) / (x1 - x0)) * (W - L - R));
  const py = (y) => H - B - (y / yMax) * (H - T - B);
  for (const f of [0.5, 1]) {
    node.appendChild(svg('line', { class: 'grid', x1: L + 1, y1: py(yMax * f), x2: W - R, y2: py(yMax * f) }));
    node.appendChild(svg('text', { x: L - 6, y: py(yMax * f) + 4, 'text-anchor': 'end' }, fmt(yMax * f)));
  }
  node.appendChild(svg('text', { x: L - 6, y: H - B + 4, 'text-anchor': 'end' }, fmt(0)));
  node.appendChild(svg('text', { x: L, y: H - 6 }, fmtClock(x0)));
  node.appendChild(svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, fmtClock(x1)));
  const pts = batches.map((b) => `${px(b.batch_time_ms).toFixed(1)},${py(b[key]).toFixed(1)}`);
  const first = px(x0).toFixed(1), last = px(x1).toFixed(1), base = (H - B).toFixed(1);
  node.appendChild(svg('polygon', { class: 'area', points: `${first},${base} ${pts.join(' ')} ${last},${base}` }));
  node.appendChild(svg('polyline', { class: 'series', points: pts.join(' ') }));
  if (batches.length <= 60) {
    for (const b of batches) {
      const c = svg('circle', { cx: px(b.batch_time_ms), cy: py(b[key]), r: 2.5 });
      c.appendChild(svg('title', {}, `${fmtTime(b.batch_time_ms)}: ${fmt(b[key])}`));
      node.appendChild(c);
    }
  }
}

function rangesTable(ranges) {
  const t = el('table', { class: 'ranges' });
  for (const r of ranges) {
    const tr = el('tr', { class: 'range' });
    tr.appendChild(el('td', { class: 'topic' }, r.topic));
    tr.appendChild(el('td', { class: 'partition num' }, String(r.partition)));
    tr.appendChild(el('td', { class: 'from num' }, String(r.from_offset)));
    tr.appendChild(el('td', { class: 'until num' }, String(r.until_offset)));
    tr.appendChild(el('td', { class: 'count num' }, String(r.count)));
    t.appendChild(tr);
  }
  return t;
}

function render(d) {
  const batches = d.batches; // newest first
  const oldestFirst = batches.slice().reverse();
  showMillis = d.batch_interval_ms % 1000 !== 0;
  document.getElementById('summary').textContent =
    `Running batches of ${fmtMs(d.batch_interval_ms)} for ${fmtSpan(Date.now() - d.started_ms)} ` +
    `since ${fmtTime(d.started_ms)} (${d.completed_batches} completed batches, ` +
    `${d.processed_records} records)`;
  document.getElementById('rate-limit').textContent = fmtLimit(d.rate_limit_per_second);
  for (const m of METRICS) {
    const avg = batches.length ? batches.reduce((s, b) => s + b[m.key], 0) / batches.length : null;
    document.getElementById(`avg-${m.key}`).textContent = avg === null ? '–' : `avg ${m.fmt(avg)}`;
    drawChart(document.getElementById(`chart-${m.key}`), oldestFirst, m.key, m.fmt);
  }
  const shown = batches.slice(0, TABLE_ROWS);
  document.getElementById('batches-title').textContent =
    `Completed Batches (last ${shown.length} out of ${d.completed_batches})`;
  const body = document.querySelector('#batches tbody');
  const rows = document.createDocumentFragment();
  for (const b of shown) {
    const tr = el('tr', { class: 'batch', 'data-batch-time': String(b.batch_time_ms) });
    tr.appendChild(el('td', { class: 'time' }, fmtTime(b.batch_time_ms)));
    tr.appendChild(el('td', { class: 'records num' }, String(b.records)));
    tr.appendChild(el('td', { class: 'num' }, fmtMs(b.scheduling_delay_ms)));
    tr.appendChild(el('td', { class: 'num' }, fmtMs(b.processing_delay_ms)));
    tr.appendChild(el('td', { class: 'num' }, fmtMs(b.total_delay_ms)));
    tr.appendChild(el('td', { class: 'limit num' }, fmtLimit(b.rate_limit_per_second)));
    const cell = el('td');
    cell.appendChild(rangesTable(b.offset_ranges));
    tr.appendChild(cell);
    rows.appendChild(tr);
  }
  body.replaceChildren(rows);
  document.body.setAttribute('data-completed-batches', String(d.completed_batches));
}

async function refresh() {
  try {
    const r = await fetch('api/batches', { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    render(await r.json());
    document.getElementById('status').textContent = '';
  } catch (e) {
    document.getElementById('status').textContent = `Cannot reach the stream: ${e.message}`;
  } finally {
    setTimeout(refresh, POLL_MS);
  }
}

refresh();
