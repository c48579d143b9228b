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

/**
 * Run `fn` soon, once for any number of calls in between, never twice at a time and
 * at most once per `minGap` ms (a burst of events is one refetch, not a storm).
 */
export function coalesce(fn, delay = 60, minGap = 750) {
  let timer = null;
  let running = false;
  let again = false;
  let lastRun = 0;
  const run = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    lastRun = Date.now();
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
    if (!timer) timer = setTimeout(run, Math.max(delay, minGap - (Date.now() - lastRun)));
  };
  trigger.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return trigger;
}

/**
 * Watch subscriptions [{query, variables, onData?(data) -> bool}] and call `refresh`
 * (coalesced) whenever one of them delivers an event that onData does not reject, and
 * at least every `everyMs`. Returns stop().
 */
export function watch(subscriptions, refresh, { pollMs = 10000, everyMs = 60000 } = {}) {
  const trigger = coalesce(refresh);
  // Steady heartbeats are not events: re-read now and then so "last seen" stays true.
  const floor = setInterval(() => {
    if (document.visibilityState === 'visible') trigger();
  }, everyMs);
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
    clearInterval(floor);
    trigger.cancel();
    stopPolling();
    stops.forEach((stop) => stop());
  };
}
