// workflows.js - the workflow list (GET /v1/workflows): state, progress
// of its steps, times; filters by state and name; paged by next_cursor.
import { api } from './api.js';
import { h, put, s, clear, num, badge, timeEl, idLink, throttle, emptyState, qs, duration } from './util.js';

const PAGE = 50;
const STATES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED'];

// A bar of the steps: succeeded, failed, the rest.
export function progress(w) {
  const total = Math.max(1, w.steps_total);
  const W = 100;
  const ok = (W * w.steps_succeeded) / total;
  const bad = (W * w.steps_failed) / total;
  const settled = (W * w.steps_settled) / total;
  return h('span', { class: 'progress' },
    s('svg', { viewBox: `0 0 ${W} 8`, preserveAspectRatio: 'none', class: 'bar', 'aria-hidden': 'true' },
      s('rect', { x: 0, y: 0, width: W, height: 8, class: 'bar-bg' }),
      s('rect', { x: 0, y: 0, width: ok, height: 8, class: 'bar-ok' }),
      s('rect', { x: ok, y: 0, width: bad, height: 8, class: 'bar-failed' }),
      s('rect', { x: ok + bad, y: 0, width: Math.max(0, settled - ok - bad), height: 8, class: 'bar-canceled' })),
    h('span', { class: 'small' }, `${w.steps_succeeded}/${w.steps_total}`));
}

function row(w) {
  const fin = num(w.finished_at_ms);
  return h('tr', { dataset: { workflow: w.id, state: w.state.replace('WORKFLOW_STATE_', '').toLowerCase() } },
    h('td', {}, idLink('workflows', w.id)),
    h('td', { class: 'mono' }, w.name),
    h('td', {}, badge(w.state)),
    h('td', {}, progress(w)),
    h('td', {}, timeEl(w.created_at_ms)),
    h('td', { class: 'opt' }, fin ? duration(fin - num(w.created_at_ms)) : h('span', { class: 'muted' }, 'running')),
    h('td', { class: 'opt msg' }, w.error || ''));
}

export function mount(root, params, ctx) {
  const sp = new URLSearchParams(location.search);
  const f = { state: sp.get('state') || '', name: sp.get('name') || '' };
  const cursors = [''];
  let page = 0;
  let next = '';
  let alive = true;
  const list = h('div', {}, h('p', { class: 'loading' }, 'Loading…'));
  const pager = h('div', { class: 'pager' });
  const state = h('select', { name: 'state', id: 'wf-state' }, h('option', { value: '' }, 'any state'),
    STATES.map((st) => h('option', { value: st, selected: f.state === st }, st.toLowerCase())));
  const name = h('input', { name: 'name', id: 'wf-name', value: f.name, placeholder: 'any name', class: 'mono', autocomplete: 'off' });
  const apply = (e) => {
    if (e) e.preventDefault();
    ctx.navigate(`/workflows${qs({ state: state.value, name: name.value.trim() })}`, true);
  };
  state.addEventListener('change', apply);

  const load = async () => {
    try {
      const r = await api(`/v1/workflows${qs({ ...f, limit: PAGE, cursor: cursors[page] })}`);
      if (!alive) return;
      const wfs = r.workflows || [];
      next = r.next_cursor || '';
      clear(list);
      if (!wfs.length && page === 0) {
        list.append(f.state || f.name
          ? emptyState('No workflows match these filters')
          : emptyState('No workflows yet', 'Submit a workflow definition (steps and their after edges):',
            'anvil workflow submit examples/chain.json'));
      } else {
        list.append(h('div', { class: 'table-wrap' }, h('table', { class: 'grid-table', id: 'workflows' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Workflow'), h('th', {}, 'Name'), h('th', {}, 'State'),
            h('th', {}, 'Steps'), h('th', {}, 'Created'), h('th', { class: 'opt' }, 'Took'), h('th', { class: 'opt' }, 'Error'))),
          h('tbody', {}, wfs.map(row)))));
      }
      clear(pager);
      if (page > 0 || next) {
        pager.append(
          h('button', { class: 'btn', type: 'button', disabled: page === 0, on: { click: () => { page--; load(); } } }, '← Newer'),
          h('span', { class: 'muted' }, `page ${page + 1}`),
          h('button', { class: 'btn', type: 'button', disabled: !next, on: { click: () => { cursors[page + 1] = next; page++; load(); } } }, 'Older →'));
      }
      root.dataset.loaded = String(Date.now());
    } catch (e) {
      if (alive) clear(list).append(h('p', { class: 'alert error' }, e.message));
    }
  };
  put(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Workflows')),
    h('div', { class: 'toolbar' }, h('form', { class: 'filters', on: { submit: apply } },
      h('label', { class: 'field' }, h('span', {}, 'State'), state),
      h('label', { class: 'field' }, h('span', {}, 'Name'), name),
      h('button', { class: 'btn', type: 'submit' }, 'Filter'))),
    h('section', { class: 'panel flush' }, list, pager));
  const refresh = throttle(load, 1000);
  load();
  return {
    onEvents(batch) {
      if (batch.some((e) => e.poll || e.missed || e.workflow_id)) refresh();
    },
    unmount() { alive = false; refresh.cancel(); },
  };
}
