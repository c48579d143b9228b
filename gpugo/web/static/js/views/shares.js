// Shares: short links through which others reach a worker. Create (IP, optional expiry
// and max uses), copy, watch the use count rise, delete.

import { h, render } from '../dom.js';
import { ago, dateTime } from '../format.js';
import { charCount, focusFirstInvalid, formDialog, noErrors, serverErrors } from '../forms.js';
import { gql } from '../gql.js';
import { watch } from '../live.js';
import { AGENT_EVENTS } from '../subs.js';
import { confirmDialog, copyButton, emptyState, errorBox, field, link, pageHeader, skeleton, toast } from '../ui.js';

const SHARE_FIELDS = `id shortCode shortLink workerId hardwareVendor connectionUrl expiresAt maxUses usedCount createdAt
  worker { id name listenPort agent { id hostname status lastSeenAt } }`;
const QUERY = `query Shares {
  shares(first: 100) { totalCount edges { node { ${SHARE_FIELDS} } } }
  workers(first: 100) { edges { node { id name listenPort agentId agent { id hostname networkIps } } } }
}`;
const CREATE = `mutation CreateShare($input: CreateShareInput!) { createShare(input: $input) { ${SHARE_FIELDS} } }`;
const DELETE = 'mutation DeleteShare($id: ID!) { deleteShare(id: $id) }';
const EXTEND = `mutation ExtendShare($id: ID!, $input: ExtendShareInput!) { extendShare(id: $id, input: $input) { ${SHARE_FIELDS} } }`;

// "2026-12-04T21:05" in local time, for a datetime-local input.
function localInputValue(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
const SHARE_POLL_MS = 2000;

// The server's limits (gpugo/inputs/shares.py), checked here too so that every problem
// shows at once; the server still decides.
const MAX_USES = 2 ** 31 - 1;
const MAX_ADDRESS = 255;
const HOST_NAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4_PART = /^(0|[1-9]\d{0,2})$/;

/** What the page can see wrong with the address clients dial, or null. */
function addressProblem(value) {
  if (!value) return 'Enter the IP address or host name that clients dial.';
  if (charCount(value) > MAX_ADDRESS) return `Use at most ${MAX_ADDRESS} characters.`;
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  // An IPv6 address (with a zone, perhaps): the server reads those.
  if (bare.includes(':')) return null;
  const parts = value.split('.');
  if (/^[\d.]+$/.test(value)) {
    return parts.length === 4 && parts.every((p) => IPV4_PART.test(p) && Number(p) <= 255) ? null : 'Enter an IP address or a host name.';
  }
  // An all-digit last label is a mistyped IPv4 address, not a host name.
  return HOST_NAME.test(value) && !/^\d+$/.test(parts[parts.length - 1]) ? null : 'Enter an IP address or a host name.';
}

/** What the page can see wrong with a use limit (the <input type=number>), or null. */
function maxUsesProblem(control) {
  const text = control.value.trim();
  // Letters typed into a number field read as empty: never "unlimited" by mistake.
  if (control.validity.badInput) return 'Enter a whole number, or leave it empty for no limit.';
  if (text === '') return null;
  const value = Number(text);
  if (!Number.isInteger(value)) return 'Enter a whole number, or leave it empty for no limit.';
  if (value < 1) return 'Enter at least 1, or leave it empty for no limit.';
  if (value > MAX_USES) return `Enter at most ${MAX_USES}, or leave it empty for no limit.`;
  return null;
}

/** What the page can see wrong with an expiry (a datetime-local value), or null. */
function expiresProblem(value) {
  return value && new Date(value).getTime() <= Date.now() ? 'Choose a time in the future.' : null;
}

export function mount({ root, query }) {
  const state = {
    loading: true,
    error: null,
    shares: [],
    total: 0,
    workers: [],
    formOpen: query.has('worker'),
    workerId: query.get('worker') || '',
    ipTouched: false,
    formErrors: noErrors(),
    busy: false,
    created: null,
  };

  async function refresh() {
    try {
      const data = await gql(QUERY);
      state.shares = data.shares.edges.map((e) => e.node);
      state.total = data.shares.totalCount;
      state.workers = data.workers.edges.map((e) => e.node);
      if (!state.workerId && state.workers.length) state.workerId = state.workers[0].id;
      state.error = null;
    } catch (error) {
      if (error.code === 'unauthorized') return;
      state.error = error.message;
    }
    state.loading = false;
    draw();
  }

  function suggestedIp(workerId) {
    const worker = state.workers.find((w) => w.id === workerId);
    const ips = (worker && worker.agent && worker.agent.networkIps) || [];
    return ips[0] || '';
  }

  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const maxUses = form.maxUses.value.trim();
    const expires = form.expires.value;
    const input = {
      workerId: form.worker.value,
      connectionIp: form.ip.value.trim(),
      expiresAt: expires ? new Date(expires).toISOString() : null,
      maxUses: maxUses === '' ? null : Number(maxUses),
    };
    // Every problem the page can see, at once.
    const fields = {};
    const address = addressProblem(input.connectionIp);
    if (address) fields.connectionIp = address;
    const expiry = expiresProblem(expires);
    if (expiry) fields.expiresAt = expiry;
    const uses = maxUsesProblem(form.maxUses);
    if (uses) fields.maxUses = uses;
    state.formErrors = { fields, message: null };
    if (!Object.keys(fields).length) {
      state.busy = true;
      draw();
      try {
        const data = await gql(CREATE, { input });
        state.created = data.createShare;
        state.formOpen = false;
        state.formErrors = noErrors();
        toast('Share link created.');
        state.busy = false;
        await refresh();
        const copy = root.querySelector('#copy-new-share');
        if (copy) copy.focus();
        return;
      } catch (error) {
        state.formErrors = serverErrors(error, { fields: ['workerId', 'connectionIp', 'expiresAt', 'maxUses'] });
        if (error.code === 'not_found') state.formErrors = { fields: { workerId: 'This worker no longer exists.' }, message: null };
      }
      state.busy = false;
    }
    draw();
    focusFirstInvalid(root.querySelector('.share-form'));
  }

  function closeForm() {
    state.formOpen = false;
    state.formErrors = noErrors();
    draw();
    const opener = root.querySelector('#new-share');
    if (opener) opener.focus();
  }

  async function remove(share) {
    const ok = await confirmDialog({
      title: 'Delete this share link?',
      body: h('p', {}, 'Whoever holds ', h('code', {}, share.shortLink), ' can no longer use it.'),
      confirmLabel: 'Delete link',
    });
    if (!ok) return;
    try {
      await gql(DELETE, { id: share.id });
      if (state.created && state.created.id === share.id) state.created = null;
      toast('Share link deleted.');
      await refresh();
    } catch (error) {
      toast(error.message, 'error');
    }
  }

  // Extend a link: new expiry and use limit in a dialog; its code stays the same.
  function extend(share) {
    let errors = {};
    let message = null;
    // Closed by Save, Cancel or Escape: focus back on the row's Extend button.
    const opener = () => root.querySelector(`tr[data-share="${CSS.escape(share.id)}"] .btn-extend`);
    const { dialog, show } = formDialog({ className: 'extend-dialog', labelledBy: 'extend-title', opener });
    const close = () => dialog.close();
    async function save(event) {
      event.preventDefault();
      const formEl = event.currentTarget;
      const expires = formEl.expires.value;
      const maxUses = formEl.maxUses.value.trim();
      errors = {};
      message = null;
      const input = {
        expiresAt: expires ? new Date(expires).toISOString() : null,
        maxUses: maxUses === '' ? null : Number(maxUses),
      };
      const expiry = expiresProblem(expires);
      if (expiry) errors.expiresAt = expiry;
      const uses = maxUsesProblem(formEl.maxUses);
      if (uses) errors.maxUses = uses;
      else if (input.maxUses !== null && input.maxUses < share.usedCount)
        errors.maxUses = `Enter at least ${share.usedCount} (the uses so far), or leave it empty for no limit.`;
      if (!Object.keys(errors).length) {
        try {
          await gql(EXTEND, { id: share.id, input });
          close();
          toast('Share link updated; its address is unchanged.');
          await refresh();
          return;
        } catch (error) {
          const said = serverErrors(error, {
            fields: ['expiresAt', 'maxUses'],
            say: { not_found: () => 'This share link no longer exists (it may have been deleted).' },
          });
          errors = said.fields;
          message = said.message;
        }
      }
      paint();
      focusFirstInvalid(dialog);
    }
    function paint() {
      render(
        dialog,
        h(
          'form',
          { novalidate: true, onsubmit: save },
          h('h2', { id: 'extend-title' }, 'Extend share link'),
          h('p', { class: 'muted small' }, h('code', {}, share.shortLink), ' keeps working with the new limits.'),
          field({
            id: 'extend-expires',
            label: 'Expires',
            control: h('input', { name: 'expires', type: 'datetime-local', value: localInputValue(share.expiresAt) }),
            hint: 'Empty: never.',
            error: errors.expiresAt,
          }),
          field({
            id: 'extend-max-uses',
            label: 'Maximum uses',
            control: h('input', {
              name: 'maxUses',
              type: 'number',
              min: Math.max(1, share.usedCount),
              inputmode: 'numeric',
              value: share.maxUses != null ? String(share.maxUses) : '',
            }),
            hint: `Used ${share.usedCount} times so far. Empty: unlimited.`,
            error: errors.maxUses,
          }),
          errorBox(message),
          h(
            'div',
            { class: 'actions end' },
            h('button', { type: 'button', class: 'btn', onclick: close }, 'Cancel'),
            h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save limits'),
          ),
        ),
      );
    }
    paint();
    show();
  }

  function form() {
    const errors = state.formErrors;
    const ip = state.ipTouched ? undefined : suggestedIp(state.workerId);
    return h(
      'form',
      { class: 'share-form panel inset', novalidate: true, onsubmit: submit, 'aria-labelledby': 'share-form-title' },
      h('h2', { id: 'share-form-title' }, 'New share link'),
      h(
        'div',
        { class: 'form-row' },
        field({
          id: 'share-worker',
          label: 'Worker',
          control: h(
            'select',
            {
              name: 'worker',
              required: true,
              onchange(event) {
                state.workerId = event.currentTarget.value;
                const ipInput = root.querySelector('#share-ip');
                if (!state.ipTouched && ipInput) ipInput.value = suggestedIp(state.workerId);
              },
            },
            state.workers.map((w) =>
              h(
                'option',
                { value: w.id, selected: w.id === state.workerId },
                `${w.name} on ${w.agent ? w.agent.hostname : '?'} (port ${w.listenPort})`,
              ),
            ),
          ),
          error: errors.fields.workerId,
        }),
        field({
          id: 'share-ip',
          label: 'Connection address',
          control: h('input', {
            name: 'ip',
            type: 'text',
            required: true,
            autocomplete: 'off',
            spellcheck: 'false',
            value: ip,
            oninput() {
              state.ipTouched = true;
            },
          }),
          hint: 'IP address or host name that clients dial to reach the machine.',
          error: errors.fields.connectionIp,
        }),
      ),
      h(
        'div',
        { class: 'form-row' },
        field({
          id: 'share-expires',
          label: 'Expires (optional)',
          control: h('input', { name: 'expires', type: 'datetime-local' }),
          hint: 'A time in the future; empty: the link does not expire.',
          error: errors.fields.expiresAt,
        }),
        field({
          id: 'share-max-uses',
          label: 'Maximum uses (optional)',
          className: 'narrow',
          control: h('input', { name: 'maxUses', type: 'number', min: 1, max: MAX_USES, inputmode: 'numeric' }),
          hint: 'At least 1; empty: unlimited.',
          error: errors.fields.maxUses,
        }),
      ),
      errorBox(errors.message),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'submit', class: 'btn btn-primary', disabled: state.busy }, 'Create link'),
        h('button', { type: 'button', class: 'btn', onclick: closeForm }, 'Cancel'),
      ),
    );
  }

  function createdPanel() {
    const share = state.created;
    return h(
      'div',
      { class: 'notice notice-success created-share', role: 'status' },
      h('p', {}, h('strong', {}, 'Share link ready. '), 'Send it to whoever should reach this worker.'),
      h(
        'div',
        { class: 'copy-row' },
        h('code', { class: 'short-link', id: 'new-share-link' }, share.shortLink),
        copyButton(share.shortLink, 'Copy link', { id: 'copy-new-share' }),
      ),
    );
  }

  function usesCell(share) {
    const usedUp = share.maxUses != null && share.usedCount >= share.maxUses;
    return h(
      'td',
      { 'data-label': 'Uses', class: 'num' },
      h(
        'span',
        {},
        h('span', { class: 'used-count', 'data-used': String(share.usedCount) }, String(share.usedCount)),
        h('span', { class: 'muted' }, share.maxUses != null ? ` / ${share.maxUses}` : ' / ∞'),
        usedUp ? h('span', { class: 'tag tag-muted' }, 'used up') : null,
      ),
    );
  }

  function table() {
    const now = Date.now();
    return h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'table responsive', id: 'shares-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Link', 'Worker', 'Connects to', 'Uses', 'Expires'].map((t) => h('th', { scope: 'col' }, t)),
            h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
          ),
        ),
        h(
          'tbody',
          {},
          state.shares.map((share) => {
            const expired = share.expiresAt && new Date(share.expiresAt).getTime() <= now;
            const usedUp = share.maxUses != null && share.usedCount >= share.maxUses;
            const agent = share.worker && share.worker.agent;
            const offline = agent && agent.status !== 'ONLINE';
            return h(
              'tr',
              { key: share.id, 'data-share': share.id },
              h(
                'td',
                { 'data-label': 'Link' },
                h('code', { class: 'short-link' }, share.shortLink),
                h('div', { class: 'muted small' }, `created ${ago(share.createdAt, now)}`),
              ),
              h(
                'td',
                { 'data-label': 'Worker' },
                share.worker
                  ? [
                      h('span', { class: 'strong' }, share.worker.name),
                      share.worker.agent
                        ? h('div', { class: 'small' }, link(`/agents/${share.worker.agent.id}`, {}, share.worker.agent.hostname))
                        : null,
                      offline
                        ? h(
                            'div',
                            { class: 'share-offline small', title: `Last seen ${ago(agent.lastSeenAt, now)}` },
                            agent.status === 'PENDING'
                              ? 'Machine not reporting yet: the link cannot connect'
                              : 'Machine offline: the link cannot connect until it is back',
                          )
                        : null,
                    ]
                  : '—',
              ),
              h('td', { 'data-label': 'Connects to' }, h('code', {}, share.connectionUrl)),
              usesCell(share),
              h(
                'td',
                { 'data-label': 'Expires' },
                share.expiresAt ? h('time', { datetime: share.expiresAt, title: dateTime(share.expiresAt) }, ago(share.expiresAt, now)) : 'Never',
                expired ? h('span', { class: 'tag tag-muted' }, 'expired') : null,
              ),
              h(
                'td',
                { class: 'row-actions' },
                expired || usedUp ? null : copyButton(share.shortLink, 'Copy', { 'aria-label': `Copy ${share.shortLink}` }),
                h(
                  'button',
                  { type: 'button', class: 'btn btn-small btn-extend', onclick: () => extend(share), 'aria-label': `Extend ${share.shortLink}` },
                  'Extend',
                ),
                h(
                  'button',
                  { type: 'button', class: 'btn btn-small btn-danger-ghost', onclick: () => remove(share), 'aria-label': `Delete ${share.shortLink}` },
                  'Delete',
                ),
              ),
            );
          }),
        ),
      ),
    );
  }

  function draw() {
    let body;
    if (state.loading) body = skeleton(3);
    else if (!state.shares.length)
      body = emptyState(
        'No share links yet',
        state.workers.length
          ? 'A share link lets someone else connect to one of your workers, with an optional expiry and use limit.'
          : 'Add a GPU machine first: shares point at its workers.',
        state.workers.length ? null : link('/add', { class: 'btn btn-primary' }, 'Add a GPU machine'),
      );
    else body = table();
    render(
      root,
      h(
        'div',
        { class: 'shares' },
        pageHeader('Shares', {
          actions:
            state.formOpen || !state.workers.length
              ? []
              : [
                  h(
                    'button',
                    {
                      type: 'button',
                      id: 'new-share',
                      class: 'btn btn-primary',
                      onclick() {
                        state.formOpen = true;
                        state.created = null;
                        draw();
                        root.querySelector('#share-worker').focus();
                      },
                    },
                    'New share link',
                  ),
                ],
        }),
        errorBox(state.error),
        state.created ? createdPanel() : null,
        state.formOpen && state.workers.length ? form() : null,
        h('section', { class: 'panel', 'aria-label': 'Share links' }, body),
      ),
    );
  }

  draw();
  refresh();
  // Workers renamed or deleted arrive as agent events. No subscription streams share
  // uses (a use publishes no event), so use counts are re-read every
  // few seconds while the page is visible.
  const stop = watch([{ query: AGENT_EVENTS }], refresh);
  const ticker = setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, SHARE_POLL_MS);
  return () => {
    stop();
    clearInterval(ticker);
  };
}
