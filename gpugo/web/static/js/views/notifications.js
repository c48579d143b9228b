// Notifications: the user's webhook endpoints (create, test, enable, rotate, delete) and,
// for the one selected, its recent deliveries with status code and timing (redeliver one).

import { h, render } from '../dom.js';
import { ago, dateTime } from '../format.js';
import { gql } from '../gql.js';
import { confirmDialog, copyButton, emptyState, errorBox, field, pageHeader, skeleton, toast } from '../ui.js';

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
const LIST = `query Webhooks { webhooks { ${WEBHOOK} } }`;
const DELIVERIES = `query Deliveries($id: ID!) { webhook(id: $id) { id deliveries {
  id eventType status attempts responseStatus durationMs error queuedAt lastAttemptAt deliveredAt } } }`;
const CREATE = `mutation CreateWebhook($input: CreateWebhookInput!) { createWebhook(input: $input) { secret webhook { ${WEBHOOK} } } }`;
const UPDATE = `mutation UpdateWebhook($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { ${WEBHOOK} } }`;
const DELETE = 'mutation DeleteWebhook($id: ID!) { deleteWebhook(id: $id) }';
const TEST = 'mutation TestWebhook($id: ID!) { testWebhook(id: $id) { id } }';
const ROTATE = 'mutation RotateWebhookSecret($id: ID!) { rotateWebhookSecret(id: $id) { secret webhook { id } } }';
const REDELIVER = 'mutation Redeliver($id: ID!) { redeliverWebhookDelivery(id: $id) { id } }';

export function mount({ root }) {
  const state = { loading: true, hooks: [], selected: null, deliveries: null, fresh: null, error: null, formError: null, busy: false };
  let timer = null;

  async function refresh() {
    try {
      state.hooks = (await gql(LIST)).webhooks;
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

  async function create(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const events = EVENTS.map(([value]) => value).filter((value) => form.querySelector(`[value="${value}"]`).checked);
    state.busy = true;
    draw();
    try {
      const input = { url: form.url.value.trim(), events, description: form.description.value.trim() };
      const created = (await gql(CREATE, { input })).createWebhook;
      state.fresh = { id: created.webhook.id, secret: created.secret };
      state.selected = created.webhook.id;
      state.formError = null;
      form.reset();
      toast('Endpoint added. Copy its signing secret now.');
    } catch (error) {
      state.formError = error.message;
    }
    state.busy = false;
    await refresh();
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

  function createForm() {
    return h(
      'section',
      { class: 'panel', 'aria-labelledby': 'new-webhook-title' },
      h('h2', { id: 'new-webhook-title' }, 'Add an endpoint'),
      h('p', { class: 'muted' }, 'GPU Go POSTs a signed JSON body to this URL for each event you pick, and retries for a day until it answers 2xx.'),
      h(
        'form',
        { onsubmit: create, id: 'webhook-form' },
        field({ id: 'webhook-url', label: 'URL', control: h('input', { name: 'url', type: 'url', required: true, placeholder: 'https://…/gpugo' }) }),
        field({ id: 'webhook-description', label: 'Description (optional)', control: h('input', { name: 'description', type: 'text', maxlength: 200 }) }),
        h(
          'fieldset',
          { class: 'field' },
          h('legend', {}, 'Events'),
          h(
            'div',
            { class: 'checks' },
            EVENTS.map(([value, text]) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'events', value, checked: value === 'agent.offline' }), ` ${text}`)),
          ),
        ),
        errorBox(state.formError),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn-primary', disabled: state.busy }, 'Add endpoint')),
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
