// Notifications: the user's webhook endpoints (create, test, enable, rotate, delete) and,
// for the one selected, its recent deliveries with status code and timing (redeliver one).

import { h, render } from '../dom.js';
import { ago, dateTime } from '../format.js';
import { charCount, focusFirstInvalid, noErrors, serverErrors } from '../forms.js';
import { gql } from '../gql.js';
import { confirmDialog, copyButton, emptyState, errorBox, field, fieldset, pageHeader, skeleton, toast } from '../ui.js';

const EVENTS = [
  ['agent.offline', 'Machine offline'],
  ['agent.online', 'Machine online'],
  ['agent.registered', 'Machine added'],
  ['agent.deleted', 'Machine removed'],
  ['worker.failed', 'Worker failed'],
  ['share.used_up', 'Share link used up'],
  ['share.expired', 'Share link expired'],
  ['plan.limit_reached', 'Plan limit reached'],
];
const WEBHOOK = 'id url description events enabled disabledReason createdAt';
const LIST = `query Webhooks { webhooks { ${WEBHOOK} } webhookEndpointsAllowed }`;
const DELIVERIES = `query Deliveries($id: ID!) { webhook(id: $id) { id deliveries {
  id eventType status attempts responseStatus durationMs error queuedAt lastAttemptAt deliveredAt } } }`;
const CREATE = `mutation CreateWebhook($input: CreateWebhookInput!) { createWebhook(input: $input) { secret webhook { ${WEBHOOK} } } }`;
const UPDATE = `mutation UpdateWebhook($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { ${WEBHOOK} } }`;
const DELETE = 'mutation DeleteWebhook($id: ID!) { deleteWebhook(id: $id) }';
const TEST = 'mutation TestWebhook($id: ID!) { testWebhook(id: $id) { id } }';
const ROTATE = 'mutation RotateWebhookSecret($id: ID!) { rotateWebhookSecret(id: $id) { secret webhook { id } } }';
const REDELIVER = 'mutation Redeliver($id: ID!) { redeliverWebhookDelivery(id: $id) { id } }';
// The server's limits (gpugo/inputs/webhooks.py, gpugo/addresses.py), checked here too so
// that every problem shows at once; the server still decides (and where a URL may point).
const MAX_URL = 2048;
const MAX_DESCRIPTION = 200;

/** What the page can see wrong with a URL itself, or null. */
function urlProblem(url) {
  if (!url) return 'Enter the URL that should receive the notifications.';
  const length = charCount(url);
  if (length > MAX_URL) return `Use at most ${MAX_URL} characters (this URL has ${length}).`;
  if (/[\s\u0000-\u001f]/.test(url)) return 'Remove the spaces from the URL.';
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return 'Enter a whole URL: https:// (or http://), the host name, then the path.';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'Use an http:// or https:// URL.';
  if (!parsed.hostname) return 'Add the host name to the URL.';
  if (parsed.username || parsed.password) return 'Leave the user name and password out of the URL.';
  return null;
}

function checkWebhook(input) {
  const fields = {};
  const url = urlProblem(input.url);
  if (url) fields.url = url;
  if (!input.events.length) fields.events = 'Choose at least one event.';
  const length = charCount(input.description);
  if (length > MAX_DESCRIPTION) fields.description = `Use at most ${MAX_DESCRIPTION} characters (this one has ${length}).`;
  return fields;
}

export function mount({ root }) {
  const state = {
    loading: true,
    hooks: [],
    // How many endpoints the account may have (the server's setting).
    allowed: null,
    selected: null,
    deliveries: null,
    fresh: null,
    error: null,
    formErrors: noErrors(),
    busy: false,
  };
  let timer = null;

  async function refresh() {
    try {
      const data = await gql(LIST);
      state.hooks = data.webhooks;
      state.allowed = data.webhookEndpointsAllowed;
      state.error = null;
      if (state.selected && !state.hooks.some((w) => w.id === state.selected)) state.selected = null;
      if (!state.selected && state.hooks.length) state.selected = state.hooks[0].id;
      if (state.selected) {
        const found = (await gql(DELIVERIES, { id: state.selected })).webhook;
        state.deliveries = found ? found.deliveries : [];
      } else state.deliveries = null;
    } catch (error) {
      if (error.code === 'unauthorized') return;
      state.error = error.message;
    }
    state.loading = false;
    draw();
  }

  async function act(work, done) {
    try {
      await work();
      if (done) toast(done);
    } catch (error) {
      toast(error.message, 'error');
    }
    await refresh();
  }

  function full() {
    return state.allowed != null && state.hooks.length >= state.allowed;
  }

  async function create(event) {
    event.preventDefault();
    const form = event.currentTarget;
    if (full()) return; // the reason is said beside the button
    const input = {
      url: form.url.value.trim(),
      events: Array.from(form.querySelectorAll('input[name="events"]:checked')).map((box) => box.value),
      description: form.description.value.trim(),
    };
    state.formErrors = { fields: checkWebhook(input), message: null };
    if (!Object.keys(state.formErrors.fields).length) {
      state.busy = true;
      draw();
      try {
        const created = (await gql(CREATE, { input })).createWebhook;
        state.fresh = { id: created.webhook.id, secret: created.secret };
        state.selected = created.webhook.id;
        form.reset();
        toast('Endpoint added. Copy its signing secret now.');
        state.busy = false;
        await refresh();
        // The secret is shown once: focus on it, selected, ready to copy.
        const secret = root.querySelector('#webhook-secret');
        if (secret) {
          secret.focus();
          secret.select();
        }
        return;
      } catch (error) {
        state.formErrors = serverErrors(error, {
          fields: ['url', 'events', 'description'],
          say: { conflict: (e) => `${e.message} Delete one to add another.` },
        });
      }
      state.busy = false;
    }
    draw();
    focusFirstInvalid(form);
  }

  async function remove(hook) {
    const ok = await confirmDialog({
      title: 'Delete this endpoint?',
      body: h('p', {}, `${hook.url} stops receiving notifications; its delivery history goes too.`),
      confirmLabel: 'Delete endpoint',
    });
    if (ok) await act(() => gql(DELETE, { id: hook.id }), 'Endpoint deleted.');
  }

  async function rotate(hook) {
    const ok = await confirmDialog({
      title: 'Rotate the signing secret?',
      body: h('p', {}, 'Deliveries are signed with the new secret at once; update your receiver.'),
      confirmLabel: 'Rotate secret',
    });
    if (!ok) return;
    await act(async () => {
      const rotated = (await gql(ROTATE, { id: hook.id })).rotateWebhookSecret;
      state.fresh = { id: hook.id, secret: rotated.secret };
    }, 'New secret created. Copy it now.');
  }

  function secretPanel() {
    return h(
      'div',
      { class: 'notice notice-warning fresh-token', role: 'status', key: `secret-${state.fresh.id}` },
      h('p', {}, h('strong', {}, 'Copy the signing secret now. '), 'It is shown only this once.'),
      h(
        'div',
        { class: 'copy-row' },
        h('label', { for: 'webhook-secret', class: 'visually-hidden' }, 'Signing secret'),
        h('input', { id: 'webhook-secret', class: 'mono', type: 'text', readonly: true, value: state.fresh.secret, spellcheck: 'false' }),
        copyButton(state.fresh.secret, 'Copy', { 'aria-label': 'Copy signing secret' }),
      ),
      h('p', { class: 'small muted' }, 'Check each request’s X-Gpugo-Signature with it (docs/webhooks.md).'),
      h('button', { type: 'button', class: 'btn btn-small', onclick() { state.fresh = null; draw(); } }, 'Done, I have copied it'),
    );
  }

  function limitLine() {
    if (state.allowed == null) return null;
    return h(
      'p',
      { id: 'webhook-limit', class: `small limit-line ${full() ? 'limit-full' : 'muted'}` },
      full()
        ? `All ${state.allowed} endpoints your account may have are in use: delete one to add another.`
        : `${state.hooks.length} of ${state.allowed} endpoints in use.`,
    );
  }

  function createForm() {
    const errors = state.formErrors;
    return h(
      'section',
      { class: 'panel', 'aria-labelledby': 'new-webhook-title' },
      h('h2', { id: 'new-webhook-title' }, 'Add an endpoint'),
      h('p', { class: 'muted' }, 'GPU Go POSTs a signed JSON body to this URL for each event you pick, and retries for a day until it answers 2xx.'),
      limitLine(),
      h(
        'form',
        { onsubmit: create, id: 'webhook-form', novalidate: true },
        field({
          id: 'webhook-url',
          label: 'URL',
          control: h('input', { name: 'url', type: 'url', required: true, placeholder: 'https://…/gpugo', autocomplete: 'off', spellcheck: 'false' }),
          hint: `An http:// or https:// URL of your receiver, up to ${MAX_URL} characters.`,
          error: errors.fields.url,
        }),
        field({
          id: 'webhook-description',
          label: 'Description (optional)',
          // No maxlength: a longer text pasted in is said to be too long, not cut silently.
          control: h('input', { name: 'description', type: 'text' }),
          hint: `Up to ${MAX_DESCRIPTION} characters, for you to tell endpoints apart.`,
          error: errors.fields.description,
        }),
        fieldset({
          id: 'webhook-events',
          legend: 'Events',
          hint: 'At least one.',
          error: errors.fields.events,
          children: EVENTS.map(([value, text]) =>
            h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'events', value, checked: value === 'agent.offline' }), ` ${text}`),
          ),
        }),
        errorBox(errors.message),
        h(
          'div',
          { class: 'actions' },
          h(
            'button',
            {
              type: 'submit',
              class: 'btn btn-primary',
              disabled: state.busy,
              // Full: the reason is said above the form before anything is filled in.
              'aria-disabled': full() ? 'true' : null,
              'aria-describedby': state.allowed != null ? 'webhook-limit' : null,
            },
            'Add endpoint',
          ),
        ),
      ),
    );
  }

  function hookRow(hook) {
    const selected = hook.id === state.selected;
    return h(
      'tr',
      { key: hook.id, 'data-webhook': hook.id, class: selected ? 'selected' : null },
      h(
        'td',
        { 'data-label': 'Endpoint' },
        h('code', {}, hook.url),
        hook.description ? h('div', { class: 'muted small' }, hook.description) : null,
      ),
      h('td', { 'data-label': 'Events' }, h('span', { class: 'small' }, hook.events.join(', '))),
      h(
        'td',
        { 'data-label': 'State' },
        h('span', { class: `tag ${hook.enabled ? '' : 'tag-muted'}`.trim() }, hook.enabled ? 'enabled' : 'disabled'),
        hook.disabledReason ? h('div', { class: 'small muted' }, hook.disabledReason) : null,
      ),
      h(
        'td',
        { class: 'row-actions' },
        h('button', { type: 'button', class: 'btn btn-small', 'aria-pressed': String(selected), onclick() { state.selected = hook.id; refresh(); } }, 'Deliveries'),
        h('button', { type: 'button', class: 'btn btn-small', disabled: !hook.enabled, onclick: () => act(() => gql(TEST, { id: hook.id }), 'Test ping queued.') }, 'Send test'),
        h('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: () => act(() => gql(UPDATE, { id: hook.id, input: { enabled: !hook.enabled } })) }, hook.enabled ? 'Disable' : 'Enable'),
        h('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: () => rotate(hook) }, 'Rotate secret'),
        h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', onclick: () => remove(hook), 'aria-label': `Delete ${hook.url}` }, 'Delete'),
      ),
    );
  }

  function deliveriesPanel() {
    const hook = state.hooks.find((w) => w.id === state.selected);
    if (!hook) return null;
    const rows = state.deliveries || [];
    return h(
      'section',
      { class: 'panel', 'aria-labelledby': 'deliveries-title' },
      h('h2', { id: 'deliveries-title' }, 'Recent deliveries'),
      h('p', { class: 'muted small' }, h('code', {}, hook.url)),
      rows.length
        ? h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              { class: 'table responsive', id: 'deliveries-table' },
              h('thead', {}, h('tr', {}, ['Event', 'Status', 'HTTP', 'Time', 'Attempts', 'Queued', ''].map((t) => h('th', { scope: 'col' }, t)))),
              h(
                'tbody',
                {},
                rows.map((d) =>
                  h(
                    'tr',
                    { key: d.id, 'data-delivery': d.id },
                    h('td', { 'data-label': 'Event' }, h('code', {}, d.eventType)),
                    h(
                      'td',
                      { 'data-label': 'Status' },
                      h('span', { class: `tag delivery-${d.status}` }, d.status),
                      d.error ? h('div', { class: 'small muted' }, d.error) : null,
                    ),
                    h('td', { 'data-label': 'HTTP' }, d.responseStatus == null ? '—' : String(d.responseStatus)),
                    h('td', { 'data-label': 'Time' }, d.durationMs == null ? '—' : `${d.durationMs} ms`),
                    h('td', { 'data-label': 'Attempts' }, String(d.attempts)),
                    h('td', { 'data-label': 'Queued' }, h('time', { datetime: d.queuedAt, title: dateTime(d.queuedAt) }, ago(d.queuedAt))),
                    h(
                      'td',
                      { class: 'row-actions' },
                      h('button', { type: 'button', class: 'btn btn-small', disabled: !hook.enabled, onclick: () => act(() => gql(REDELIVER, { id: d.id }), 'Queued again.') }, 'Redeliver'),
                    ),
                  ),
                ),
              ),
            ),
          )
        : h('p', { class: 'empty-inline', id: 'deliveries-empty' }, 'Nothing sent yet. Send a test to see one here.'),
    );
  }

  function draw() {
    render(
      root,
      h(
        'div',
        { class: 'notifications' },
        pageHeader('Notifications', { sub: h('p', { class: 'muted' }, 'Webhooks tell your own endpoint (a receiver, chat or pager) when machines go offline, workers fail or links run out.') }),
        state.fresh ? secretPanel() : null,
        errorBox(state.error),
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'webhooks-title' },
          h('h2', { id: 'webhooks-title' }, 'Endpoints'),
          state.loading
            ? skeleton(2)
            : state.hooks.length
              ? h(
                  'div',
                  { class: 'table-wrap' },
                  h(
                    'table',
                    { class: 'table responsive', id: 'webhooks-table' },
                    h('thead', {}, h('tr', {}, ['Endpoint', 'Events', 'State'].map((t) => h('th', { scope: 'col' }, t)), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
                    h('tbody', {}, state.hooks.map(hookRow)),
                  ),
                )
              : emptyState('No endpoints yet', 'Add one below to be told about your machines.'),
        ),
        deliveriesPanel(),
        createForm(),
      ),
    );
  }

  draw();
  refresh();
  // Deliveries change on their own (sent, retried): look again every few seconds.
  timer = setInterval(() => {
    if (!state.busy) refresh();
  }, 3000);
  return () => clearInterval(timer);
}
