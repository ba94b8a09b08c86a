// Sluice console: a hand-written single-page front end over the console's JSON API
// (/api/...) and the broker's Prometheus text (/metrics). No framework, no network access
// beyond this broker: everything it needs is in this file, console.css and index.html.
//
// Pages (hash routes): #/topics, #/topic/NAME, #/topic/NAME/messages?..., #/groups,
// #/group/ID, #/broker. Every destructive action goes through confirmDialog(), a modal
// of our own (not window.confirm) that a browser test can drive.
'use strict';

// ---------------------------------------------------------------- small helpers

/** Builds an element: el('td', {class: 'num'}, 'text', childNode, ...). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'value') e.value = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const view = () => document.getElementById('view');
/** Replaces the page; null, undefined and false children are skipped (as in el()). */
function show(...nodes) {
  view().replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function fmtInt(n) { return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'); }
function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0, v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? Math.round(v) : v.toFixed(1)) + ' ' + units[i];
}
function fmtTime(ms) {
  if (ms === null || ms === undefined || ms < 0) return '–';
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}
function fmtRate(v, unit) {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  if (unit === 'B/s') return fmtBytes(v) + '/s';
  return (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) + (unit ? ' ' + unit : '');
}

function banner(msg, kind) {
  const b = document.getElementById('banner');
  if (!msg) { b.hidden = true; return; }
  b.className = 'banner' + (kind ? ' ' + kind : '');
  b.textContent = msg;
  b.hidden = false;
}

/** An API failure: Kafka's error name (TOPIC_AUTHORIZATION_FAILED, ...) and message. */
class ApiError extends Error {
  constructor(status, name, message) {
    super(name + (message ? ': ' + message : ''));
    this.status = status;
    this.kafkaName = name;
  }
}

async function api(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!res.ok) {
    const e = data && data.error;
    throw new ApiError(res.status, e ? e.name : 'HTTP_' + res.status, e ? e.message : text.slice(0, 200));
  }
  return data;
}

function errorBox(e) {
  return el('div', { class: 'banner', 'data-test': 'error' }, e.message || String(e));
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------- field rendering

/**
 * Indents JSON text without parsing it into numbers, so 64-bit ids and key order are
 * shown exactly as stored. The server has already checked that the text is JSON.
 */
function prettyJson(text) {
  let out = '', depth = 0, inStr = false, esc = false;
  const nl = () => '\n' + '  '.repeat(depth);
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      out += c;
      if (esc) esc = false;
      else if (c === '\\') esc = true;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue;
    if (c === '"') { inStr = true; out += c; continue; }
    if (c === '{' || c === '[') {
      // An empty object or array stays on one line.
      let j = i + 1;
      while (j < text.length && ' \n\r\t'.includes(text[j])) j++;
      if (text[j] === (c === '{' ? '}' : ']')) { out += c + text[j]; i = j; continue; }
      depth++; out += c + nl(); continue;
    }
    if (c === '}' || c === ']') { depth = Math.max(0, depth - 1); out += nl() + c; continue; }
    if (c === ',') { out += c + nl(); continue; }
    if (c === ':') { out += ': '; continue; }
    out += c;
  }
  return out;
}

/** One key, value or header value: a badge saying how it is shown, then the content. */
function field(f, cls) {
  if (f === null || f === undefined) {
    return el('div', { class: cls }, el('span', { class: 'badge null', 'data-format': 'null' }, 'null'));
  }
  const shown = f.format === 'json' ? prettyJson(f.data) : f.data;
  const note = f.truncated ? el('div', { class: 'muted small' }, `first ${fmtInt(f.shown_bytes)} of ${fmtInt(f.size)} bytes shown`) : null;
  return el('div', { class: cls },
    el('span', { class: 'badge ' + f.format, 'data-format': f.format, title: `${f.size} bytes` }, f.format),
    el('pre', { class: 'field-' + f.format }, shown), note);
}

// ---------------------------------------------------------------- modal dialogs

/**
 * A confirmation dialog. `body` is a node; with `typed`, the confirm button stays disabled
 * until the user types that exact text (the topic or group name). Resolves true on confirm.
 */
function confirmDialog({ title, body, confirmLabel, danger, typed }) {
  return new Promise((resolve) => {
    const back = document.getElementById('modal-back');
    const modal = document.getElementById('modal');
    const ok = el('button', { class: danger ? 'danger' : 'primary', id: 'confirm-ok', disabled: !!typed }, confirmLabel || 'Confirm');
    const cancel = el('button', { id: 'confirm-cancel' }, 'Cancel');
    let input = null;
    if (typed) {
      input = el('input', { id: 'confirm-input', autocomplete: 'off', spellcheck: 'false', placeholder: typed });
      input.addEventListener('input', () => { ok.disabled = input.value !== typed; });
    }
    const close = (v) => { back.hidden = true; modal.replaceChildren(); document.removeEventListener('keydown', onKey); resolve(v); };
    const onKey = (ev) => { if (ev.key === 'Escape') close(false); };
    ok.addEventListener('click', () => { if (!ok.disabled) close(true); });
    cancel.addEventListener('click', () => close(false));
    document.addEventListener('keydown', onKey);
    modal.replaceChildren(...[
      el('h2', {}, title),
      body,
      typed ? el('p', {}, 'Type ', el('code', {}, typed), ' to confirm:') : null,
      input,
      el('div', { class: 'actions' }, cancel, ok)].filter((n) => n !== null));
    back.hidden = false;
    (input || ok).focus();
  });
}

// ---------------------------------------------------------------- charts (SVG)

const COLORS = ['#1f6feb', '#d97706', '#059669', '#dc2626', '#7c3aed', '#0891b2', '#be185d', '#4b5563'];

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * A line chart of `series` ([{name, points: [[tMs, value], ...]}]) over the last
 * `windowMs`, as an SVG inside a titled box. `fmt` formats axis values.
 */
function lineChart({ id, title, series, windowMs, fmt }) {
  const W = 560, H = 180, L = 62, R = 10, T = 10, B = 22;
  const now = Date.now();
  const t0 = now - windowMs;
  let max = 0;
  for (const s of series) for (const [, v] of s.points) if (isFinite(v)) max = Math.max(max, v);
  max = niceMax(max);
  const x = (t) => L + (W - L - R) * Math.max(0, (t - t0)) / windowMs;
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, 'data-chart': id });
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4;
    g.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    g.append(svg('text', { class: 'tick', x: L - 6, y: y(v) + 3, 'text-anchor': 'end' }, fmt ? fmt(v) : v));
  }
  const mins = Math.round(windowMs / 60000);
  g.append(svg('text', { class: 'tick', x: L, y: H - 6 }, `-${mins} min`));
  g.append(svg('text', { class: 'tick', x: W - R, y: H - 6, 'text-anchor': 'end' }, 'now'));
  g.append(svg('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
  g.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
  const legend = el('div', { class: 'legend' });
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.filter(([t, v]) => t >= t0 && isFinite(v));
    if (pts.length === 1) {
      g.append(svg('circle', { cx: x(pts[0][0]).toFixed(1), cy: y(pts[0][1]).toFixed(1), r: 2.5, fill: color, 'data-series': s.name }));
    } else if (pts.length > 1) {
      g.append(svg('polyline', {
        fill: 'none', stroke: color, 'stroke-width': 1.8, 'data-series': s.name,
        points: pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
      }));
    }
    const last = pts.length ? pts[pts.length - 1][1] : null;
    legend.append(el('span', { 'data-series': s.name, 'data-last': last === null ? '' : String(last) },
      el('i', { style: `background:${color}` }), `${s.name}: ${last === null ? '–' : (fmt ? fmt(last) : last)}`));
  });
  return el('div', { class: 'chart', id }, el('h3', {}, title), g, legend);
}

// ---------------------------------------------------------------- router

let pageTimers = [];
function every(ms, fn) { pageTimers.push(setInterval(fn, ms)); }
function clearTimers() { pageTimers.forEach(clearInterval); pageTimers = []; }

function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/topics';
  const [path, query] = h.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query || '') };
}

async function route() {
  clearTimers();
  banner(null);
  const { parts, params } = parseHash();
  const section = parts[0] || 'topics';
  document.querySelectorAll('header nav a').forEach((a) => {
    const n = a.getAttribute('data-nav');
    a.classList.toggle('active', n === section || (n === 'topics' && section === 'topic') || (n === 'groups' && section === 'group'));
  });
  try {
    if (section === 'topics') await topicsPage();
    else if (section === 'topic' && parts[2] === 'messages') await messagesPage(parts[1], params);
    else if (section === 'topic') await topicPage(parts[1]);
    else if (section === 'groups') await groupsPage();
    else if (section === 'group') await groupPage(parts[1]);
    else if (section === 'broker') await brokerPage();
    else show(el('h1', {}, 'Not found'), el('p', {}, el('a', { href: '#/topics' }, 'Topics')));
  } catch (e) {
    show(el('h1', {}, 'Error'), errorBox(e));
  }
}

// ---------------------------------------------------------------- topics

async function topicsPage() {
  const data = await api('GET', '/api/topics');
  const rows = data.topics.map((t) => {
    const messages = t.partitions.reduce((n, p) => n + Math.max(0, p.high_watermark - p.log_start), 0);
    return el('tr', { 'data-topic': t.name },
      el('td', {}, el('a', { href: '#/topic/' + enc(t.name), class: 'topic-link' }, t.name), t.internal ? el('span', { class: 'badge' }, 'internal') : null),
      el('td', { class: 'num', 'data-col': 'partitions' }, t.partitions.length),
      el('td', { class: 'num', 'data-col': 'messages' }, fmtInt(messages)),
      el('td', { class: 'num', 'data-col': 'size' }, fmtBytes(t.size_bytes)),
      el('td', {}, el('a', { href: `#/topic/${enc(t.name)}/messages` }, 'Browse')));
  });
  const create = el('button', { class: 'primary', id: 'create-topic', onclick: createTopicDialog }, 'Create topic…');
  show(
    el('div', { class: 'toolbar' }, el('h1', { style: 'margin-right:auto' }, 'Topics'), create),
    el('table', { id: 'topics' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Name'), el('th', { class: 'num' }, 'Partitions'), el('th', { class: 'num' }, 'Messages'), el('th', { class: 'num' }, 'Size'), el('th', {}, ''))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No topics you may describe.')))));
}

async function createTopicDialog() {
  const name = el('input', { id: 'new-topic-name', placeholder: 'orders', autocomplete: 'off' });
  const parts = el('input', { id: 'new-topic-partitions', type: 'number', min: 1, value: '1' });
  const configs = el('textarea', { id: 'new-topic-configs', placeholder: 'cleanup.policy=compact\nretention.ms=86400000' });
  const form = el('div', { class: 'form' },
    el('label', {}, 'Name', name),
    el('label', {}, 'Partitions', parts),
    el('label', {}, 'Configs (one key=value a line, optional)', configs));
  const ok = await confirmDialog({ title: 'Create topic', body: form, confirmLabel: 'Create' });
  if (!ok) return;
  const cfg = {};
  for (const line of configs.value.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const i = t.indexOf('=');
    if (i <= 0) { banner(`Config line "${t}" is not key=value`); return; }
    cfg[t.slice(0, i).trim()] = t.slice(i + 1).trim();
  }
  try {
    const r = await api('POST', '/api/topics', { name: name.value.trim(), partitions: Number(parts.value), configs: cfg });
    location.hash = '#/topic/' + enc(r.name);
    banner(`Topic ${r.name} created with ${r.partitions} partition(s).`, 'info');
  } catch (e) {
    banner('Create failed: ' + e.message);
  }
}

async function topicPage(name) {
  const t = await api('GET', '/api/topics/' + enc(name));
  const partRows = t.partitions.map((p) => el('tr', { 'data-partition': p.partition },
    el('td', { class: 'num' }, p.partition),
    el('td', { class: 'num', 'data-col': 'log_start' }, p.log_start),
    el('td', { class: 'num', 'data-col': 'high_watermark' }, p.high_watermark),
    el('td', { class: 'num', 'data-col': 'last_stable' }, p.last_stable),
    el('td', { class: 'num', 'data-col': 'size' }, fmtBytes(p.size_bytes)),
    el('td', {}, el('a', { href: `#/topic/${enc(name)}/messages?partition=${p.partition}&position=earliest` }, 'Browse'))));
  const cfgTable = t.configs_error
    ? el('p', { class: 'err' }, 'Configs: ' + t.configs_error.name + ': ' + t.configs_error.message)
    : el('table', { id: 'configs' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Config'), el('th', {}, 'Value'), el('th', {}, 'Source'))),
      el('tbody', {}, t.configs.map((c) => el('tr', { 'data-config': c.name },
        el('td', { class: 'mono' }, c.name),
        el('td', { class: 'mono', 'data-col': 'value' }, c.sensitive ? '[hidden]' : (c.value === null ? 'null' : c.value)),
        el('td', { class: c.source === 'DYNAMIC_TOPIC_CONFIG' ? 'mono' : 'mono muted' }, c.source)))));
  const del = el('button', { class: 'danger', id: 'delete-topic', onclick: () => deleteTopic(name) }, 'Delete topic…');
  show(
    el('div', { class: 'toolbar' },
      el('h1', { style: 'margin-right:auto' }, 'Topic ', el('span', { class: 'mono', id: 'topic-name' }, t.name)),
      el('a', { href: `#/topic/${enc(name)}/messages` }, el('button', {}, 'Browse messages')), del),
    el('dl', { class: 'kv panel' },
      el('dt', {}, 'Topic id'), el('dd', {}, t.id),
      el('dt', {}, 'Partitions'), el('dd', { id: 'partition-count' }, t.partitions.length),
      el('dt', {}, 'Size'), el('dd', {}, fmtBytes(t.size_bytes))),
    el('h2', {}, 'Partitions'),
    el('table', { id: 'partitions' },
      el('thead', {}, el('tr', {}, el('th', { class: 'num' }, 'Partition'), el('th', { class: 'num' }, 'Log start'), el('th', { class: 'num' }, 'Log end (high watermark)'), el('th', { class: 'num' }, 'Last stable'), el('th', { class: 'num' }, 'Size'), el('th', {}, ''))),
      el('tbody', {}, partRows)),
    el('h2', {}, 'Produce a test message'),
    produceForm(t),
    el('h2', {}, 'Configs'),
    el('p', { class: 'muted small' }, 'The effective topic configs, as DescribeConfigs reports them.'),
    cfgTable);
}

function headerRow() {
  return el('div', { class: 'row header-row' },
    el('label', {}, 'Header key', el('input', { class: 'hdr-key', autocomplete: 'off' })),
    el('label', {}, 'Header value', el('input', { class: 'hdr-value', autocomplete: 'off' })));
}

function produceForm(t) {
  const partition = el('select', { id: 'produce-partition' },
    el('option', { value: '' }, 'any (Kafka\'s partitioner)'),
    t.partitions.map((p) => el('option', { value: String(p.partition) }, String(p.partition))));
  const key = el('input', { id: 'produce-key', autocomplete: 'off', placeholder: 'none' });
  const value = el('textarea', { id: 'produce-value', placeholder: '{"hello": "world"}' });
  const headers = el('div', { id: 'produce-headers' }, headerRow());
  const result = el('div', { id: 'produce-result', class: 'small' });
  const send = async () => {
    result.textContent = 'Sending…';
    const hs = [...headers.querySelectorAll('.header-row')]
      .map((r) => ({ key: r.querySelector('.hdr-key').value, value: r.querySelector('.hdr-value').value }))
      .filter((h) => h.key !== '');
    const body = {
      partition: partition.value === '' ? null : Number(partition.value),
      key: key.value === '' ? null : key.value,
      value: value.value,
      headers: hs,
    };
    try {
      const r = await api('POST', `/api/topics/${enc(t.name)}/messages`, body);
      result.replaceChildren(el('span', { class: 'ok' }, `Produced to partition ${r.partition} at offset ${r.offset}.`));
    } catch (e) {
      result.replaceChildren(el('span', { class: 'err' }, e.message));
    }
  };
  return el('div', { class: 'panel form' },
    el('div', { class: 'row' }, el('label', {}, 'Partition', partition), el('label', { style: 'flex:1' }, 'Key', key)),
    el('label', {}, 'Value', value),
    headers,
    el('div', { class: 'row' },
      el('button', { onclick: () => headers.append(headerRow()) }, 'Add header'),
      el('button', { class: 'primary', id: 'produce-send', onclick: send }, 'Produce')),
    result);
}

async function deleteTopic(name) {
  const ok = await confirmDialog({
    title: 'Delete topic',
    body: el('p', {}, 'This deletes topic ', el('code', {}, name), ' and all its messages. It cannot be undone.'),
    confirmLabel: 'Delete', danger: true, typed: name,
  });
  if (!ok) return;
  try {
    await api('DELETE', '/api/topics/' + enc(name));
    location.hash = '#/topics';
    setTimeout(() => banner(`Topic ${name} deleted.`, 'info'), 0);
  } catch (e) {
    banner('Delete failed: ' + e.message);
  }
}

// ---------------------------------------------------------------- messages

async function messagesPage(name, params) {
  const meta = await api('GET', '/api/topics/' + enc(name));
  const q = new URLSearchParams(params);
  if (!q.has('partition')) q.set('partition', '0');
  if (!q.has('offset') && !q.has('timestamp') && !q.has('position')) q.set('position', 'earliest');
  if (!q.has('limit')) q.set('limit', '20');
  if (!q.has('isolation')) q.set('isolation', 'read_uncommitted');
  const go = (changes) => {
    const n = new URLSearchParams(q);
    for (const k of ['offset', 'timestamp', 'position']) if (k in changes) for (const d of ['offset', 'timestamp', 'position']) n.delete(d);
    for (const [k, v] of Object.entries(changes)) n.set(k, v);
    location.hash = `#/topic/${enc(name)}/messages?${n}`;
  };

  const partition = el('select', { id: 'msg-partition' }, meta.partitions.map((p) =>
    el('option', { value: String(p.partition), selected: String(p.partition) === q.get('partition') }, String(p.partition))));
  const mode = el('select', { id: 'msg-mode' },
    ['offset', 'timestamp', 'earliest', 'latest'].map((m) => el('option', { value: m }, m)));
  const start = el('input', { id: 'msg-start', autocomplete: 'off', size: 26 });
  if (q.has('offset')) { mode.value = 'offset'; start.value = q.get('offset'); }
  else if (q.has('timestamp')) { mode.value = 'timestamp'; start.value = fmtTime(Number(q.get('timestamp'))).replace(' UTC', 'Z').replace(' ', 'T'); }
  else mode.value = q.get('position');
  const limit = el('select', { id: 'msg-limit' }, [10, 20, 50, 100, 500].map((n) => el('option', { value: String(n), selected: String(n) === q.get('limit') }, String(n))));
  const isolation = el('select', { id: 'msg-isolation' },
    el('option', { value: 'read_uncommitted' }, 'read_uncommitted'),
    el('option', { value: 'read_committed' }, 'read_committed'));
  isolation.value = q.get('isolation');
  const apply = () => {
    const c = { partition: partition.value, limit: limit.value, isolation: isolation.value };
    if (mode.value === 'offset') c.offset = start.value.trim() || '0';
    else if (mode.value === 'timestamp') {
      const s = start.value.trim();
      const ms = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
      if (!isFinite(ms)) { banner(`"${s}" is neither epoch milliseconds nor an ISO date`); return; }
      c.timestamp = String(ms);
    } else c.position = mode.value;
    go(c);
  };
  const controls = el('div', { class: 'toolbar' },
    el('label', {}, 'Partition', partition),
    el('label', {}, 'Start at', mode),
    el('label', {}, 'Offset / time (ms or ISO 8601)', start),
    el('label', {}, 'Page size', limit),
    el('label', {}, 'Isolation', isolation),
    el('button', { class: 'primary', id: 'msg-go', onclick: apply }, 'Show'));

  let data;
  try {
    data = await api('GET', `/api/topics/${enc(name)}/messages?${q}`);
  } catch (e) {
    show(el('h1', {}, 'Messages in ', el('span', { class: 'mono' }, name)), controls, errorBox(e));
    return;
  }
  const pager = () => el('div', { class: 'pager' },
    el('button', { class: 'msg-prev', disabled: data.prev === null, onclick: () => go({ offset: String(data.prev) }) }, '← Previous'),
    el('span', { class: 'muted small msg-range' },
      data.records.length ? `offsets ${data.records[0].offset}–${data.records[data.records.length - 1].offset}` : 'no messages here',
      ` · partition ${data.partition}: log start ${data.log_start}, high watermark ${data.high_watermark}, last stable ${data.last_stable}`),
    el('button', { class: 'msg-next', disabled: data.next === null, onclick: () => go({ offset: String(data.next) }) }, 'Next →'));
  const rows = data.records.map((r) => el('tr', { 'data-offset': r.offset, class: 'msg-row' },
    el('td', { class: 'num mono' }, r.offset),
    el('td', { class: 'mono small' }, fmtTime(r.timestamp), el('div', { class: 'muted' }, r.timestamp_type),
      r.control ? el('div', { class: 'badge' }, 'control: ' + r.control) : null,
      r.batch && r.batch.compression !== 'none' ? el('div', { class: 'muted' }, r.batch.compression) : null,
      r.batch && r.batch.transactional ? el('div', { class: 'muted' }, 'transactional') : null),
    el('td', { class: 'msg-key' }, field(r.key, 'key')),
    el('td', { class: 'msg-headers' }, r.headers.length ? r.headers.map((h) => el('div', { class: 'hdr', 'data-header': h.key }, el('span', { class: 'mono' }, h.key, ' = '), field(h.value, 'hvalue'))) : el('span', { class: 'muted' }, '–')),
    el('td', { class: 'msg-value' }, field(r.value, 'value'))));
  show(
    el('h1', {}, 'Messages in ', el('a', { href: '#/topic/' + enc(name), class: 'mono' }, name)),
    controls,
    data.note ? el('p', { class: 'muted small' }, data.note) : null,
    pager(),
    el('table', { id: 'messages' },
      el('thead', {}, el('tr', {}, el('th', { class: 'num' }, 'Offset'), el('th', {}, 'Timestamp'), el('th', {}, 'Key'), el('th', {}, 'Headers'), el('th', {}, 'Value'))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No messages at this position.')))),
    pager());
}

// ---------------------------------------------------------------- groups

async function groupsPage() {
  const data = await api('GET', '/api/groups');
  const rows = data.groups.map((g) => el('tr', { 'data-group': g.group_id },
    el('td', {}, el('a', { href: '#/group/' + enc(g.group_id), class: 'group-link' }, g.group_id)),
    el('td', { 'data-col': 'type' }, g.type),
    el('td', { 'data-col': 'state' }, el('span', { class: 'state ' + g.state }, g.state)),
    el('td', { class: 'num', 'data-col': 'members' }, g.members === null ? '–' : g.members),
    el('td', { class: 'num', 'data-col': 'lag' }, g.lag === null ? '–' : fmtInt(g.lag))));
  show(
    el('h1', {}, 'Consumer groups'),
    el('p', { class: 'muted small' }, 'Classic groups, KIP-848 consumer groups and share groups, as ListGroups reports them. Lag: log end offset minus committed offset, summed over partitions.'),
    el('table', { id: 'groups' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Group'), el('th', {}, 'Type'), el('th', {}, 'State'), el('th', { class: 'num' }, 'Members'), el('th', { class: 'num' }, 'Lag'))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No groups you may describe.')))));
}

async function groupPage(id) {
  const g = await api('GET', '/api/groups/' + enc(id));
  const memberRows = g.members.map((m) => el('tr', { 'data-member': m.member_id },
    el('td', { class: 'mono small' }, m.member_id, m.instance_id ? el('div', { class: 'muted' }, 'instance ' + m.instance_id) : null),
    el('td', { class: 'mono' }, m.client_id),
    el('td', { class: 'mono' }, m.host),
    el('td', { class: 'mono small member-assignment' }, m.assignment.length
      ? m.assignment.map((a) => el('div', {}, `${a.topic}: ${a.partitions.join(', ')}`))
      : el('span', { class: 'muted' }, 'none'))));
  const offsetRows = g.offsets.map((o) => el('tr', { 'data-tp': `${o.topic}-${o.partition}` },
    el('td', { class: 'mono' }, o.topic),
    el('td', { class: 'num' }, o.partition),
    el('td', { class: 'num', 'data-col': 'committed' }, o.committed === null ? '–' : o.committed),
    el('td', { class: 'num', 'data-col': 'log_end' }, o.log_end === null ? '–' : o.log_end),
    el('td', { class: 'num', 'data-col': 'lag' }, o.lag === null ? '–' : o.lag),
    el('td', { class: 'mono small' }, o.member_id || '')));
  const chartBox = el('div', { id: 'lag-chart-box' });
  const drawLag = async () => {
    try {
      const h = await api('GET', `/api/groups/${enc(id)}/lag`);
      chartBox.replaceChildren(lineChart({
        id: 'lag-chart', title: `Total lag, sampled every ${h.interval_ms / 1000} s`,
        series: [{ name: 'lag', points: h.samples.map((s) => [s.t, s.lag]) }],
        windowMs: h.window_ms, fmt: (v) => (Number.isInteger(v) ? fmtInt(v) : v.toFixed(1)),
      }));
    } catch (e) {
      chartBox.replaceChildren(errorBox(e));
    }
  };
  await drawLag();
  every(5000, drawLag);
  show(
    el('h1', {}, 'Group ', el('span', { class: 'mono', id: 'group-id' }, g.group_id)),
    el('div', { class: 'cards' },
      el('div', { class: 'card' }, el('div', { class: 'k' }, 'Type'), el('div', { class: 'v', id: 'group-type' }, g.type)),
      el('div', { class: 'card' }, el('div', { class: 'k' }, 'State'), el('div', { class: 'v state ' + g.state, id: 'group-state' }, g.state)),
      el('div', { class: 'card' }, el('div', { class: 'k' }, g.type === 'classic' ? 'Protocol' : 'Assignor'), el('div', { class: 'v' }, g.protocol || '–')),
      el('div', { class: 'card' }, el('div', { class: 'k' }, 'Members'), el('div', { class: 'v', id: 'group-members' }, g.members.length)),
      el('div', { class: 'card' }, el('div', { class: 'k' }, 'Total lag'), el('div', { class: 'v', id: 'group-lag' }, g.lag === null ? '–' : fmtInt(g.lag)))),
    g.error ? el('p', { class: 'err' }, g.error.name + ': ' + g.error.message) : null,
    chartBox,
    el('h2', {}, 'Members'),
    el('table', { id: 'members' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Member'), el('th', {}, 'Client id'), el('th', {}, 'Host'), el('th', {}, 'Assignment'))),
      el('tbody', {}, memberRows.length ? memberRows : el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No active members.')))),
    el('h2', {}, g.type === 'share' ? 'Start offsets' : 'Committed offsets and lag'),
    el('table', { id: 'offsets' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Topic'), el('th', { class: 'num' }, 'Partition'), el('th', { class: 'num' }, g.type === 'share' ? 'Start offset' : 'Committed'), el('th', { class: 'num' }, 'Log end'), el('th', { class: 'num' }, 'Lag'), el('th', {}, 'Member'))),
      el('tbody', {}, offsetRows.length ? offsetRows : el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No committed offsets.')))),
    g.type === 'share' ? null : resetForm(g));
}

function resetForm(g) {
  const topics = [...new Set(g.offsets.map((o) => o.topic))];
  const scope = el('select', { id: 'reset-topic' }, el('option', { value: '' }, 'all topics with committed offsets'), topics.map((t) => el('option', { value: t }, t)));
  const strategy = el('select', { id: 'reset-strategy' },
    el('option', { value: 'earliest' }, 'to earliest'),
    el('option', { value: 'latest' }, 'to latest'),
    el('option', { value: 'offset' }, 'to offset'),
    el('option', { value: 'timestamp' }, 'to timestamp (ms or ISO 8601)'));
  const value = el('input', { id: 'reset-value', autocomplete: 'off', placeholder: 'offset or time' });
  const out = el('div', { id: 'reset-result' });
  const body = (execute) => {
    const b = { strategy: strategy.value, topic: scope.value || null, execute };
    if (strategy.value === 'offset') b.value = Number(value.value);
    if (strategy.value === 'timestamp') {
      const s = value.value.trim();
      b.value = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
    }
    return b;
  };
  const planTable = (r) => el('table', { class: 'reset-plan' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Topic'), el('th', { class: 'num' }, 'Partition'), el('th', { class: 'num' }, 'Current'), el('th', { class: 'num' }, 'New'))),
    el('tbody', {}, r.offsets.map((o) => el('tr', { 'data-tp': `${o.topic}-${o.partition}` },
      el('td', { class: 'mono' }, o.topic), el('td', { class: 'num' }, o.partition),
      el('td', { class: 'num' }, o.current === null ? '–' : o.current), el('td', { class: 'num', 'data-col': 'new' }, o.new)))));
  const preview = async () => {
    try {
      const r = await api('POST', `/api/groups/${enc(g.group_id)}/reset-offsets`, body(false));
      out.replaceChildren(el('p', { class: 'muted small' }, 'Preview (nothing changed yet):'), planTable(r));
      return r;
    } catch (e) {
      out.replaceChildren(errorBox(e));
      return null;
    }
  };
  const execute = async () => {
    const plan = await preview();
    if (!plan) return;
    const ok = await confirmDialog({
      title: 'Reset offsets',
      body: el('div', {}, el('p', {}, 'Commit these offsets for group ', el('code', {}, g.group_id), '?'), planTable(plan)),
      confirmLabel: 'Reset offsets', danger: true, typed: g.group_id,
    });
    if (!ok) return;
    try {
      const r = await api('POST', `/api/groups/${enc(g.group_id)}/reset-offsets`, body(true));
      // Show the group as it is now, and say what changed.
      await route();
      banner(`Offsets of group ${r.group_id} reset: ` + r.offsets.map((o) => `${o.topic}-${o.partition} → ${o.new}`).join(', '), 'info');
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  };
  return el('div', {},
    el('h2', {}, 'Reset offsets'),
    el('p', { class: 'muted small' }, 'As kafka-consumer-groups --reset-offsets: only while the group has no members. Preview first; the reset asks for the group id.'),
    el('div', { class: 'toolbar panel' },
      el('label', {}, 'Topics', scope), el('label', {}, 'Strategy', strategy), el('label', {}, 'Value', value),
      el('button', { id: 'reset-preview', onclick: preview }, 'Preview'),
      el('button', { class: 'danger', id: 'reset-execute', onclick: execute }, 'Reset offsets…')),
    out);
}

// ---------------------------------------------------------------- broker: live metrics

/**
 * Parses Prometheus' text format into [{name, labels, value}]. Comments and malformed
 * lines are skipped; label values are unescaped.
 */
function parsePrometheus(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3])) !== null) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

/** The broker-wide value of a counter: its series without a `topic` label, else the sum. */
function total(samples, name) {
  const all = samples.filter((s) => s.name === name);
  if (!all.length) return null;
  const broker = all.filter((s) => !('topic' in s.labels));
  return (broker.length ? broker : all).reduce((n, s) => n + s.value, 0);
}

const METRIC_WINDOW_MS = 5 * 60 * 1000;
const metricHistory = { points: [], prev: null };

/** The counters the broker page charts, read from one /metrics scrape. */
function snapshot(samples) {
  const byRequest = {};
  const add = (req, key, v) => { (byRequest[req] = byRequest[req] || {})[key] = ((byRequest[req] || {})[key] || 0) + v; };
  for (const s of samples) {
    if (!s.name.startsWith('kafka_network_requestmetrics_')) continue;
    const req = s.labels.request;
    if (!req) continue;
    const rest = s.name.slice('kafka_network_requestmetrics_'.length);
    if (rest === 'requests_total' || rest === 'requestspersec_total' || rest === 'requestspersec_count') add(req, 'count', s.value);
    else if (/^totaltimems_(seconds_)?sum$/.test(rest) || rest === 'totaltimems_sum') add(req, 'timeSum', s.value);
    else if (/^totaltimems_(seconds_)?count$/.test(rest)) add(req, 'timeCount', s.value);
    else if (/^totaltimems$/.test(rest) && s.labels.quantile === '0.99') add(req, 'p99', s.value);
  }
  return {
    t: Date.now(),
    messagesIn: total(samples, 'kafka_server_brokertopicmetrics_messagesin_total'),
    bytesIn: total(samples, 'kafka_server_brokertopicmetrics_bytesin_total'),
    bytesOut: total(samples, 'kafka_server_brokertopicmetrics_bytesout_total'),
    byRequest,
  };
}

/** Rates between two snapshots: per second for counters, mean ms for latencies. */
function rates(a, b) {
  const dt = (b.t - a.t) / 1000;
  const r = (x, y) => (x === null || y === null || dt <= 0 ? null : Math.max(0, (y - x) / dt));
  const out = { t: b.t, messagesIn: r(a.messagesIn, b.messagesIn), bytesIn: r(a.bytesIn, b.bytesIn), bytesOut: r(a.bytesOut, b.bytesOut), requests: {}, latency: {} };
  for (const [req, now] of Object.entries(b.byRequest)) {
    const was = a.byRequest[req] || {};
    if (now.count !== undefined) out.requests[req] = r(was.count || 0, now.count);
    if (now.timeSum !== undefined && now.timeCount !== undefined) {
      const dn = now.timeCount - (was.timeCount || 0);
      const ds = now.timeSum - (was.timeSum || 0);
      if (dn > 0) out.latency[req] = ds / dn;
    }
  }
  return out;
}

async function scrape() {
  const res = await fetch('/metrics', { credentials: 'same-origin' });
  if (!res.ok) throw new Error('/metrics answered HTTP ' + res.status);
  const snap = snapshot(parsePrometheus(await res.text()));
  if (metricHistory.prev) metricHistory.points.push(rates(metricHistory.prev, snap));
  metricHistory.prev = snap;
  const cutoff = Date.now() - METRIC_WINDOW_MS;
  while (metricHistory.points.length && metricHistory.points[0].t < cutoff) metricHistory.points.shift();
}

/** The request types with the most traffic over the window, at most `n`. */
function busiest(points, key, n) {
  const sums = {};
  for (const p of points) for (const [k, v] of Object.entries(p[key])) sums[k] = (sums[k] || 0) + (v || 0);
  return Object.entries(sums).sort((a, b) => b[1] - a[1]).slice(0, n).map(([k]) => k);
}

async function brokerPage() {
  const info = await api('GET', '/api/session');
  const charts = el('div', { class: 'charts', id: 'charts' });
  const draw = () => {
    const pts = metricHistory.points;
    const line = (key) => pts.map((p) => [p.t, p[key]]).filter(([, v]) => v !== null);
    const reqs = busiest(pts, 'requests', 6);
    const lats = busiest(pts, 'requests', 6).filter((r) => pts.some((p) => r in p.latency));
    charts.replaceChildren(
      lineChart({ id: 'chart-messages', title: 'Messages in /s', series: [{ name: 'messages in', points: line('messagesIn') }], windowMs: METRIC_WINDOW_MS, fmt: (v) => fmtRate(v) }),
      lineChart({ id: 'chart-bytes', title: 'Bytes /s', series: [{ name: 'in', points: line('bytesIn') }, { name: 'out', points: line('bytesOut') }], windowMs: METRIC_WINDOW_MS, fmt: (v) => fmtRate(v, 'B/s') }),
      lineChart({ id: 'chart-requests', title: 'Requests /s by type', series: reqs.map((r) => ({ name: r, points: pts.filter((p) => r in p.requests).map((p) => [p.t, p.requests[r]]) })), windowMs: METRIC_WINDOW_MS, fmt: (v) => fmtRate(v) }),
      lineChart({ id: 'chart-latency', title: 'Mean request time (ms) by type', series: lats.map((r) => ({ name: r, points: pts.filter((p) => r in p.latency).map((p) => [p.t, p.latency[r]]) })), windowMs: METRIC_WINDOW_MS, fmt: (v) => fmtRate(v) }));
  };
  const status = el('p', { class: 'muted small', id: 'metrics-status' }, 'Reading /metrics every 2 s; rates need two readings.');
  const tick = async () => {
    try { await scrape(); status.textContent = `Last read ${new Date().toLocaleTimeString()} · ${metricHistory.points.length} points over the last 5 minutes.`; }
    catch (e) { status.textContent = e.message; }
    draw();
  };
  show(
    el('h1', {}, 'Broker'),
    el('dl', { class: 'kv panel', id: 'broker-info' },
      el('dt', {}, 'Node id'), el('dd', {}, info.broker.node_id),
      el('dt', {}, 'Cluster id'), el('dd', {}, info.broker.cluster_id),
      el('dt', {}, 'Version'), el('dd', {}, info.broker.version),
      el('dt', {}, 'Kafka listeners'), el('dd', {}, info.broker.listeners.join(', ')),
      el('dt', {}, 'Console access'), el('dd', {}, info.mode + ' as ' + info.principal)),
    el('h2', {}, 'Throughput and request latency'),
    el('p', { class: 'muted small' }, 'Computed in this page from the counters of ', el('a', { href: '/metrics' }, '/metrics'), ', the same numbers Prometheus scrapes.'),
    status, charts);
  await tick();
  every(2000, tick);
}

// ---------------------------------------------------------------- start

async function start() {
  try {
    const s = await api('GET', '/api/session');
    document.getElementById('who').textContent = s.principal + (s.mode === 'open' ? ' (open: loopback)' : '');
  } catch (e) {
    banner(e.message);
  }
  window.addEventListener('hashchange', route);
  await route();
}

start();
