// events.js - the live event stream, newest first, filtered by kind, job,
// workflow, type and queue. It shows what the page's one stream has
// received (stream.js keeps the newest 5,000, each seq once), so opening
// this view costs no request; rows are added in batches and the list
// holds at most SHOWN rows. Each row carries data-seq and data-kind.
import { h, put, clear, num, absTime, relTime } from './util.js';
import { EVENT_KINDS } from './stream.js';

const SHOWN = 1000;

function label(kind) {
  return String(kind || '').replace('EVENT_KIND_', '').toLowerCase().replace('_', ' ');
}

function tone(kind) {
  if (/SUCCEEDED/.test(kind)) return 'succeeded';
  if (/FAILED|LOST/.test(kind)) return 'failed';
  if (/CANCELED/.test(kind)) return 'canceled';
  if (/RETRIED/.test(kind)) return 'scheduled';
  if (/STARTED|JOINED/.test(kind)) return 'running';
  return 'queued';
}

function row(e) {
  const at = num(e.at_ms);
  return h('li', { class: 'event', dataset: { seq: e.seq, kind: label(e.kind).replace(' ', '.') } },
    h('span', { class: 'seq mono' }, `#${e.seq}`),
    h('time', { title: absTime(at), datetime: new Date(at).toISOString(), dataset: { ms: at } }, relTime(at)),
    h('span', { class: `badge state-${tone(e.kind)}` }, h('span', { class: 'dot' }), label(e.kind)),
    h('span', { class: 'what' },
      e.job_id ? h('a', { href: `/jobs/${encodeURIComponent(e.job_id)}`, class: 'mono' }, e.job_id) : null,
      e.workflow_id ? [' ', h('a', { href: `/workflows/${encodeURIComponent(e.workflow_id)}`, class: 'mono' }, e.workflow_id + (e.step ? `/${e.step}` : ''))] : null,
      e.type && /WORKFLOW/.test(e.kind) ? [' ', h('span', { class: 'muted' }, e.type)] : null,
      e.type && !/WORKFLOW/.test(e.kind) ? [' ', h('span', { class: 'mono muted' }, `${e.queue || 'default'}/${e.type}`)] : null,
      /QUEUE/.test(e.kind) && e.queue ? [' ', h('span', { class: 'mono' }, e.queue)] : null,
      e.worker ? [' ', h('span', { class: 'muted' }, 'by '), h('span', { class: 'mono' }, e.worker)] : null,
      num(e.attempt) ? h('span', { class: 'muted' }, ` attempt ${e.attempt}`) : null,
      e.message ? h('span', { class: 'msg' }, ` ${e.message}`) : null));
}

export function mount(root, params, ctx) {
  const sp = new URLSearchParams(location.search);
  const f = { kind: sp.get('kind') || '', job: sp.get('job') || '', workflow: sp.get('workflow') || '', type: sp.get('type') || '', queue: sp.get('queue') || '' };
  const match = (e) => !e.missed && !e.poll
    && (!f.kind || e.kind === f.kind) && (!f.job || e.job_id === f.job)
    && (!f.workflow || e.workflow_id === f.workflow) && (!f.type || e.type === f.type)
    && (!f.queue || (e.queue || 'default') === f.queue);
  const list = h('ol', { class: 'event-list', id: 'events', reversed: true, 'aria-live': 'off' });
  const count = h('span', { class: 'muted', id: 'event-count' });
  const inputs = {
    kind: h('select', { name: 'kind', id: 'ev-kind' }, h('option', { value: '' }, 'any kind'),
      EVENT_KINDS.map((k) => h('option', { value: k, selected: f.kind === k }, label(k)))),
    job: h('input', { name: 'job', placeholder: 'job id', value: f.job, class: 'mono', autocomplete: 'off' }),
    workflow: h('input', { name: 'workflow', placeholder: 'workflow id', value: f.workflow, class: 'mono', autocomplete: 'off' }),
    type: h('input', { name: 'type', placeholder: 'type', value: f.type, class: 'mono', autocomplete: 'off' }),
    queue: h('input', { name: 'queue', placeholder: 'queue', value: f.queue, class: 'mono', autocomplete: 'off' }),
  };
  const apply = (e) => {
    if (e) e.preventDefault();
    const u = new URLSearchParams();
    for (const [k, el] of Object.entries(inputs)) if (el.value.trim()) u.set(k, el.value.trim());
    ctx.navigate(`/events${u.toString() ? `?${u}` : ''}`, true);
  };
  inputs.kind.addEventListener('change', apply);
  let shown = 0;
  const add = (evs) => {
    const rows = evs.filter(match);
    if (!rows.length) return;
    const frag = document.createDocumentFragment();
    for (let i = rows.length - 1; i >= 0; i--) frag.append(row(rows[i]));
    const empty = list.querySelector('.empty-row');
    if (empty) empty.remove();
    list.prepend(frag);
    shown += rows.length;
    while (shown > SHOWN) {
      list.lastElementChild.remove();
      shown--;
    }
  };
  const status = () => {
    const st = ctx.stream;
    count.textContent = `${st.received} received since this page opened · last seq ${st.lastSeq || '–'}`;
    list.dataset.count = String(shown);
  };
  put(root,
    h('div', { class: 'page-head row wrap' }, h('h1', {}, 'Events'), count, h('span', { class: 'spacer' }),
      h('button', { class: 'btn', type: 'button', id: 'reconnect', title: 'Close the stream and open it again from the last event seen', on: { click: () => ctx.stream.reconnect() } }, 'Reconnect')),
    h('div', { class: 'toolbar' }, h('form', { class: 'filters', on: { submit: apply } },
      h('label', { class: 'field' }, h('span', {}, 'Kind'), inputs.kind),
      h('label', { class: 'field' }, h('span', {}, 'Job'), inputs.job),
      h('label', { class: 'field' }, h('span', {}, 'Workflow'), inputs.workflow),
      h('label', { class: 'field' }, h('span', {}, 'Type'), inputs.type),
      h('label', { class: 'field' }, h('span', {}, 'Queue'), inputs.queue),
      h('button', { class: 'btn', type: 'submit' }, 'Filter'))),
    h('section', { class: 'panel flush' }, list));
  add(ctx.stream.events.slice(-SHOWN));
  if (!shown) {
    list.append(h('li', { class: 'empty-row' }, h('div', { class: 'empty' },
      h('p', { class: 'empty-title' }, 'No events yet'),
      h('p', { class: 'muted' }, 'Every state change appears here as it happens: submit a job or start a worker.'))));
  }
  status();
  root.dataset.loaded = String(Date.now());
  return {
    onEvents(batch) {
      const gap = batch.find((e) => e.missed);
      if (gap) {
        list.prepend(h('li', { class: 'event gap', dataset: { missed: '' } },
          'Events were lost here: they were deleted by retention before the page read them.'));
      }
      add(batch);
      status();
    },
    unmount() {},
  };
}
