// app.js - the dashboard's shell: history routing, the navigation, the
// colour scheme, the caller's role, the live stream's status, and handing
// each batch of events to the view on screen. Views are modules with
// mount(root, params, ctx) returning { onEvents(batch), unmount() }.
import { api } from './api.js';
import { Stream } from './stream.js';
import { h, clear, refreshTimes, num } from './util.js';
import * as overview from './overview.js';
import * as jobs from './jobs.js';
import * as job from './job.js';
import * as workflows from './workflows.js';
import * as workflow from './workflow.js';
import * as workers from './workers.js';
import * as schedules from './schedules.js';
import * as schedule from './schedule.js';
import * as events from './events.js';

const ROUTES = [
  [/^\/$/, overview, 'overview'],
  [/^\/jobs\/?$/, jobs, 'jobs'],
  [/^\/jobs\/([^/]+)$/, job, 'jobs'],
  [/^\/workflows\/?$/, workflows, 'workflows'],
  [/^\/workflows\/([^/]+)$/, workflow, 'workflows'],
  [/^\/schedules\/?$/, schedules, 'schedules'],
  [/^\/schedules\/([^/]+)$/, schedule, 'schedules'],
  [/^\/workers\/?$/, workers, 'workers'],
  [/^\/events\/?$/, events, 'events'],
];

const THEME_KEY = 'anvil.theme';
const root = document.documentElement;
const stream = new Stream();
const ctx = {
  stream,
  role: '',
  navigate,
  // Actions (cancel, retry, pause, resume) are for client and admin tokens; a server
  // that says nothing of the role (older anvild) is asked anyway and its
  // refusal shown.
  canAct() { return ctx.role === '' || ctx.role === 'ROLE_ADMIN' || ctx.role === 'ROLE_CLIENT' || ctx.role === 'ROLE_UNSPECIFIED'; },
  canRead() { return ctx.role !== 'ROLE_WORKER'; },
};

let current = null; // the mounted view

// ---- colour scheme ----

function storedTheme() {
  try {
    return localStorage.getItem(THEME_KEY) || '';
  } catch {
    return '';
  }
}

const dark = window.matchMedia('(prefers-color-scheme: dark)');
function applyTheme() {
  const t = storedTheme() || (dark.matches ? 'dark' : 'light');
  root.dataset.theme = t;
  const b = document.getElementById('theme-toggle');
  if (b) {
    b.setAttribute('aria-label', t === 'dark' ? 'Switch to the light scheme' : 'Switch to the dark scheme');
    b.title = b.getAttribute('aria-label');
    b.dataset.theme = t;
  }
}

function toggleTheme() {
  const next = root.dataset.theme === 'dark' ? 'light' : 'dark';
  try {
    localStorage.setItem(THEME_KEY, next);
  } catch { /* remembered for this page only */ }
  applyTheme();
}

// ---- routing ----

function match(path) {
  for (const [re, mod, nav] of ROUTES) {
    const m = path.match(re);
    if (m) return { mod, nav, params: m.slice(1).map(decodeURIComponent) };
  }
  return null;
}

export function navigate(href, replace) {
  const u = new URL(href, location.href);
  if (u.origin !== location.origin) {
    location.href = href;
    return;
  }
  if (replace) history.replaceState(null, '', u.pathname + u.search);
  else history.pushState(null, '', u.pathname + u.search);
  render();
}

function render() {
  if (current && current.unmount) current.unmount();
  current = null;
  const view = document.getElementById('view');
  clear(view);
  delete view.dataset.loaded;
  document.getElementById('nav').classList.remove('open');
  document.getElementById('menu-toggle').setAttribute('aria-expanded', 'false');
  const m = match(location.pathname);
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', !!m && a.dataset.nav === m.nav);
    if (m && a.dataset.nav === m.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  root.dataset.view = m ? m.nav : 'none';
  if (!m) {
    view.append(h('section', { class: 'panel' },
      h('h1', {}, 'Not found'),
      h('p', {}, 'This page does not exist. ', h('a', { href: '/' }, 'Back to the overview'), '.')));
    return;
  }
  if (!ctx.canRead() && m.mod !== overview) {
    view.append(h('section', { class: 'panel' },
      h('h1', {}, 'Not for this token'),
      h('p', {}, 'A worker token may lease and report jobs, not read them. Use a reader, client or admin token.')));
    return;
  }
  current = m.mod.mount(view, m.params, ctx);
}

function onClick(e) {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const u = new URL(a.href, location.href);
  if (u.origin !== location.origin || u.pathname.startsWith('/v1/')) return;
  e.preventDefault();
  navigate(u.pathname + u.search);
}

// ---- the shell ----

function streamLabel(st) {
  return {
    open: 'live', connecting: 'connecting…', down: 'reconnecting…',
    idle: 'paused', retry: 'reconnecting…',
  }[st] || st;
}

function showStreamState(st) {
  const pill = document.getElementById('stream-state');
  if (st.startsWith('error:')) {
    pill.title = `The event stream ended: ${st.slice(6)}`;
    return;
  }
  if (st === 'retry') st = 'down';
  pill.className = `pill stream-${st}`;
  pill.dataset.state = st;
  pill.querySelector('.label').textContent = streamLabel(st);
  pill.title = st === 'open'
    ? 'Updates arrive as they happen (server-sent events)'
    : 'Not connected to the event stream: the page refreshes every few seconds meanwhile';
}

function showMissed(batch) {
  const gaps = batch.filter((e) => e.missed);
  if (!gaps.length) return;
  const bar = document.getElementById('banner');
  clear(bar);
  bar.hidden = false;
  bar.dataset.missed = '';
  bar.append(
    h('span', {}, 'Some events were lost to retention before this page read them: counts and lists were reloaded. '),
    h('button', { class: 'btn small', type: 'button', on: { click: () => { bar.hidden = true; } } }, 'Dismiss'));
}

async function loadRole() {
  try {
    const hl = await api('/v1/health');
    ctx.role = hl.caller_role || '';
    root.dataset.role = ctx.role || 'unknown';
    document.getElementById('version').textContent = hl.version ? `anvild ${hl.version}` : '';
    return hl;
  } catch (e) {
    root.dataset.role = 'unknown';
    return null;
  }
}

async function boot() {
  applyTheme();
  dark.addEventListener('change', applyTheme);
  document.getElementById('theme-toggle').addEventListener('click', toggleTheme);
  document.getElementById('menu-toggle').addEventListener('click', () => {
    const nav = document.getElementById('nav');
    const open = nav.classList.toggle('open');
    document.getElementById('menu-toggle').setAttribute('aria-expanded', String(open));
  });
  document.getElementById('stream-state').addEventListener('click', () => stream.reconnect());
  document.addEventListener('click', onClick);
  window.addEventListener('popstate', render);
  // A page left (or kept in the back/forward cache) closes its stream:
  // browsers allow six connections to a host, and every stream left open
  // holds one, until the page's own requests wait for ever.
  window.addEventListener('pagehide', () => stream.stop());
  window.addEventListener('pageshow', (e) => { if (e.persisted) stream.reconnect(); });
  stream.onState(showStreamState);
  stream.on((batch) => {
    showMissed(batch);
    if (current && current.onEvents) current.onEvents(batch);
  });
  setInterval(() => refreshTimes(), 5000);

  const hl = await loadRole();
  render();
  if (!hl) stream.startPolling();
  // Start the stream a window back, so the events page opens with the
  // recent history rather than empty.
  const last = hl ? num(hl.last_event_seq) : 0;
  stream.start(Math.max(0, last - 500));
}

boot();
