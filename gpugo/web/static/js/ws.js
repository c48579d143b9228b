// A small graphql-transport-ws client (the protocol of GraphQL over WebSocket):
// connection_init -> connection_ack, then subscribe / next / error / complete per
// operation id, ping -> pong. One socket carries every subscription of the page; it
// reconnects with backoff, subscribes again, and asks each subscriber to catch up on
// what it may have missed while disconnected.

const PROTOCOL = 'graphql-transport-ws';
// After this many failed attempts in a row, subscribers are told that live updates are
// unavailable (they may poll meanwhile); reconnecting goes on.
const UNAVAILABLE_AFTER = 3;
const decoder = new TextDecoder();

export class SubscriptionClient {
  constructor(url) {
    this.url = url;
    this.subs = new Map();
    this.nextId = 1;
    this.ws = null;
    this.acked = false;
    this.everAcked = false;
    this.failures = 0;
    this.timer = null;
    this.state = 'idle';
    this.stateListeners = new Set();
  }

  /** fn(state) now and on every change: idle, connecting, live, reconnecting, closed. */
  onState(fn) {
    this.stateListeners.add(fn);
    fn(this.state);
    return () => this.stateListeners.delete(fn);
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.stateListeners.forEach((fn) => fn(state));
  }

  /**
   * Start an operation. handlers: next(result), error(errors), complete(),
   * resync() after a reconnect, unavailable() / available() around outages.
   * Returns a function that stops it.
   */
  subscribe(query, variables, handlers) {
    const id = String(this.nextId++);
    const sub = { id, query, variables, ...handlers };
    this.subs.set(id, sub);
    if (this.acked) this._start(sub);
    else if (!this.ws && !this.timer) this._open();
    else if (this.failures >= UNAVAILABLE_AFTER && sub.unavailable) sub.unavailable();
    return () => {
      if (!this.subs.delete(id)) return;
      if (this.acked) this._send({ id, type: 'complete' });
      if (this.subs.size === 0) this.close();
    };
  }

  /** Close the socket (a later subscribe opens a new one). */
  close() {
    clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    this.acked = false;
    if (ws) {
      ws.onclose = null;
      ws.close(1000, 'Normal Closure');
    }
    this._setState(this.subs.size ? 'closed' : 'idle');
  }

  _send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  _start(sub) {
    const payload = { query: sub.query, variables: sub.variables || {} };
    this._send({ id: sub.id, type: 'subscribe', payload });
  }

  _open() {
    this._setState(this.everAcked ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(this.url, PROTOCOL);
    } catch {
      this._closed({ code: 1006 });
      return;
    }
    this.ws = ws;
    this.acked = false;
    // Servers may send JSON in binary frames; read them as bytes and decode.
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    ws.onmessage = (event) => {
      let message;
      try {
        const text = typeof event.data === 'string' ? event.data : decoder.decode(event.data);
        message = JSON.parse(text);
      } catch {
        return;
      }
      this._message(message);
    };
    ws.onerror = () => {}; // onclose follows with the reason
    ws.onclose = (event) => {
      if (this.ws === ws) this._closed(event);
    };
  }

  _message(message) {
    const sub = message.id != null ? this.subs.get(message.id) : null;
    switch (message.type) {
      case 'connection_ack': {
        const wasDown = this.failures >= UNAVAILABLE_AFTER;
        const resync = this.everAcked;
        this.acked = true;
        this.everAcked = true;
        this.failures = 0;
        this._setState('live');
        for (const s of this.subs.values()) {
          this._start(s);
          if (wasDown && s.available) s.available();
          if (resync && s.resync) s.resync();
        }
        break;
      }
      case 'ping':
        this._send({ type: 'pong' });
        break;
      case 'next':
        if (sub && sub.next) sub.next(message.payload);
        break;
      case 'error':
        if (sub) {
          this.subs.delete(message.id);
          if (sub.error) sub.error(message.payload || []);
        }
        break;
      case 'complete':
        if (sub) {
          this.subs.delete(message.id);
          if (sub.complete) sub.complete();
        }
        break;
      default:
        break;
    }
  }

  _closed(event) {
    this.ws = null;
    this.acked = false;
    if (this.subs.size === 0) {
      this._setState('idle');
      return;
    }
    const code = event && event.code;
    if (code === 4401 || code === 4403) {
      // Not signed in (any more), or not from this server's origin: retrying cannot help.
      const subs = Array.from(this.subs.values());
      this.subs.clear();
      this._setState('closed');
      const errors = [{ message: 'Live updates were refused.', extensions: { code: 'unauthorized' } }];
      subs.forEach((s) => s.error && s.error(errors));
      return;
    }
    this.failures += 1;
    if (this.failures === UNAVAILABLE_AFTER) {
      this.subs.forEach((s) => s.unavailable && s.unavailable());
    }
    this._setState('reconnecting');
    const delay = Math.min(15000, 500 * 2 ** Math.min(this.failures, 5)) * (0.75 + Math.random() / 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.subs.size) this._open();
    }, delay);
  }
}

let shared = null;

/** The page's one client, on ws(s)://this host/graphql. */
export function client() {
  if (!shared) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    shared = new SubscriptionClient(`${scheme}//${location.host}/graphql`);
  }
  return shared;
}
