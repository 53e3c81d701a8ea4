// overview.js - the front page: queue depths per queue and type (from
// GET /v1/health), throughput and failure rate over the last 15 minutes
// as small SVG charts, the worker count and the busiest concurrency keys.
// Queues that no live worker serves, paused queues and rate-limited ones
// are flagged. Refreshed (at most once a second) when events arrive.
import { api } from './api.js';
import { h, put, s, clear, num, throttle, duration } from './util.js';

const MINUTES = 15;
const MIN_MS = 60000;

// Per-minute totals over the last MINUTES minutes, summed over queues and
// types (or over one queue/type when key is given).
function minutes(recent, key) {
  const newest = Math.max(Math.floor(Date.now() / MIN_MS) * MIN_MS,
    ...recent.map((m) => num(m.minute_ms)));
  const rows = [];
  for (let i = MINUTES - 1; i >= 0; i--) {
    rows.push({ t: newest - i * MIN_MS, ok: 0, failed: 0, retried: 0 });
  }
  const first = rows[0].t;
  for (const m of recent) {
    if (key && `${m.queue}\u0000${m.type}` !== key) continue;
    const i = Math.round((num(m.minute_ms) - first) / MIN_MS);
    if (i < 0 || i >= rows.length) continue;
    rows[i].ok += num(m.succeeded);
    rows[i].failed += num(m.failed);
    rows[i].retried += num(m.retried);
  }
  return rows;
}

const hhmm = (t) => {
  const d = new Date(t);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
};

// Stacked bars: succeeded, retried, failed per minute.
function throughputChart(rows, W) {
  const H = 150;
  const pad = { l: 40, r: 6, t: 10, b: 20 };
  const max = Math.max(1, ...rows.map((r) => r.ok + r.failed + r.retried));
  const bw = (W - pad.l - pad.r) / rows.length;
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': `Jobs finished per minute, last ${MINUTES} minutes; at most ${max} in a minute`,
    dataset: { chart: 'throughput' },
  });
  svg.append(s('line', { x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0), class: 'axis' }));
  svg.append(s('line', { x1: pad.l, x2: W - pad.r, y1: y(max), y2: y(max), class: 'grid' }));
  svg.append(s('text', { x: pad.l - 4, y: y(max) + 4, class: 'tick end' }, String(max)));
  svg.append(s('text', { x: pad.l - 4, y: y(0), class: 'tick end' }, '0'));
  rows.forEach((r, i) => {
    const x = pad.l + i * bw + 1;
    let base = 0;
    for (const [v, cls] of [[r.ok, 'bar-ok'], [r.retried, 'bar-retried'], [r.failed, 'bar-failed']]) {
      if (!v) continue;
      const top = y(base + v);
      svg.append(s('rect', { x, y: top, width: Math.max(1, bw - 2), height: y(base) - top, class: cls },
        s('title', {}, `${hhmm(r.t)}: ${r.ok} succeeded, ${r.retried} retried, ${r.failed} failed`)));
      base += v;
    }
  });
  svg.append(s('text', { x: pad.l, y: H - 4, class: 'tick' }, hhmm(rows[0].t)));
  svg.append(s('text', { x: W - pad.r, y: H - 4, class: 'tick end' }, 'now'));
  if (!rows.some((r) => r.ok + r.failed + r.retried)) {
    svg.append(s('text', { x: (pad.l + W) / 2, y: H / 2, class: 'chart-empty' }, `No job ended in the last ${MINUTES} minutes`));
  }
  return svg;
}

// Failure rate per minute: (failed + retried) / everything that ended.
function failureChart(rows, W) {
  const H = 150;
  const pad = { l: 40, r: 6, t: 10, b: 20 };
  const bw = (W - pad.l - pad.r) / rows.length;
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v);
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': `Failure rate per minute, last ${MINUTES} minutes`,
    dataset: { chart: 'failure-rate' },
  });
  for (const v of [0, 0.5, 1]) {
    svg.append(s('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: v ? 'grid' : 'axis' }));
    svg.append(s('text', { x: pad.l - 4, y: y(v) + (v ? 4 : 0), class: 'tick end' }, `${v * 100}%`));
  }
  const pts = [];
  rows.forEach((r, i) => {
    const all = r.ok + r.failed + r.retried;
    if (!all) return;
    const rate = (r.failed + r.retried) / all;
    const x = pad.l + (i + 0.5) * bw;
    pts.push([x, y(rate)]);
    svg.append(s('circle', { cx: x, cy: y(rate), r: 2.5, class: rate > 0 ? 'pt-bad' : 'pt-ok' },
      s('title', {}, `${hhmm(r.t)}: ${Math.round(rate * 100)}% of ${all} (${r.failed} failed, ${r.retried} retried)`)));
  });
  if (!pts.length) {
    svg.append(s('text', { x: (pad.l + W) / 2, y: H / 2, class: 'chart-empty' }, 'Nothing ended: no rate to show'));
  }
  if (pts.length > 1) {
    svg.insertBefore(s('polyline', { points: pts.map((p) => p.join(',')).join(' '), class: 'line-rate' }),
      svg.querySelector('circle'));
  }
  svg.append(s('text', { x: pad.l, y: H - 4, class: 'tick' }, hhmm(rows[0].t)));
  svg.append(s('text', { x: W - pad.r, y: H - 4, class: 'tick end' }, 'now'));
  return svg;
}

// A tiny line of one queue/type's finished jobs per minute.
function sparkline(rows) {
  const W = 90;
  const H = 22;
  const max = Math.max(1, ...rows.map((r) => r.ok + r.failed));
  const step = W / (rows.length - 1);
  const pts = rows.map((r, i) => `${(i * step).toFixed(1)},${(H - 2 - (H - 4) * ((r.ok + r.failed) / max)).toFixed(1)}`);
  const failed = rows.some((r) => r.failed);
  const idle = !rows.some((r) => r.ok + r.failed);
  return s('svg', { viewBox: `0 0 ${W} ${H}`, class: `spark${failed ? ' has-failed' : ''}${idle ? ' idle' : ''}`, 'aria-hidden': 'true' },
    s('polyline', { points: pts.join(' ') }));
}

function tile(label, value, cls, href) {
  const body = [h('span', { class: 'tile-value' }, String(value)), h('span', { class: 'tile-label' }, label)];
  return href
    ? h('a', { class: `tile ${cls || ''}`, href, dataset: { tile: label } }, body)
    : h('div', { class: `tile ${cls || ''}`, dataset: { tile: label } }, body);
}

// "50/s", "0.5/s": a rate limit's rate, as anvil queue limit takes it.
function rateText(l) {
  const r = Number(l.rate_per_second) || 0;
  return `${r >= 10 ? Math.round(r) : Number(r.toPrecision(3))}/s`;
}

function depthTable(depths, recent, limits) {
  const byQueue = new Map(limits.map((l) => [l.queue, l]));
  const sorted = [...depths].sort((a, b) => (a.queue + a.type).localeCompare(b.queue + b.type));
  const body = sorted.map((d) => {
    const key = `${d.queue}\u0000${d.type}`;
    const q = encodeURIComponent(d.queue);
    const t = encodeURIComponent(d.type);
    return h('tr', { dataset: { queue: d.queue, type: d.type, noWorker: d.no_worker ? 'true' : 'false', paused: d.paused ? 'true' : 'false' }, class: d.no_worker ? 'warn-row' : '' },
      h('td', {}, h('a', { href: `/jobs?queue=${q}`, class: 'mono' }, d.queue),
        d.paused ? h('span', { class: 'flag', title: 'Paused (anvil queue pause): no job of this queue is leased until it is resumed' }, 'paused') : null,
        byQueue.has(d.queue) ? h('span', { class: 'flag rate', dataset: { rate: String(byQueue.get(d.queue).rate_per_second) },
          title: `Rate limit (anvil queue limit): at most ${rateText(byQueue.get(d.queue))} of this queue's jobs start, ${num(byQueue.get(d.queue).burst)} at once; ${Number(byQueue.get(d.queue).tokens || 0).toFixed(1)} tokens now` },
        rateText(byQueue.get(d.queue))) : null),
      h('td', {}, h('a', { href: `/jobs?queue=${q}&type=${t}`, class: 'mono' }, d.type),
        d.no_worker ? h('span', { class: 'flag', title: 'No live worker serves this queue and type: its jobs wait until one does' }, 'no worker') : null),
      h('td', { class: 'num' }, h('a', { href: `/jobs?state=QUEUED&queue=${q}&type=${t}` }, String(num(d.queued)))),
      h('td', { class: 'num' }, h('a', { href: `/jobs?state=RUNNING&queue=${q}&type=${t}` }, String(num(d.running)))),
      h('td', { class: 'num' }, h('a', { href: `/jobs?state=SCHEDULED&queue=${q}&type=${t}` }, String(num(d.scheduled)))),
      h('td', { class: 'opt' }, sparkline(minutes(recent, key))));
  });
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'grid-table', id: 'depths' },
      h('thead', {}, h('tr', {},
        h('th', {}, 'Queue'), h('th', {}, 'Type'), h('th', { class: 'num' }, 'Queued'),
        h('th', { class: 'num' }, 'Running'), h('th', { class: 'num' }, 'Scheduled'),
        h('th', { class: 'opt' }, `Last ${MINUTES} min`))),
      h('tbody', {}, body)));
}

// The busiest concurrency keys (Health lists at most 20, the most jobs
// waiting first); a key at its limit is flagged.
function keyTable(keys) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'grid-table', id: 'busiest-keys' },
      h('thead', {}, h('tr', {},
        h('th', {}, 'Key'), h('th', { class: 'num' }, 'Running'), h('th', { class: 'num' }, 'Limit'),
        h('th', { class: 'num' }, 'Waiting'))),
      h('tbody', {}, keys.map((k) => {
        const full = num(k.limit) > 0 && num(k.running) >= num(k.limit);
        return h('tr', { dataset: { key: k.key, running: num(k.running), waiting: num(k.waiting), limit: num(k.limit) } },
          h('td', {}, h('span', { class: 'mono' }, k.key),
            full ? h('span', { class: 'flag', title: 'As many jobs run under this key as its limit allows: the others wait' }, 'at limit') : null),
          h('td', { class: 'num' }, String(num(k.running))),
          h('td', { class: 'num' }, String(num(k.limit))),
          h('td', { class: 'num' }, String(num(k.waiting))));
      }))));
}

// Charts are drawn at the width they get (text stays its size); the
// overview draws again when the window is resized.
function chartWidth(root) {
  const w = root.clientWidth || 800;
  return Math.max(240, Math.round((w > 900 ? (w - 16) / 2 : w) - 40));
}

function draw(root, hl, workers) {
  const cw = chartWidth(root);
  const depths = hl.depths || [];
  const recent = hl.recent || [];
  const rows = minutes(recent);
  const sum = (f) => depths.reduce((a, d) => a + num(d[f]), 0);
  const done = rows.reduce((a, r) => a + r.ok, 0);
  const failed = rows.reduce((a, r) => a + r.failed, 0);
  const live = workers ? workers.filter((w) => !w.lost).length : null;
  const lost = workers ? workers.filter((w) => w.lost).length : 0;
  const noWorker = depths.filter((d) => d.no_worker && !d.paused && (num(d.queued) || num(d.scheduled)));
  const paused = hl.paused_queues || [];
  const keys = hl.busiest_keys || [];
  clear(root);
  put(root,
    h('div', { class: 'page-head' },
      h('h1', {}, 'Overview'),
      h('p', { class: 'muted' }, `${num(hl.jobs_total)} jobs stored · up ${duration(num(hl.uptime_ms))}`)),
    h('div', { class: 'tiles' },
      tile('queued', sum('queued'), 'state-queued', '/jobs?state=QUEUED'),
      tile('running', sum('running'), 'state-running', '/jobs?state=RUNNING'),
      tile('scheduled', sum('scheduled'), 'state-scheduled', '/jobs?state=SCHEDULED'),
      tile(`succeeded, ${MINUTES} min`, done, 'state-succeeded', '/jobs?state=SUCCEEDED'),
      tile(`failed, ${MINUTES} min`, failed, 'state-failed', '/jobs?state=FAILED'),
      live === null ? null : tile(lost ? `workers live (${lost} lost)` : 'workers live', live, lost ? 'warn' : '', '/workers')),
    noWorker.length ? h('p', { class: 'alert warn', dataset: { alert: 'no-worker' } },
      h('strong', {}, 'No worker: '),
      noWorker.map((d, i) => [i ? ', ' : '', h('span', { class: 'mono' }, `${d.queue}/${d.type}`)]),
      ` ${noWorker.length === 1 ? 'has' : 'have'} jobs waiting and no live worker serving ${noWorker.length === 1 ? 'it' : 'them'}.`) : null,
    paused.length ? h('p', { class: 'alert', dataset: { alert: 'paused' } },
      h('strong', {}, 'Paused: '),
      paused.map((q, i) => [i ? ', ' : '', h('span', { class: 'mono' }, q)]),
      ` ${paused.length === 1 ? 'is' : 'are'} paused: no job of ${paused.length === 1 ? 'it' : 'them'} is leased until resumed (anvil queue resume NAME).`) : null,
    h('div', { class: 'charts' },
      h('section', { class: 'panel' }, h('h2', {}, 'Throughput'),
        h('p', { class: 'muted small' }, 'Jobs that ended per minute: ',
          h('span', { class: 'key ok' }, 'succeeded'), ' ', h('span', { class: 'key retried' }, 'retried'), ' ',
          h('span', { class: 'key failed' }, 'failed')),
        throughputChart(rows, cw)),
      h('section', { class: 'panel' }, h('h2', {}, 'Failure rate'),
        h('p', { class: 'muted small' }, 'Failed and retried attempts out of all that ended, per minute'),
        failureChart(rows, cw))),
    h('section', { class: 'panel' },
      h('h2', {}, 'Queues'),
      depths.length ? depthTable(depths, recent, hl.queue_limits || [])
        : h('div', { class: 'empty' },
          h('p', { class: 'empty-title' }, 'No queues yet'),
          h('p', { class: 'muted' }, 'A queue appears with its first job. Submit one:'),
          h('pre', { class: 'code cmd' }, 'anvil submit Sleep --data \'{"SleepTimeInSeconds": 1, "Message": "hi"}\''))),
    keys.length ? h('section', { class: 'panel', id: 'concurrency-keys' },
      h('h2', {}, 'Busiest concurrency keys'),
      h('p', { class: 'muted small' }, 'Keys with the most jobs waiting for a free slot (at most 20)'),
      keyTable(keys)) : null
  );
}

export function mount(root, params, ctx) {
  let alive = true;
  let last = null;
  root.append(h('p', { class: 'loading' }, 'Loading…'));
  const load = async () => {
    try {
      const [hl, wk] = await Promise.all([
        api('/v1/health'),
        ctx.canRead() ? api('/v1/workers').catch(() => null) : Promise.resolve(null),
      ]);
      if (!alive) return;
      last = [hl, wk ? wk.workers || [] : null];
      draw(root, ...last);
      root.dataset.loaded = String(Date.now());
    } catch (e) {
      if (!alive) return;
      clear(root).append(h('p', { class: 'alert error' }, `Could not read /v1/health: ${e.message}`));
    }
  };
  const refresh = throttle(load, 1000);
  const resized = throttle(() => { if (last) draw(root, ...last); }, 200);
  window.addEventListener('resize', resized);
  load();
  return {
    onEvents() { refresh(); },
    unmount() { alive = false; refresh.cancel(); resized.cancel(); window.removeEventListener('resize', resized); },
  };
}
