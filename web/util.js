// util.js - small helpers every view uses: building DOM and SVG nodes,
// formatting times, ids and states, and limiting how often work runs.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Fills a node's attributes from a plain object: class, text, dataset
// (data-*), on (event listeners), anything else as an attribute. Never a
// style attribute: the page's CSP forbids inline styles.
function fill(node, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.setAttribute('class', v);
    else if (k === 'text') node.textContent = v;
    else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) {
        if (dv !== undefined && dv !== null) node.dataset[dk] = String(dv);
      }
    } else if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    } else if (k === 'value' && 'value' in node && !(node instanceof SVGElement)) {
      node.value = v;
    } else node.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// Appends children to node, skipping null, undefined and false (the DOM's
// own append would print them).
export function put(node, ...children) {
  return append(node, children);
}

// h('a', {href: '/jobs', class: 'mono'}, 'j42'): an HTML element.
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  fill(node, attrs);
  return append(node, children);
}

// s('rect', {x: 0, y: 0}): an SVG element.
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  fill(node, attrs);
  return append(node, children);
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// 64-bit integers arrive as strings; every time and count here fits well
// inside a double.
export function num(v) {
  const n = Number(v || 0);
  return Number.isFinite(n) ? n : 0;
}

// "JOB_STATE_QUEUED" -> "queued"; "WORKFLOW_STATE_RUNNING" -> "running".
export function stateName(e) {
  if (!e) return 'unknown';
  return String(e).replace(/^(JOB|WORKFLOW)_STATE_/, '').toLowerCase();
}

// "EVENT_KIND_JOB_SUCCEEDED" -> "job.succeeded" (the SSE event name).
export function kindName(e) {
  return String(e || '').replace(/^EVENT_KIND_/, '').toLowerCase()
    .replace('_', '.');
}

export const FINAL = new Set(['succeeded', 'failed', 'canceled']);

// A state label: colour and text, never colour alone.
// A job's last reported progress: a bar and "40% message"; null when none.
export function progressEl(j, compact) {
  if (!j.progress) return null;
  const pct = Math.max(0, Math.min(100, num(j.progress.percent)));
  const msg = j.progress.message || '';
  return h('span', { class: `progress${compact ? ' compact' : ''}`, title: msg ? `${pct}% ${msg}` : `${pct}%` },
    h('progress', { max: '100', value: String(pct) }),
    h('span', { class: 'pct' }, `${pct}%`),
    !compact && msg ? h('span', { class: 'msg' }, msg) : null);
}

export function badge(state, extra) {
  const name = stateName(state);
  return h('span', {
    class: `badge state-${name}${extra ? ' ' + extra : ''}`,
    dataset: { state: name },
  }, h('span', { class: 'dot', 'aria-hidden': 'true' }), name);
}

export function relTime(ms, now = Date.now()) {
  const d = Math.round((now - ms) / 1000);
  const a = Math.abs(d);
  let t;
  if (a < 2) return 'just now';
  if (a < 60) t = `${a} s`;
  else if (a < 3600) t = `${Math.floor(a / 60)} min`;
  else if (a < 86400) t = `${Math.floor(a / 3600)} h`;
  else t = `${Math.floor(a / 86400)} d`;
  return d >= 0 ? `${t} ago` : `in ${t}`;
}

export function absTime(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.` +
    `${p(d.getMilliseconds(), 3)}`;
}

// A relative time that stays current (app.js refreshes every [data-ms])
// with the absolute time on hover.
export function timeEl(v) {
  const ms = num(v);
  if (!ms) return h('span', { class: 'muted' }, '–');
  return h('time', {
    datetime: new Date(ms).toISOString(), title: absTime(ms),
    dataset: { ms },
  }, relTime(ms));
}

export function refreshTimes(root = document) {
  const now = Date.now();
  for (const t of root.querySelectorAll('time[data-ms]')) {
    t.textContent = relTime(Number(t.dataset.ms), now);
  }
}

export function duration(ms) {
  ms = Math.max(0, Math.round(ms));
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60000);
  if (m < 60) return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function idLink(kind, id) {
  if (!id) return h('span', { class: 'muted' }, '–');
  return h('a', { href: `/${kind}/${encodeURIComponent(id)}`, class: 'mono id' }, id);
}

// Runs fn at most once per `gap` ms, the last call winning: under a burst
// of events a view refetches once a second, never once per event.
export function throttle(fn, gap) {
  let timer = null;
  let last = 0;
  let pending = false;
  const run = () => {
    timer = null;
    pending = false;
    last = Date.now();
    fn();
  };
  const call = () => {
    pending = true;
    if (timer) return;
    timer = setTimeout(run, Math.max(0, last + gap - Date.now()));
  };
  call.cancel = () => { if (timer) clearTimeout(timer); timer = null; };
  call.pending = () => pending;
  return call;
}

// Pretty JSON of a payload or result, or its base64 when not JSON text.
export function bytesBlock(obj, field, emptyText) {
  if (obj[field] !== undefined) {
    const text = typeof obj[field] === 'string' ? obj[field]
      : JSON.stringify(obj[field], null, 2);
    return h('pre', { class: 'code', dataset: { field } }, text);
  }
  if (obj[field + '_base64'] !== undefined) {
    return h('div', {},
      h('p', { class: 'muted small' }, 'Not JSON text; the bytes in base64:'),
      h('pre', { class: 'code', dataset: { field } }, obj[field + '_base64']));
  }
  return h('p', { class: 'muted', dataset: { field, empty: '' } }, emptyText);
}

export function emptyState(title, hint, cmd) {
  return h('div', { class: 'empty' },
    h('p', { class: 'empty-title' }, title),
    hint ? h('p', { class: 'muted' }, hint) : null,
    cmd ? h('pre', { class: 'code cmd' }, cmd) : null);
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.set(k, v);
  }
  const t = u.toString();
  return t ? `?${t}` : '';
}
