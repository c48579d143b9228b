// Keeping a view current: subscriptions say "something changed", the view refetches
// what it shows (one coalesced query, never a burst). Should the server offer no
// subscriptions or the socket stay down, the view polls instead until it is back.

import { client } from './ws.js';

const pollers = new Set();
const modeListeners = new Set();

function notifyMode() {
  const mode = pollers.size ? 'polling' : null;
  modeListeners.forEach((fn) => fn(mode));
}

/** fn('polling' | null) when some view falls back to polling or stops doing so. */
export function onFallback(fn) {
  modeListeners.add(fn);
  return () => modeListeners.delete(fn);
}

/** Run `fn` soon, once for any number of calls in between, never twice at a time. */
export function coalesce(fn, delay = 60) {
  let timer = null;
  let running = false;
  let again = false;
  const run = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await fn();
    } catch (error) {
      console.warn('refresh failed', error);
    } finally {
      running = false;
      if (again) {
        again = false;
        trigger();
      }
    }
  };
  const trigger = () => {
    if (!timer) timer = setTimeout(run, delay);
  };
  trigger.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return trigger;
}

/**
 * Watch subscriptions [{query, variables, onData?(data) -> bool}] and call `refresh`
 * (coalesced) whenever one of them delivers an event that onData does not reject.
 * Returns stop().
 */
export function watch(subscriptions, refresh, { pollMs = 10000 } = {}) {
  const trigger = coalesce(refresh);
  const stops = [];
  let timer = null;
  const token = {};
  let stopped = false;

  const startPolling = () => {
    if (timer || stopped) return;
    timer = setInterval(trigger, pollMs);
    pollers.add(token);
    notifyMode();
  };
  const stopPolling = () => {
    if (!timer) return;
    clearInterval(timer);
    timer = null;
    pollers.delete(token);
    notifyMode();
  };

  for (const sub of subscriptions) {
    stops.push(
      client().subscribe(sub.query, sub.variables, {
        next(result) {
          if (result.errors && result.errors.length) return;
          if (!sub.onData || sub.onData(result.data) !== false) trigger();
        },
        error(errors) {
          // The server does not offer this subscription (or refused it): poll instead.
          console.warn('subscription refused', errors);
          startPolling();
        },
        // The stream ended (e.g. its agent was deleted): show what is there now.
        complete: trigger,
        resync: trigger,
        unavailable: startPolling,
        available: () => {
          stopPolling();
          trigger();
        },
      }),
    );
  }
  return () => {
    stopped = true;
    trigger.cancel();
    stopPolling();
    stops.forEach((stop) => stop());
  };
}
