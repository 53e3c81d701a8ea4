// workflow.js - one workflow: its state and counters, the cancel and
// retry actions, and its DAG drawn as SVG. Steps are placed in columns by
// dependency depth (a step sits one column right of its deepest parent),
// ordered in each column by where their parents sit, so edges cross
// little; each edge is an `after` of its child. A step is coloured and
// labelled by its state; clicking it opens its job.
import { api, act } from './api.js';
import { h, put, s, clear, num, badge, timeEl, throttle, duration, stateName } from './util.js';
import { jobTable } from './jobs.js';
import { progress } from './workflows.js';

const NODE_W = 168;
const NODE_H = 50;
const GAP_X = 56;
const GAP_Y = 18;
const PAD = 12;
const MAX_DRAWN = 400;

// Columns of step names by dependency depth, each ordered.
export function layers(steps) {
  const by = new Map(steps.map((st) => [st.step, st]));
  const depth = new Map();
  const visit = (name, seen) => {
    if (depth.has(name)) return depth.get(name);
    if (seen.has(name)) return 0; // not a DAG: the server refuses these
    seen.add(name);
    const st = by.get(name);
    let d = 0;
    for (const p of (st && st.after) || []) {
      if (by.has(p)) d = Math.max(d, visit(p, seen) + 1);
    }
    depth.set(name, d);
    return d;
  };
  for (const st of steps) visit(st.step, new Set());
  const cols = [];
  for (const st of steps) {
    const d = depth.get(st.step);
    (cols[d] = cols[d] || []).push(st.step);
  }
  // Order each column by the mean row of its parents (barycentre).
  const row = new Map();
  (cols[0] || []).forEach((n, i) => row.set(n, i));
  for (let d = 1; d < cols.length; d++) {
    const key = (n) => {
      const ps = (by.get(n).after || []).filter((p) => row.has(p));
      return ps.length ? ps.reduce((a, p) => a + row.get(p), 0) / ps.length : 0;
    };
    cols[d] = (cols[d] || []).map((n, i) => [n, key(n), i])
      .sort((a, b) => a[1] - b[1] || a[2] - b[2]).map((x) => x[0]);
    cols[d].forEach((n, i) => row.set(n, i));
  }
  return cols.map((c) => c || []);
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

export function graph(steps, navigate) {
  const by = new Map(steps.map((st) => [st.step, st]));
  const cols = layers(steps);
  const tallest = Math.max(1, ...cols.map((c) => c.length));
  const H = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y;
  const W = PAD * 2 + cols.length * NODE_W + (cols.length - 1) * GAP_X;
  const pos = new Map();
  cols.forEach((c, d) => {
    const colH = c.length * NODE_H + (c.length - 1) * GAP_Y;
    const top = (H - colH) / 2;
    c.forEach((n, i) => pos.set(n, { x: PAD + d * (NODE_W + GAP_X), y: top + i * (NODE_H + GAP_Y) }));
  });
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'dag', id: 'dag', role: 'group',
    'aria-label': `Workflow graph: ${steps.length} steps in ${cols.length} columns`,
    dataset: { steps: steps.length },
  });
  svg.append(s('defs', {}, s('marker', {
    id: 'arrow', viewBox: '0 0 8 8', refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse',
  }, s('path', { d: 'M0,0 L8,4 L0,8 z', class: 'arrow' }))));
  const edges = s('g', { class: 'edges' });
  for (const st of steps) {
    const b = pos.get(st.step);
    for (const p of st.after || []) {
      const a = pos.get(p);
      if (!a) continue;
      const x1 = a.x + NODE_W;
      const y1 = a.y + NODE_H / 2;
      const x2 = b.x - 2;
      const y2 = b.y + NODE_H / 2;
      const mx = (x1 + x2) / 2;
      edges.append(s('path', {
        d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`,
        class: `edge from-${stateName(by.get(p).state)}`, 'marker-end': 'url(#arrow)',
        dataset: { from: p, to: st.step },
      }));
    }
  }
  svg.append(edges);
  for (const st of steps) {
    const { x, y } = pos.get(st.step);
    const name = stateName(st.state);
    const open = () => navigate(`/jobs/${encodeURIComponent(st.id)}`);
    const g = s('g', {
      class: `node state-${name}`, transform: `translate(${x},${y})`, tabindex: 0, role: 'link',
      'aria-label': `step ${st.step}: ${name}, job ${st.id}`,
      dataset: { step: st.step, state: name, job: st.id },
      on: { click: open, keydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } } },
    },
    s('title', {}, `${st.step} (${st.type}) – ${name}, job ${st.id}${st.error ? `\n${st.error}` : ''}`),
    s('rect', { width: NODE_W, height: NODE_H, rx: 8, class: 'node-box' }),
    s('rect', { width: 6, height: NODE_H, rx: 3, class: 'node-edge' }),
    s('text', { x: 16, y: 21, class: 'node-name' }, clip(st.step, 19)),
    s('text', { x: 16, y: 38, class: 'node-sub' }, `${name} · ${clip(st.type, 12)}`));
    svg.append(g);
  }
  return svg;
}

function actions(w, ctx, reload) {
  if (!ctx.canAct()) return null;
  const st = stateName(w.state);
  const out = [];
  const path = (verb) => `/v1/workflows/${encodeURIComponent(w.id)}:${verb}`;
  if (st === 'running') {
    out.push(h('button', { class: 'btn danger', type: 'button', dataset: { action: 'cancel' },
      on: { click: async () => { if (await act(`Cancel workflow ${w.id}?`, 'Every unfinished step is canceled.', 'Cancel workflow', path('cancel'))) reload(); } } }, 'Cancel'));
  }
  if (st === 'failed' || st === 'canceled') {
    out.push(h('button', { class: 'btn', type: 'button', dataset: { action: 'retry' },
      on: { click: async () => { if (await act(`Retry workflow ${w.id}?`, 'The steps that did not succeed run again; succeeded steps keep their results.', 'Retry workflow', path('retry'))) reload(); } } }, 'Retry'));
  }
  return out.length ? h('div', { class: 'actions' }, out) : null;
}

function draw(root, w, ctx, reload) {
  const steps = w.steps || [];
  const fin = num(w.finished_at_ms);
  clear(root);
  root.dataset.workflow = w.id;
  root.dataset.state = stateName(w.state);
  put(root,
    h('nav', { class: 'crumbs' }, h('a', { href: '/workflows' }, 'Workflows'), ' / ', h('span', { class: 'mono' }, w.id)),
    h('div', { class: 'page-head row wrap' },
      h('h1', {}, h('span', { class: 'mono' }, w.id), ' ', h('span', { class: 'muted thin' }, w.name)),
      h('span', { id: 'workflow-state' }, badge(w.state, 'big')),
      progress(w),
      h('span', { class: 'spacer' }),
      actions(w, ctx, reload)),
    w.error ? h('p', { class: 'alert error' }, w.error) : null,
    h('p', { class: 'muted' }, 'Created ', timeEl(w.created_at_ms),
      fin ? [', took ', duration(fin - num(w.created_at_ms))] : null,
      ` · on failure: ${w.on_failure === 'CONTINUE' ? 'continue' : 'fail fast'}`,
      num(w.timeout_ms) ? ` · timeout ${duration(num(w.timeout_ms))}` : ''),
    h('section', { class: 'panel' }, h('h2', {}, 'Graph'),
      steps.length > MAX_DRAWN
        ? h('p', { class: 'muted' }, `${steps.length} steps: the graph is drawn for up to ${MAX_DRAWN}; the steps are listed below.`)
        : h('div', { class: 'dag-wrap' }, graph(steps, ctx.navigate)),
      h('p', { class: 'legend small muted' }, ['pending', 'scheduled', 'queued', 'running', 'succeeded', 'failed', 'canceled']
        .map((st) => badge(st)))),
    h('section', { class: 'panel flush' }, h('h2', { class: 'pad' }, `Steps (${steps.length})`),
      jobTable(steps.slice(0, 500), 'steps'),
      steps.length > 500 ? h('p', { class: 'muted pad' }, `The first 500 of ${steps.length} steps; `, h('a', { href: '/jobs' }, 'the job list'), ' has them all.') : null));
}

export function mount(root, params, ctx) {
  const id = params[0];
  let alive = true;
  root.append(h('p', { class: 'loading' }, 'Loading…'));
  const load = async () => {
    try {
      const r = await api(`/v1/workflows/${encodeURIComponent(id)}`);
      if (!alive) return;
      draw(root, r.workflow, ctx, () => refresh());
      root.dataset.loaded = String(Date.now());
    } catch (e) {
      if (alive) clear(root).append(h('nav', { class: 'crumbs' }, h('a', { href: '/workflows' }, 'Workflows')), h('p', { class: 'alert error' }, e.message));
    }
  };
  const refresh = throttle(load, 700);
  load();
  return {
    onEvents(batch) {
      if (batch.some((e) => e.poll || e.missed || e.workflow_id === id)) refresh();
    },
    unmount() { alive = false; refresh.cancel(); delete root.dataset.workflow; delete root.dataset.state; },
  };
}
