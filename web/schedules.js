// schedules.js - the cron schedules (GET /v1/schedules): each one's
// name, cron or @every spec with its time zone, the job template's type
// and queue, its overlap and catch-up policies, the next fire time, the
// last tick that fired and its job, and a paused tag. Fetched again on
// SCHEDULE_FIRED events and once each next fire time has passed (a tick
// that submits nothing writes no event). The helpers here are shared
// with schedule.js, one schedule's page.
import { api } from './api.js';
import { h, put, clear, num, timeEl, idLink, throttle, emptyState } from './util.js';

export const FIRED = 'EVENT_KIND_SCHEDULE_FIRED';

// "@every 30s" ticks from the creation time and ignores the zone.
export function isEvery(spec) {
  return /^@every\s/i.test((spec && spec.cron) || '');
}

// The spec and its zone: "30 2 * * *" Europe/Berlin.
export function specEl(spec) {
  const every = isEvery(spec);
  return h('span', { class: 'spec', dataset: { field: 'spec' } },
    h('code', { class: 'mono' }, spec.cron || ''),
    every ? null : h('span', { class: 'tz muted small', title: 'The time zone the expression is read in' }, ` ${spec.time_zone || 'UTC'}`));
}

export function overlapName(v) {
  return { OVERLAP_POLICY_ALLOW: 'allow', OVERLAP_POLICY_CANCEL_PREVIOUS: 'cancel previous' }[v] || 'skip';
}

export function catchUpName(spec) {
  const v = spec.catch_up;
  if (v === 'CATCH_UP_POLICY_EACH') return `each (at most ${num(spec.catch_up_limit) || 100})`;
  if (v === 'CATCH_UP_POLICY_SKIP') return 'skip';
  return 'once';
}

export const OVERLAP_HELP = {
  skip: 'A tick submits nothing while the previous tick\'s job has not finished',
  allow: 'A tick submits its job even while the previous one has not finished',
  'cancel previous': 'A tick cancels the previous tick\'s job if it has not finished, then submits',
};

export function pausedTag(sc) {
  return sc.paused ? h('span', { class: 'flag paused', dataset: { paused: '' }, title: 'Paused: no tick fires until it is resumed' }, 'paused') : null;
}

// The next fire time; a paused schedule has none to come.
export function nextEl(sc) {
  if (sc.paused) return h('span', { class: 'muted' }, 'paused');
  return h('span', { dataset: { field: 'next', ms: num(sc.next_fire_ms) } }, timeEl(sc.next_fire_ms));
}

// The last tick that submitted a job, and its job.
export function lastEl(sc) {
  if (!num(sc.last_fire_ms)) return h('span', { class: 'muted' }, 'never');
  return h('span', { class: 'last' },
    timeEl(sc.last_fire_ms),
    sc.last_job_id ? [' → ', idLink('jobs', sc.last_job_id)] : null);
}

// A refresh due once the soonest next fire time has passed; returns a
// cancel function.
export function atNextFire(list, fn) {
  const now = Date.now();
  const next = list.filter((sc) => !sc.paused && num(sc.next_fire_ms) > 0)
    .map((sc) => num(sc.next_fire_ms)).sort((a, b) => a - b)[0];
  if (!next) return () => {};
  const t = setTimeout(fn, Math.min(Math.max(next - now, 0) + 1000, 3600000));
  return () => clearTimeout(t);
}

function row(sc) {
  const sp = sc.spec || {};
  const job = sp.job || {};
  const overlap = overlapName(sp.overlap);
  return h('tr', { dataset: { schedule: sp.name, paused: sc.paused ? 'true' : 'false' }, class: sc.paused ? 'dim' : '' },
    h('td', {}, h('a', { href: `/schedules/${encodeURIComponent(sp.name)}`, class: 'mono id' }, sp.name), pausedTag(sc)),
    h('td', {}, specEl(sp)),
    h('td', {}, h('span', { class: 'mono' }, job.type || ''), h('span', { class: 'muted' }, ' on '), h('span', { class: 'mono' }, job.queue || 'default')),
    h('td', { class: 'opt', title: OVERLAP_HELP[overlap] }, overlap),
    h('td', { class: 'opt' }, catchUpName(sp)),
    h('td', {}, nextEl(sc)),
    h('td', { class: 'opt' }, lastEl(sc)),
    h('td', { class: 'num opt', title: `${num(sc.fired)} jobs submitted, ${num(sc.skipped)} ticks skipped` },
      String(num(sc.fired)), num(sc.skipped) ? h('span', { class: 'muted' }, ` / ${num(sc.skipped)} skipped`) : null));
}

function table(list) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'grid-table', id: 'schedules' },
      h('thead', {}, h('tr', {},
        h('th', {}, 'Schedule'), h('th', {}, 'Spec'), h('th', {}, 'Job'),
        h('th', { class: 'opt' }, 'Overlap'), h('th', { class: 'opt' }, 'Catch-up'),
        h('th', {}, 'Next fire'), h('th', { class: 'opt' }, 'Last fired'),
        h('th', { class: 'num opt' }, 'Fired'))),
      h('tbody', {}, list.map(row))));
}

export function mount(root, params, ctx) {
  let alive = true;
  let cancelTimer = () => {};
  const list = h('div', { id: 'schedule-list' }, h('p', { class: 'loading' }, 'Loading…'));
  const load = async () => {
    try {
      const r = await api('/v1/schedules');
      if (!alive) return;
      const all = r.schedules || [];
      clear(list);
      if (!all.length) {
        list.append(emptyState('No schedules yet', 'A schedule submits a job on a calendar or every fixed interval:',
          'anvil schedule create nightly --cron \'30 2 * * *\' --tz Europe/Berlin --type Report'));
      } else {
        list.append(table(all));
      }
      cancelTimer();
      cancelTimer = atNextFire(all, () => refresh());
      root.dataset.loaded = String(Date.now());
    } catch (e) {
      if (!alive) return;
      clear(list).append(h('p', { class: 'alert error' }, e.message));
    }
  };
  const refresh = throttle(load, 1000);
  put(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Schedules'),
      h('p', { class: 'muted' }, 'Jobs submitted on a calendar, exactly once per tick. The page refreshes itself as ticks fire.')),
    h('section', { class: 'panel flush' }, list));
  load();
  return {
    onEvents(batch) {
      if (batch.some((e) => e.poll || e.missed || e.kind === FIRED)) refresh();
    },
    unmount() { alive = false; refresh.cancel(); cancelTimer(); },
  };
}
