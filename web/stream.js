// stream.js - the live event stream (GET /v1/events, server-sent events).
// One EventSource for the whole page. Events are kept in order, each seq
// once (a reconnect may resend what was seen: those are dropped), in a
// ring of the newest MAX_KEPT, and handed to listeners in batches once per
// BATCH_MS so that thousands of events a second cost one repaint each.
// The browser resumes a dropped stream by itself (Last-Event-ID); when it
// gives up (anvild was down, or refused), the stream is opened again from
// the last seq seen, with a growing pause. While the stream is not open,
// listeners get a 'poll' tick every POLL_MS so views still refresh.
import { token } from './api.js';
import { kindName } from './util.js';

const MAX_KEPT = 5000;
const BATCH_MS = 200;
const POLL_MS = 5000;

const KINDS = [
  'JOB_SUBMITTED', 'JOB_STARTED', 'JOB_RETRIED', 'JOB_SUCCEEDED', 'JOB_FAILED',
  'JOB_CANCELED', 'WORKFLOW_STARTED', 'WORKFLOW_SUCCEEDED', 'WORKFLOW_FAILED',
  'WORKFLOW_CANCELED', 'WORKFLOW_RETRIED', 'WORKER_JOINED', 'WORKER_LOST',
  'QUEUE_PAUSED', 'QUEUE_RESUMED',
  'JOB_PROGRESS', 'SCHEDULE_FIRED', 'QUEUE_LIMITED',
].map((k) => `EVENT_KIND_${k}`);

export const EVENT_KINDS = KINDS;

export class Stream {
  constructor() {
    this.events = [];     // newest last, at most MAX_KEPT
    this.lastSeq = 0;
    this.received = 0;
    this.missed = 0;      // times the server said events were lost
    this.state = 'idle';
    this.es = null;
    this.pending = [];
    this.listeners = new Set();
    this.stateListeners = new Set();
    this.retryMs = 1000;
    this.retryTimer = null;
    this.batchTimer = null;
    this.pollTimer = null;
  }

  on(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  onState(fn) { this.stateListeners.add(fn); return () => this.stateListeners.delete(fn); }

  setState(st) {
    if (this.state === st) return;
    this.state = st;
    const root = document.documentElement;
    root.dataset.stream = st;
    for (const fn of this.stateListeners) fn(st);
    if (st === 'open') this.stopPolling();
    else this.startPolling();
  }

  url() {
    const u = new URLSearchParams();
    u.set('after_seq', String(this.lastSeq));
    const t = token();
    if (t) u.set('access_token', t);
    return `/v1/events?${u}`;
  }

  // Opens the stream from after_seq (the first time: a window of recent
  // history, so the events view starts filled).
  start(afterSeq) {
    if (afterSeq !== undefined && afterSeq > this.lastSeq) this.lastSeq = afterSeq;
    this.open();
  }

  open() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.es) this.es.close();
    this.setState('connecting');
    const es = new EventSource(this.url());
    this.es = es;
    const take = (e) => this.take(e);
    for (const k of KINDS) es.addEventListener(kindName(k), take);
    es.addEventListener('message', take);
    es.addEventListener('missed', (e) => this.onMissed(e));
    es.addEventListener('open', () => {
      this.retryMs = 1000;
      this.setState('open');
    });
    es.addEventListener('error', (e) => {
      if (this.es !== es) return;
      if (e.data) {
        // The server's own "event: error" ({code, message}): it ends the
        // stream; say why.
        let msg = e.data;
        try {
          msg = JSON.parse(e.data).message || msg;
        } catch { /* the text as it is */ }
        document.documentElement.dataset.streamError = msg;
        for (const fn of this.stateListeners) fn('error:' + msg);
        return;
      }
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up: open again ourselves from the last seq.
        es.close();
        this.es = null;
        this.setState('down');
        this.retryTimer = setTimeout(() => this.open(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 10000);
        for (const fn of this.stateListeners) fn('retry');
      } else {
        this.setState('connecting');
      }
    });
  }

  // Closes and opens the stream again (the reconnect the page offers).
  reconnect() {
    this.retryMs = 1000;
    this.open();
  }

  stop() {
    if (this.es) this.es.close();
    this.es = null;
    clearTimeout(this.retryTimer);
    this.setState('idle');
  }

  take(e) {
    let ev;
    try {
      ev = JSON.parse(e.data);
    } catch {
      return;
    }
    const seq = Number(ev.seq || e.lastEventId || 0);
    if (!seq || seq <= this.lastSeq) return; // seen before a reconnect
    ev.seq = seq;
    this.lastSeq = seq;
    this.received++;
    this.events.push(ev);
    if (this.events.length > MAX_KEPT) this.events.splice(0, this.events.length - MAX_KEPT);
    this.pending.push(ev);
    this.schedule();
  }

  onMissed(e) {
    this.missed++;
    let info = {};
    try {
      info = JSON.parse(e.data || '{}');
    } catch { /* the text alone says enough */ }
    document.documentElement.dataset.missed = String(this.missed);
    const gap = { missed: true, first_seq: Number(info.first_seq || 0), info };
    if (gap.first_seq > this.lastSeq + 1) this.lastSeq = gap.first_seq - 1;
    this.pending.push(gap);
    this.schedule();
  }

  schedule() {
    if (this.batchTimer) return;
    this.batchTimer = setTimeout(() => this.flush(), BATCH_MS);
  }

  flush() {
    this.batchTimer = null;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    document.documentElement.dataset.lastSeq = String(this.lastSeq);
    for (const fn of this.listeners) fn(batch);
  }

  startPolling() {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => {
      for (const fn of this.listeners) fn([{ poll: true }]);
    }, POLL_MS);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}
