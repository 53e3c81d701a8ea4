// job.js - one job: its state, fields, payload, result and error, every
// attempt with its worker and timings (from the job's events: JOB_STARTED
// opens an attempt, JOB_RETRIED / JOB_FAILED / JOB_SUCCEEDED /
// JOB_CANCELED end it), and the cancel and retry actions the caller's role
// allows. Fetched again when one of its events arrives.
import { api, act } from './api.js';
import { h, put, clear, num, badge, timeEl, idLink, throttle, bytesBlock, duration, stateName, absTime, FINAL, qs, progressEl } from './util.js';

// The job's events, every page of them (a job has a handful; the cap
// keeps a pathological one from looping long).
export async function jobEvents(id) {
  const all = [];
  let after = 0;
  for (let i = 0; i < 10; i++) {
    const r = await api(`/v1/events:watch${qs({ job_id: id, after_seq: after, limit: 1000 })}`);
    const evs = r.events || [];
    all.push(...evs);
    const nxt = num(r.next_seq);
    if (evs.length < 1000 || nxt <= after) break;
    after = nxt;
  }
  return all;
}

// Attempts from events: one row per JOB_STARTED, closed by what followed.
export function attempts(events) {
  const rows = [];
  const open = new Map();
  for (const e of events) {
    const k = e.kind;
    const n = num(e.attempt);
    if (k === 'EVENT_KIND_JOB_STARTED') {
      const a = { attempt: n, worker: e.worker, start: num(e.at_ms), end: 0, outcome: 'running', message: '' };
      rows.push(a);
      open.set(n, a);
    } else if (['EVENT_KIND_JOB_RETRIED', 'EVENT_KIND_JOB_FAILED', 'EVENT_KIND_JOB_SUCCEEDED', 'EVENT_KIND_JOB_CANCELED'].includes(k)) {
      const a = open.get(n);
      if (!a) continue; // e.g. a retry of a finished job, or canceled while queued
      a.end = num(e.at_ms);
      a.outcome = { EVENT_KIND_JOB_RETRIED: 'retried', EVENT_KIND_JOB_FAILED: 'failed', EVENT_KIND_JOB_SUCCEEDED: 'succeeded', EVENT_KIND_JOB_CANCELED: 'canceled' }[k];
      a.message = e.message || '';
      open.delete(n);
    }
  }
  return rows;
}

function attemptTable(rows) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'grid-table', id: 'attempts' },
      h('thead', {}, h('tr', {},
        h('th', { class: 'num' }, '#'), h('th', {}, 'Worker'), h('th', {}, 'Started'),
        h('th', {}, 'Took'), h('th', {}, 'Outcome'), h('th', {}, 'Message'))),
      h('tbody', {}, rows.map((a) => h('tr', { dataset: { attempt: a.attempt, outcome: a.outcome } },
        h('td', { class: 'num' }, String(a.attempt)),
        h('td', { class: 'mono' }, a.worker || '–'),
        h('td', {}, timeEl(a.start)),
        h('td', {}, a.end ? duration(a.end - a.start) : h('span', { class: 'muted' }, `${duration(Date.now() - a.start)}…`)),
        h('td', {}, badge(a.outcome === 'retried' ? 'scheduled' : a.outcome, a.outcome === 'retried' ? 'retried' : '')),
        h('td', { class: 'msg' }, a.message))))));
}

function field(label, value) {
  return [h('dt', {}, label), h('dd', {}, value === '' || value === undefined || value === null ? h('span', { class: 'muted' }, '–') : value)];
}

function actions(j, ctx, reload) {
  if (!ctx.canAct()) return null;
  const st = stateName(j.state);
  const out = [];
  if (!FINAL.has(st)) {
    out.push(h('button', {
      class: 'btn danger', type: 'button', dataset: { action: 'cancel' },
      on: { click: async () => { if (await act(`Cancel job ${j.id}?`, st === 'running' ? 'Its worker is told to stop; the job ends CANCELED.' : 'It will not run.', 'Cancel job', `/v1/jobs/${encodeURIComponent(j.id)}:cancel`)) reload(); } },
    }, 'Cancel'));
  }
  if ((st === 'failed' || st === 'canceled') && !j.workflow_id) {
    out.push(h('button', {
      class: 'btn', type: 'button', dataset: { action: 'retry' },
      on: { click: async () => { if (await act(`Retry job ${j.id}?`, 'It runs again under the same id, with its history kept.', 'Retry job', `/v1/jobs/${encodeURIComponent(j.id)}:retry`)) reload(); } },
    }, 'Retry'));
  }
  return out.length ? h('div', { class: 'actions' }, out) : null;
}

function draw(root, j, evs, evErr, ctx, reload) {
  const st = stateName(j.state);
  const rows = evs ? attempts(evs) : [];
  clear(root);
  root.dataset.job = j.id;
  root.dataset.state = st;
  put(root,
    h('nav', { class: 'crumbs' }, h('a', { href: '/jobs' }, 'Jobs'), ' / ',
      j.workflow_id ? [idLink('workflows', j.workflow_id), ' / '] : null, h('span', { class: 'mono' }, j.id)),
    h('div', { class: 'page-head row wrap' },
      h('h1', { class: 'mono' }, j.id),
      h('span', { id: 'job-state' }, badge(j.state, 'big')),
      h('span', { class: 'muted' }, h('span', { class: 'mono' }, j.type), ' on ', h('span', { class: 'mono' }, j.queue)),
      h('span', { class: 'spacer' }),
      actions(j, ctx, reload)),
    j.error ? h('div', { class: 'alert error', id: 'job-error' }, h('strong', {}, st === 'failed' ? 'Failed: ' : 'Last error: '), j.error) : null,
    h('div', { class: 'cols' },
      h('section', { class: 'panel' }, h('h2', {}, 'Details'),
        h('dl', { class: 'facts' },
          field('Attempt', `${j.attempt} of ${j.max_attempts}`),
          j.progress ? field('Progress', progressEl(j)) : null,
          field('Created', timeEl(j.created_at_ms)),
          field('Runs at', num(j.run_at_ms) ? timeEl(j.run_at_ms) : ''),
          field('Started', num(j.started_at_ms) ? timeEl(j.started_at_ms) : ''),
          field('Finished', num(j.finished_at_ms) ? timeEl(j.finished_at_ms) : ''),
          field('Took', num(j.finished_at_ms) && num(j.started_at_ms) ? duration(num(j.finished_at_ms) - num(j.started_at_ms)) : ''),
          field('Worker', j.worker_id ? h('span', { class: 'mono' }, j.worker_id) : ''),
          field('Priority', String(j.priority)),
          field('Timeout', num(j.timeout_ms) ? duration(num(j.timeout_ms)) : 'none'),
          field('Idempotency key', j.idempotency_key ? h('span', { class: 'mono' }, j.idempotency_key) : ''),
          j.workflow_id ? field('Workflow', [idLink('workflows', j.workflow_id), ' step ', h('span', { class: 'mono' }, j.step)]) : null,
          j.after && j.after.length ? field('After', h('span', { class: 'mono' }, j.after.join(', '))) : null)),
      h('div', { class: 'stack' },
        h('section', { class: 'panel', id: 'job-result' }, h('h2', {}, 'Result'),
          bytesBlock(j, 'result', st === 'succeeded' ? 'Succeeded with an empty result.' : FINAL.has(st) ? 'No result.' : 'Not finished yet.')),
        h('section', { class: 'panel', id: 'job-payload' }, h('h2', {}, 'Payload'), bytesBlock(j, 'payload', 'Empty payload.')))),
    h('section', { class: 'panel' }, h('h2', {}, 'Attempts'),
      evErr ? h('p', { class: 'muted' }, `The attempt history is unavailable: ${evErr}`)
        : rows.length ? attemptTable(rows)
          : h('p', { class: 'muted' }, st === 'pending' ? 'Waits for the steps it runs after.' : 'No attempt has started yet.')),
    evs && evs.length ? h('details', { class: 'panel' }, h('summary', {}, `Events (${evs.length})`),
      h('ol', { class: 'event-list compact' }, evs.map((e) => h('li', {},
        h('span', { class: 'mono muted' }, `#${e.seq}`), ' ',
        h('time', { title: absTime(num(e.at_ms)) }, absTime(num(e.at_ms)).slice(11)), ' ',
        e.kind.replace('EVENT_KIND_', '').toLowerCase().replace('_', ' '),
        e.worker ? [' by ', h('span', { class: 'mono' }, e.worker)] : null,
        e.message ? [': ', e.message] : null)))) : null);
}

export function mount(root, params, ctx) {
  const id = params[0];
  let alive = true;
  root.append(h('p', { class: 'loading' }, 'Loading…'));
  const load = async () => {
    let j;
    try {
      j = (await api(`/v1/jobs/${encodeURIComponent(id)}`)).job;
    } catch (e) {
      if (alive) clear(root).append(h('nav', { class: 'crumbs' }, h('a', { href: '/jobs' }, 'Jobs')), h('p', { class: 'alert error' }, e.message));
      return;
    }
    let evs = null;
    let evErr = '';
    try {
      evs = await jobEvents(id);
    } catch (e) {
      evErr = e.message;
    }
    if (!alive) return;
    draw(root, j, evs, evErr, ctx, () => refresh());
    root.dataset.loaded = String(Date.now());
  };
  const refresh = throttle(load, 500);
  load();
  return {
    onEvents(batch) {
      if (batch.some((e) => e.poll || e.missed || e.job_id === id)) refresh();
    },
    unmount() { alive = false; refresh.cancel(); delete root.dataset.job; delete root.dataset.state; },
  };
}
