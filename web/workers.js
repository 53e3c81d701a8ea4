// workers.js - the workers anvild knows (GET /v1/workers): live ones
// first, then lost ones; their host, types and queues, slots in use and
// last heartbeat. Fetched again on worker and job-start/end events.
import { api } from './api.js';
import { h, s, clear, num, timeEl, throttle, emptyState } from './util.js';

function slots(w) {
  const total = num(w.info && w.info.slots);
  const busy = num(w.running);
  if (!total) return h('span', { class: 'mono' }, `${busy} running`);
  const W = 60;
  return h('span', { class: 'progress', title: `${busy} of ${total} slots busy` },
    s('svg', { viewBox: `0 0 ${W} 8`, preserveAspectRatio: 'none', class: 'bar', 'aria-hidden': 'true' },
      s('rect', { x: 0, y: 0, width: W, height: 8, class: 'bar-bg' }),
      s('rect', { x: 0, y: 0, width: (W * Math.min(busy, total)) / total, height: 8, class: 'bar-running' })),
    h('span', { class: 'small mono' }, `${busy}/${total}`));
}

function chips(list, cls) {
  if (!list || !list.length) return h('span', { class: 'muted' }, '–');
  return h('span', { class: 'chips' }, list.map((t) => h('span', { class: `chip ${cls || ''}` }, t)));
}

function row(w) {
  const info = w.info || {};
  return h('tr', { dataset: { worker: w.name, lost: w.lost ? 'true' : 'false' }, class: w.lost ? 'dim' : '' },
    h('td', { class: 'mono' }, w.name),
    h('td', {}, w.lost
      ? h('span', { class: 'badge state-failed', dataset: { state: 'lost' } }, h('span', { class: 'dot' }), 'lost')
      : h('span', { class: 'badge state-succeeded', dataset: { state: 'live' } }, h('span', { class: 'dot' }), 'live')),
    h('td', {}, slots(w)),
    h('td', {}, chips(info.types)),
    h('td', { class: 'opt' }, chips(info.queues && info.queues.length ? info.queues : ['default'], 'queue')),
    h('td', {}, timeEl(w.last_seen_ms)),
    h('td', { class: 'opt mono' }, info.host ? `${info.host}${num(info.pid) ? `:${info.pid}` : ''}` : '–'),
    h('td', { class: 'opt mono' }, info.version || '–'),
    h('td', { class: 'opt' }, timeEl(w.first_seen_ms)));
}

export function mount(root, params, ctx) {
  let alive = true;
  const list = h('div', {}, h('p', { class: 'loading' }, 'Loading…'));
  const summary = h('p', { class: 'muted' });
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Workers'), summary), h('section', { class: 'panel flush' }, list));
  const load = async () => {
    try {
      const r = await api('/v1/workers');
      if (!alive) return;
      const ws = (r.workers || []).slice().sort((a, b) => (a.lost - b.lost) || a.name.localeCompare(b.name));
      const live = ws.filter((w) => !w.lost);
      const busy = live.reduce((a, w) => a + num(w.running), 0);
      const total = live.reduce((a, w) => a + num(w.info && w.info.slots), 0);
      summary.textContent = `${live.length} live, ${ws.length - live.length} lost · ${busy} of ${total} slots busy`;
      clear(list);
      if (!ws.length) {
        list.append(emptyState('No workers yet', 'A worker appears here with its first poll. Start one:',
          'anvil-worker --server tcp://127.0.0.1:7700 --slots 4'));
      } else {
        list.append(h('div', { class: 'table-wrap' }, h('table', { class: 'grid-table', id: 'workers' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Worker'), h('th', {}, 'Status'), h('th', {}, 'Slots busy'),
            h('th', {}, 'Types'), h('th', { class: 'opt' }, 'Queues'), h('th', {}, 'Last heartbeat'),
            h('th', { class: 'opt' }, 'Host'), h('th', { class: 'opt' }, 'Version'), h('th', { class: 'opt' }, 'First seen'))),
          h('tbody', {}, ws.map(row)))));
      }
      root.dataset.loaded = String(Date.now());
    } catch (e) {
      if (alive) clear(list).append(h('p', { class: 'alert error' }, e.message));
    }
  };
  const refresh = throttle(load, 1000);
  load();
  return {
    onEvents(batch) {
      if (batch.some((e) => e.poll || e.missed || e.worker || /WORKER|STARTED|SUCCEEDED|FAILED|RETRIED/.test(e.kind || ''))) refresh();
    },
    unmount() { alive = false; refresh.cancel(); },
  };
}
