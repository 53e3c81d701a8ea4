// api.js - every call to anvild's HTTP/JSON API goes through api(): it
// sends the token (kept in sessionStorage) as a bearer header, asks for one
// once when the server answers 401, and turns error replies ({code,
// message}) into an ApiError whose message the views show as it is.
import { h } from './util.js';

const TOKEN_KEY = 'anvil.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

function setToken(t) {
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* private mode: keep it for this page only */ }
}

let asking = null; // the one pending token prompt, shared by every 401

// Shows the token form; resolves true once a token was entered, false if
// the user dismissed it.
export function askToken(why) {
  if (asking) return asking;
  asking = new Promise((resolve) => {
    const input = h('input', {
      type: 'password', name: 'token', autocomplete: 'off', required: true,
      placeholder: 'anv_…', class: 'mono', id: 'token-input',
    });
    const dlg = h('dialog', { class: 'dialog', id: 'token-dialog' },
      h('form', { method: 'dialog', class: 'stack' },
        h('h2', {}, 'This server wants a token'),
        h('p', { class: 'muted' }, why || 'Paste an API token (anvil token create).'),
        h('label', { for: 'token-input' }, 'Token'),
        input,
        h('p', { class: 'muted small' },
          'Kept in this tab only (sessionStorage), sent as Authorization: Bearer.'),
        h('div', { class: 'row end' },
          h('button', { type: 'button', class: 'btn', value: 'no', dataset: { dismiss: '' } }, 'Not now'),
          h('button', { type: 'submit', class: 'btn primary', value: 'ok' }, 'Use token'))));
    const done = (ok) => {
      dlg.close();
      dlg.remove();
      asking = null;
      resolve(ok);
    };
    dlg.querySelector('[data-dismiss]').addEventListener('click', () => done(false));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
    dlg.querySelector('form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (!t) return;
      setToken(t);
      done(true);
    });
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
  return asking;
}

async function once(path, opts) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let res;
  try {
    res = await fetch(path, { method: opts.method || 'GET', headers, body, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'UNAVAILABLE', `anvild did not answer (${e.message})`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = null;
  }
  if (!res.ok) {
    const msg = data && data.message ? data.message : text.trim() || res.statusText;
    throw new ApiError(res.status, data && data.code, msg);
  }
  if (data === null) throw new ApiError(res.status, 'INTERNAL', 'the answer was not JSON');
  return data;
}

// GET (or POST with opts.method/body) path; resolves to the JSON answer,
// rejects with an ApiError. On a 401 the user is asked for a token once
// and the call is made again with it.
export async function api(path, opts = {}) {
  try {
    return await once(path, opts);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
    const hadToken = !!token();
    if (hadToken) setToken('');
    if (!(await askToken(e.message))) throw e;
    return once(path, opts);
  }
}

// ---- messages and confirmations ----

export function toast(text, kind = 'info') {
  let box = document.getElementById('toasts');
  if (!box) {
    box = h('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(box);
  }
  const t = h('div', { class: `toast ${kind}`, dataset: { kind } }, text);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 9000 : 4000);
}

// A yes/no question in a modal dialog; resolves true on yes.
export function confirmDialog(title, text, yes) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'dialog', id: 'confirm-dialog' },
      h('form', { method: 'dialog', class: 'stack' },
        h('h2', {}, title),
        h('p', {}, text),
        h('div', { class: 'row end' },
          h('button', { type: 'button', class: 'btn', dataset: { confirm: 'no' } }, 'Keep it'),
          h('button', { type: 'submit', class: 'btn danger', dataset: { confirm: 'yes' } }, yes))));
    const done = (ok) => {
      dlg.close();
      dlg.remove();
      resolve(ok);
    };
    dlg.querySelector('[data-confirm=no]').addEventListener('click', () => done(false));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
    dlg.querySelector('form').addEventListener('submit', (e) => { e.preventDefault(); done(true); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// Confirms, POSTs path, and reports: the refusal's message on error.
export async function act(title, text, yes, path) {
  if (!(await confirmDialog(title, text, yes))) return null;
  try {
    const r = await api(path, { method: 'POST', body: {} });
    toast(`${yes}: done`, 'ok');
    return r;
  } catch (e) {
    toast(`${yes} refused: ${e.message}`, 'error');
    return null;
  }
}
