// jobs.js - the job list: filters by state, type and queue (kept in the
// address, so a filtered list can be linked), a page of 50 at a time with
// next_cursor paging, and "find" by job id or idempotency key. The page
// on screen is fetched again (at most once a second) when job events
// arrive.
import { api, ApiError } from './api.js';
import { h, put, clear, num, badge, timeEl, idLink, throttle, emptyState, qs, duration, stateName, progressEl } from './util.js';

const PAGE = 50;
export const JOB_STATES = ['PENDING', 'SCHEDULED', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED'];

function filterForm(f, onFind, navigate) {
  const state = h('select', { name: 'state', id: 'f-state' },
    h('option', { value: '' }, 'any state'),
    JOB_STATES.map((st) => h('option', { value: st, selected: f.state === st }, st.toLowerCase())));
  const type = h('input', { name: 'type', id: 'f-type', placeholder: 'any type', value: f.type || '', class: 'mono', autocomplete: 'off' });
  const queue = h('input', { name: 'queue', id: 'f-queue', placeholder: 'any queue', value: f.queue || '', class: 'mono', autocomplete: 'off' });
  const apply = (e) => {
    if (e) e.preventDefault();
    navigate(`/jobs${qs({ state: state.value, type: type.value.trim(), queue: queue.value.trim() })}`, true);
  };
  state.addEventListener('change', apply);
  const find = h('input', { name: 'find', id: 'f-find', placeholder: 'job id or idempotency key', class: 'mono', autocomplete: 'off', type: 'search' });
  return h('div', { class: 'toolbar' },
    h('form', { class: 'filters', id: 'job-filters', on: { submit: apply } },
      h('label', { class: 'field' }, h('span', {}, 'State'), state),
      h('label', { class: 'field' }, h('span', {}, 'Type'), type),
      h('label', { class: 'field' }, h('span', {}, 'Queue'), queue),
      h('button', { class: 'btn', type: 'submit' }, 'Filter'),
      (f.state || f.type || f.queue) ? h('a', { class: 'btn ghost', href: '/jobs' }, 'Clear') : null),
    h('form', { class: 'filters find', id: 'job-find', on: { submit: (e) => { e.preventDefault(); onFind(find.value.trim()); } } },
      h('label', { class: 'field grow' }, h('span', {}, 'Find'), find),
      h('button', { class: 'btn', type: 'submit' }, 'Open')));
}

function row(j) {
  const st = stateName(j.state);
  const started = num(j.started_at_ms);
  const finished = num(j.finished_at_ms);
  let took = '–';
  if (started && finished) took = duration(finished - started);
  else if (started && st === 'running') took = h('span', { class: 'muted' }, `${duration(Date.now() - started)}…`);
  return h('tr', { dataset: { job: j.id, state: st } },
    h('td', {}, idLink('jobs', j.id), j.step ? h('span', { class: 'muted' }, ` ${j.step}`) : null),
    h('td', {}, badge(j.state), st === 'running' ? progressEl(j, true) : null),
    h('td', { class: 'mono' }, j.type),
    h('td', { class: 'mono opt' }, j.queue),
    h('td', { class: 'num opt' }, `${j.attempt}/${j.max_attempts}`),
    h('td', {}, timeEl(j.created_at_ms)),
    h('td', { class: 'opt' }, took),
    h('td', { class: 'mono opt' }, j.worker_id || (j.workflow_id ? idLink('workflows', j.workflow_id) : '–')));
}

export function jobTable(jobs, id) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'grid-table', id },
      h('thead', {}, h('tr', {},
        h('th', {}, 'Job'), h('th', {}, 'State'), h('th', {}, 'Type'), h('th', { class: 'opt' }, 'Queue'),
        h('th', { class: 'num opt' }, 'Attempt'), h('th', {}, 'Created'), h('th', { class: 'opt' }, 'Took'),
        h('th', { class: 'opt' }, 'Worker / workflow'))),
      h('tbody', {}, jobs.map(row))));
}

export function mount(root, params, ctx) {
  const sp = new URLSearchParams(location.search);
  const f = { state: sp.get('state') || '', type: sp.get('type') || '', queue: sp.get('queue') || '' };
  const cursors = [''];  // cursors[i] is page i's cursor
  let page = 0;
  let alive = true;
  let next = '';
  const msg = h('div', { id: 'find-msg' });
  const list = h('div', { id: 'job-list' }, h('p', { class: 'loading' }, 'Loading…'));
  const pager = h('div', { class: 'pager' });

  const onFind = async (text) => {
    clear(msg);
    if (!text) return;
    try {
      let r;
      try {
        r = await api(`/v1/jobs/${encodeURIComponent(text)}`);
      } catch (e) {
        if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 400)) throw e;
        r = await api(`/v1/jobs:lookup${qs({ idempotency_key: text })}`);
      }
      if (r.job) ctx.navigate(`/jobs/${encodeURIComponent(r.job.id)}`);
    } catch (e) {
      msg.append(h('p', { class: 'alert error' }, e.status === 404 ? `No job has the id or idempotency key “${text}”.` : e.message));
    }
  };

  const load = async () => {
    try {
      const r = await api(`/v1/jobs${qs({ ...f, limit: PAGE, cursor: cursors[page] })}`);
      if (!alive) return;
      const jobs = r.jobs || [];
      next = r.next_cursor || '';
      clear(list);
      if (!jobs.length && page === 0) {
        list.append((f.state || f.type || f.queue)
          ? emptyState('No jobs match these filters', 'Try another state, or clear the filters.')
          : emptyState('No jobs yet', 'Submit one and it shows up here as it happens:',
            'anvil submit Sleep --data \'{"SleepTimeInSeconds": 1, "Message": "hi"}\''));
      } else {
        list.append(jobTable(jobs, 'jobs'));
      }
      drawPager(jobs.length);
      root.dataset.loaded = String(Date.now());
    } catch (e) {
      if (!alive) return;
      clear(list).append(h('p', { class: 'alert error' }, e.message));
    }
  };

  const drawPager = (n) => {
    clear(pager);
    if (page === 0 && !next) return;
    pager.append(
      h('button', { class: 'btn', type: 'button', disabled: page === 0, dataset: { page: 'prev' }, on: { click: () => { page--; load(); } } }, '← Newer'),
      h('span', { class: 'muted' }, `page ${page + 1} · ${n} jobs`),
      h('button', { class: 'btn', type: 'button', disabled: !next, dataset: { page: 'next' }, on: { click: () => { cursors[page + 1] = next; page++; load(); } } }, 'Older →'));
  };

  put(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Jobs'),
      h('p', { class: 'muted' }, 'Newest first. The page refreshes itself as jobs change.')),
    filterForm(f, onFind, ctx.navigate), msg,
    h('section', { class: 'panel flush' }, list, pager));
  const refresh = throttle(load, 1000);
  load();
  return {
    onEvents(batch) {
      if (batch.some((e) => e.poll || e.missed || e.job_id)) refresh();
    },
    unmount() { alive = false; refresh.cancel(); },
  };
}
