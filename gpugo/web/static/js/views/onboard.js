// Onboarding: an install token, its command and countdown; when a machine registers
// with it, the page moves on to that machine by itself; when one is refused (the plan's
// GPUs), the page says why at once. One command at a time: coming back to the page shows
// the same one while it is unused, and "New command" ends the old one.

import { h, render } from '../dom.js';
import { countdown } from '../format.js';
import { gql } from '../gql.js';
import { coalesce } from '../live.js';
import { INSTALL_TOKEN, INSTALL_TOKEN_REFUSALS } from '../subs.js';
import { copyButton, errorBox, navigate, pageHeader, toast } from '../ui.js';
import { client } from '../ws.js';

const GENERATE = `mutation Generate($replaces: ID) {
  generateInstallToken(type: AGENT_INSTALL, replaces: $replaces) { id expiresAt installCommand endpointWarning }
}`;
// The command shown, kept for this tab (it is shown once by the server): a later visit
// shows it again while it is unused rather than making another.
const KEPT = 'gpugo.installCommand';

function keptCommand(userId) {
  try {
    const kept = JSON.parse(sessionStorage.getItem(KEPT) || 'null');
    return kept && kept.userId === userId ? kept : null;
  } catch {
    return null;
  }
}
const TOKEN = `query Token($id: ID!) { installToken(id: $id) { id status expiresAt agent { agentId hostname } } }`;
const POLL_MS = 3000;

export function mount({ root, app }) {
  const state = { token: null, error: null, busy: false, status: 'ACTIVE', refusals: [] };
  let stopSub = null;
  let stopRefusals = null;
  let poll = null;
  let ticker = null;
  let done = false;

  // {status, agentId, hostname} from the query or the subscription.
  function outcome({ status, agentId, hostname }) {
    if (done) return;
    state.status = status;
    if (status === 'USED' && agentId) {
      done = true;
      sessionStorage.removeItem(KEPT);
      toast(`${hostname || 'The machine'} registered.`);
      navigate(`/agents/${agentId}?new=1`);
      return;
    }
    draw();
  }

  const check = coalesce(async () => {
    if (!state.token || done) return;
    const data = await gql(TOKEN, { id: state.token.id });
    const info = data.installToken;
    if (!info) return;
    outcome({
      status: info.status,
      agentId: info.agent && info.agent.agentId,
      hostname: info.agent && info.agent.hostname,
    });
  });

  function follow(id) {
    if (stopSub) stopSub();
    if (stopRefusals) stopRefusals();
    // A machine refused with this command: why, at once (the agent only prints it).
    stopRefusals = client().subscribe(INSTALL_TOKEN_REFUSALS, { id }, {
      next(result) {
        const refusal = result.data && result.data.installTokenRefusals;
        if (!refusal || done) return;
        state.refusals = [refusal, ...state.refusals].slice(0, 5);
        draw();
        app.refreshMe().then(draw, () => {});
      },
    });
    clearInterval(poll);
    poll = null;
    const startPolling = () => {
      if (!poll) poll = setInterval(check, POLL_MS);
    };
    stopSub = client().subscribe(INSTALL_TOKEN, { id }, {
      next(result) {
        const info = result.data && result.data.installToken;
        if (!info) {
          check();
          return;
        }
        outcome({
          status: info.token.status,
          agentId: info.agentId,
          hostname: info.agent && info.agent.hostname,
        });
      },
      error: startPolling,
      unavailable: startPolling,
      available() {
        clearInterval(poll);
        poll = null;
        check();
      },
      resync: check, // it may have been used while the socket was down
    });
  }

  function keep() {
    const userId = app.me && app.me.id;
    if (!userId || !state.token) return;
    sessionStorage.setItem(KEPT, JSON.stringify({ userId, token: state.token, issuedAt: state.issuedAt }));
  }

  // The command kept from an earlier visit, if it is still unused; else a new one.
  async function resume() {
    const kept = keptCommand(app.me && app.me.id);
    if (kept) {
      try {
        const data = await gql(TOKEN, { id: kept.token.id });
        if (data.installToken && data.installToken.status === 'ACTIVE') {
          Object.assign(state, { token: kept.token, issuedAt: kept.issuedAt, status: 'ACTIVE' });
          follow(state.token.id);
          draw();
          return;
        }
      } catch {
        // fall through to a new command
      }
      sessionStorage.removeItem(KEPT);
    }
    await generate();
  }

  async function generate() {
    state.busy = true;
    state.error = null;
    draw();
    try {
      // The command on screen, if unused, stops working: one command at a time.
      const replaces = state.token && state.status === 'ACTIVE' ? state.token.id : null;
      const data = await gql(GENERATE, { replaces });
      state.token = data.generateInstallToken;
      state.issuedAt = Date.now();
      state.status = 'ACTIVE';
      state.refusals = [];
      keep();
      follow(state.token.id);
    } catch (error) {
      state.error =
        error.code === 'rate_limited'
          ? `Too many install commands at once. Try again in ${error.retryAfter || 60} s.`
          : error.message;
    }
    state.busy = false;
    draw();
  }

  // The token's lifetime as the server set it (30 minutes unless configured otherwise),
  // in whole minutes: the countdown runs on this browser's clock from the moment the
  // command arrived, so a clock a few seconds off the server's does not show 29:47.
  function lifetimeMs() {
    const raw = new Date(state.token.expiresAt).getTime() - state.issuedAt;
    const minutes = Math.round(raw / 60000);
    return minutes >= 1 ? minutes * 60000 : raw;
  }

  function expiresAt() {
    return state.issuedAt + lifetimeMs();
  }

  function lifetime() {
    if (!state.token) return '';
    const minutes = Math.round(lifetimeMs() / 60000);
    return minutes >= 1 ? ` and only for ${minutes === 1 ? '1 minute' : `${minutes} minutes`}` : ', for a short time';
  }

  function commandBlock() {
    const token = state.token;
    if (!token) {
      return h(
        'div',
        { class: 'command-box placeholder' },
        h('p', { class: 'muted' }, state.busy ? 'Creating an install command…' : 'No install command yet.'),
        state.busy
          ? null
          : h('button', { type: 'button', class: 'btn btn-primary', onclick: generate }, 'Generate install command'),
      );
    }
    const left = expiresAt() - Date.now();
    const expired = left <= 0 || state.status === 'EXPIRED';
    return h(
      'div',
      { class: `command-box ${expired ? 'expired' : ''}`.trim() },
      h(
        'div',
        { class: 'command-head' },
        h('span', { class: 'small muted', id: 'install-label' }, 'Run as root on the GPU machine (Linux):'),
        copyButton(token.installCommand, 'Copy', { id: 'copy-install', 'aria-label': 'Copy install command', disabled: expired }),
      ),
      h('pre', { class: 'command', 'aria-labelledby': 'install-label' }, h('code', { id: 'install-command' }, token.installCommand)),
      h(
        'div',
        { class: 'command-foot' },
        expired
          ? h('span', { class: 'countdown expired', role: 'status' }, 'This command has expired.')
          : h(
              'span',
              { class: 'countdown', id: 'countdown', 'aria-live': 'off' },
              'Valid for ',
              h('strong', { class: 'num' }, countdown(left)),
              ' · single use',
            ),
        expired
          ? h('button', { type: 'button', class: 'btn btn-primary', onclick: generate }, 'Generate a new command')
          : h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: generate }, 'New command'),
      ),
    );
  }

  // The server refuses a registration that would go over the plan's GPUs; say so first.
  function planNotice() {
    const usage = app.me && app.me.usage;
    if (!usage || usage.gpusUsed < usage.gpusAllowed) return null;
    return h(
      'div',
      { class: 'notice notice-warning', role: 'status', id: 'plan-full' },
      h(
        'p',
        {},
        h('strong', {}, `Your plan's GPUs are all in use (${usage.gpusUsed} of ${usage.gpusAllowed}). `),
        'A new machine will be refused when it registers. Delete a machine or change plans first.',
      ),
    );
  }

  function endpointNotice() {
    const warning = state.token && state.token.endpointWarning;
    if (!warning) return null;
    return h('div', { class: 'notice notice-warning', role: 'status', id: 'endpoint-warning' }, h('p', {}, warning));
  }

  /** What to do after the latest refusal, by its code. */
  function refusalAdvice(code) {
    if (code === 'plan_limit_exceeded')
      return 'Nothing was added. Free GPUs by deleting a machine, or change plans, then run the command again (it still works).';
    if (code === 'validation_error')
      return 'Nothing was added, and the command still works: the agent on that machine sent something this server does not accept. Check that it runs a current GPU Go agent, then run the command again.';
    return 'Nothing was added. Generate a new command and run it on the machine.';
  }

  function refusalsBlock() {
    if (!state.refusals.length) return null;
    return h(
      'div',
      { class: 'notice notice-error refusals', role: 'alert', id: 'install-refusals' },
      state.refusals.map((r) =>
        h('p', {}, h('strong', {}, `${r.hostname || 'A machine'} was refused: `), r.message),
      ),
      h('p', { class: 'small', id: 'install-refusal-advice' }, refusalAdvice(state.refusals[0].code)),
    );
  }

  function draw() {
    const waiting = state.token && state.status === 'ACTIVE' && expiresAt() > Date.now();
    render(
      root,
      h(
        'div',
        { class: 'onboard' },
        pageHeader('Add a GPU machine', { crumbs: [['/', 'Overview']] }),
        planNotice(),
        h(
          'section',
          { class: 'panel' },
          h(
            'ol',
            { class: 'steps' },
            h(
              'li',
              {},
              h('h2', {}, 'Run the install command'),
              h(
                'p',
                { class: 'muted' },
                `It installs the GPU Go agent and registers the machine with this server. The command works once${lifetime()}.`,
              ),
              errorBox(state.error),
              endpointNotice(),
              commandBlock(),
            ),
            h(
              'li',
              {},
              h('h2', {}, 'Wait for the machine'),
              h(
                'p',
                { class: 'waiting', role: 'status' },
                waiting ? h('span', { class: 'spinner', 'aria-hidden': 'true' }) : null,
                waiting
                  ? 'Waiting for the machine to register… this page opens it as soon as it does.'
                  : 'Once the command runs, the machine appears here by itself.',
              ),
              refusalsBlock(),
            ),
          ),
        ),
      ),
    );
  }

  draw();
  resume();
  app.refreshMe().then(draw, () => {});
  ticker = setInterval(() => {
    if (state.token) draw();
  }, 1000);
  return () => {
    done = true;
    if (stopSub) stopSub();
    if (stopRefusals) stopRefusals();
    clearInterval(poll);
    clearInterval(ticker);
    check.cancel();
  };
}
