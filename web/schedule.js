// schedule.js - one schedule (GET /v1/schedules/NAME): its spec, time
// zone, policies and job template, the next fire time, the last tick that
// fired with its job (and that job's state), the fired and skipped
// counts, and the pause and resume actions the caller's role allows.
// Fetched again on SCHEDULE_FIRED events, on its last job's events and
// once the next fire time has passed.
import { api, act } from './api.js';
import { h, put, clear, num, badge, timeEl, idLink, throttle, absTime, bytesBlock } from './util.js';
import { FIRED, isEvery, overlapName, catchUpName, OVERLAP_HELP, pausedTag, nextEl, atNextFire } from './schedules.js';

function field(label, value) {
  return [h('dt', {}, label), h('dd', {}, value === '' || value === undefined || value === null ? h('span', { class: 'muted' }, '–') : value)];
}

function actions(sc, ctx, reload) {
  if (!ctx.canAct()) return null;
  const name = sc.spec.name;
  const path = `/v1/schedules/${encodeURIComponent(name)}`;
  const b = sc.paused
    ? h('button', {
      class: 'btn', type: 'button', dataset: { action: 'resume' },
      on: { click: async () => { if (await act(`Resume schedule ${name}?`, 'It goes on from its next tick after now; ticks that fell while it was paused never fire.', 'Resume schedule', `${path}:resume`)) reload(); } },
    }, 'Resume')
    : h('button', {
      class: 'btn danger', type: 'button', dataset: { action: 'pause' },
      on: { click: async () => { if (await act(`Pause schedule ${name}?`, 'No tick fires until it is resumed; jobs already submitted are not touched.', 'Pause schedule', `${path}:pause`)) reload(); } },
    }, 'Pause');
  return h('div', { class: 'actions' }, b);
}

// The job template's fields that are set, less the payload (shown on its
// own): the server writes every field, zero ones too.
function template(job) {
  const set = {};
  for (const [k, v] of Object.entries(job)) {
    if (k === 'payload' || k === 'payload_base64') continue;
    if (v === '' || v === 0 || v === '0' || v === false || v === null) continue;
    if (typeof v === 'object' && !Object.keys(v).length) continue;
    set[k] = v;
  }
  return set;
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

function draw(root, sc, last, ctx, reload) {
  const sp = sc.spec || {};
  const job = sp.job || {};
  const overlap = overlapName(sp.overlap);
  clear(root);
  root.dataset.schedule = sp.name;
  root.dataset.paused = sc.paused ? 'true' : 'false';
  put(root,
    h('nav', { class: 'crumbs' }, h('a', { href: '/schedules' }, 'Schedules'), ' / ', h('span', { class: 'mono' }, sp.name)),
    h('div', { class: 'page-head row wrap' },
      h('h1', { class: 'mono' }, sp.name),
      h('span', { id: 'schedule-state' }, pausedTag(sc)),
      h('span', { class: 'muted' }, h('span', { class: 'mono' }, job.type || ''), ' on ', h('span', { class: 'mono' }, job.queue || 'default')),
      h('span', { class: 'spacer' }),
      actions(sc, ctx, reload)),
    h('div', { class: 'cols' },
      h('section', { class: 'panel', id: 'schedule-details' }, h('h2', {}, 'Details'),
        h('dl', { class: 'facts' },
          field('Spec', h('code', { class: 'mono', dataset: { field: 'spec' } }, sp.cron || '')),
          field('Time zone', isEvery(sp) ? h('span', { class: 'muted' }, 'none: @every ticks from its creation time') : h('span', { class: 'mono' }, sp.time_zone || 'UTC')),
          field('Next fire', [nextEl(sc), sc.paused || !num(sc.next_fire_ms) ? null : h('span', { class: 'muted small' }, ` ${absTime(num(sc.next_fire_ms))}`)]),
          field('Last fired', num(sc.last_fire_ms) ? [timeEl(sc.last_fire_ms), h('span', { class: 'muted small' }, ` tick ${absTime(num(sc.last_fire_ms))}`)] : h('span', { class: 'muted' }, 'never')),
          field('Last job', sc.last_job_id ? h('span', { id: 'last-job' }, idLink('jobs', sc.last_job_id), ' ', last ? badge(last.state) : null) : ''),
          field('Fired', plural(num(sc.fired), 'job', 'jobs')),
          field('Skipped', h('span', { title: 'Ticks that submitted no job (overlap, catch-up)' }, plural(num(sc.skipped), 'tick', 'ticks'))),
          field('Overlap', h('span', { title: OVERLAP_HELP[overlap] }, overlap)),
          field('Catch-up', catchUpName(sp)),
          field('Created', timeEl(sc.created_at_ms)))),
      h('div', { class: 'stack' },
        h('section', { class: 'panel', id: 'schedule-payload' }, h('h2', {}, 'Job payload'), bytesBlock(job, 'payload', 'Empty payload.')),
        h('section', { class: 'panel', id: 'schedule-template' }, h('h2', {}, 'Job template'),
          h('pre', { class: 'code', dataset: { field: 'template' } }, JSON.stringify(template(job), null, 2))))));
}

export function mount(root, params, ctx) {
  const name = params[0];
  let alive = true;
  let lastJob = '';
  let cancelTimer = () => {};
  root.append(h('p', { class: 'loading' }, 'Loading…'));
  const load = async () => {
    let sc;
    try {
      sc = (await api(`/v1/schedules/${encodeURIComponent(name)}`)).schedule;
    } catch (e) {
      if (alive) clear(root).append(h('nav', { class: 'crumbs' }, h('a', { href: '/schedules' }, 'Schedules')), h('p', { class: 'alert error' }, e.message));
      return;
    }
    let last = null;
    if (sc.last_job_id) {
      try {
        last = (await api(`/v1/jobs/${encodeURIComponent(sc.last_job_id)}`)).job;
      } catch { /* the job may be gone to retention: shown without a state */ }
    }
    if (!alive) return;
    lastJob = sc.last_job_id || '';
    draw(root, sc, last, ctx, () => refresh());
    cancelTimer();
    cancelTimer = atNextFire([sc], () => refresh());
    root.dataset.loaded = String(Date.now());
  };
  const refresh = throttle(load, 500);
  load();
  return {
    onEvents(batch) {
      if (batch.some((e) => e.poll || e.missed || e.kind === FIRED || (lastJob && e.job_id === lastJob))) refresh();
    },
    unmount() {
      alive = false;
      refresh.cancel();
      cancelTimer();
      delete root.dataset.schedule;
      delete root.dataset.paused;
    },
  };
}
