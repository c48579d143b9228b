// Settings: the account and its personal access token (shown once at creation).

import { h, render } from '../dom.js';
import { ago, dateTime, titleCase } from '../format.js';
import { gql } from '../gql.js';
import { confirmDialog, copyButton, errorBox, field, pageHeader, skeleton, toast } from '../ui.js';

const QUERY = 'query Pat { personalAccessToken { exists expiresAt lastUsedAt createdAt } }';
const CREATE = `mutation CreatePat($days: Int) { createPersonalAccessToken(expiresInDays: $days) { token expiresAt createdAt } }`;
const DELETE = 'mutation DeletePat { deletePersonalAccessToken }';

const EXPIRIES = [
  ['30', '30 days'],
  ['90', '90 days'],
  ['365', '1 year'],
  ['', 'No expiry'],
];

export function mount({ root, app }) {
  const state = { loading: true, pat: null, fresh: null, error: null, busy: false };

  async function refresh() {
    try {
      state.pat = (await gql(QUERY)).personalAccessToken;
      state.error = null;
    } catch (error) {
      if (error.code === 'unauthorized') return;
      state.error = error.message;
    }
    state.loading = false;
    draw();
  }

  async function create(event) {
    event.preventDefault();
    const days = event.currentTarget.expiry.value;
    if (state.pat && state.pat.exists) {
      const ok = await confirmDialog({
        title: 'Regenerate the token?',
        body: h('p', {}, 'The current token stops working at once. Anything that uses it needs the new one.'),
        confirmLabel: 'Regenerate',
      });
      if (!ok) return;
    }
    state.busy = true;
    draw();
    try {
      const data = await gql(CREATE, { days: days === '' ? null : Number(days) });
      state.fresh = data.createPersonalAccessToken;
      toast('Token created. Copy it now.');
      await refresh();
      const input = root.querySelector('#pat-value');
      if (input) {
        input.focus();
        input.select();
      }
    } catch (error) {
      state.error = error.message;
    }
    state.busy = false;
    draw();
  }

  async function remove() {
    const ok = await confirmDialog({
      title: 'Delete the token?',
      body: h('p', {}, 'Scripts and CLIs that use it stop working at once.'),
      confirmLabel: 'Delete token',
    });
    if (!ok) return;
    try {
      await gql(DELETE);
      state.fresh = null;
      toast('Token deleted.');
      await refresh();
    } catch (error) {
      toast(error.message, 'error');
    }
  }

  function freshPanel() {
    const token = state.fresh.token;
    return h(
      'div',
      { class: 'notice notice-warning fresh-token', role: 'status', key: `fresh-${state.fresh.createdAt}` },
      h('p', {}, h('strong', {}, 'Copy your token now. '), 'It is shown only this once; it cannot be seen again later.'),
      h(
        'div',
        { class: 'copy-row' },
        h('label', { for: 'pat-value', class: 'visually-hidden' }, 'Your new token'),
        h('input', { id: 'pat-value', class: 'mono', type: 'text', readonly: true, value: token, spellcheck: 'false' }),
        copyButton(token, 'Copy', { id: 'copy-pat', 'aria-label': 'Copy token' }),
      ),
      h(
        'p',
        { class: 'small muted' },
        'Use it as ',
        h('code', {}, 'Authorization: Bearer <token>'),
        ' with the REST API or GraphQL.',
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'btn btn-small',
          onclick() {
            state.fresh = null;
            draw();
          },
        },
        'Done, I have copied it',
      ),
    );
  }

  function patCard() {
    const pat = state.pat;
    const exists = pat && pat.exists;
    return h(
      'section',
      { class: 'panel', 'aria-labelledby': 'pat-title' },
      h('h2', { id: 'pat-title' }, 'Personal access token'),
      h(
        'p',
        { class: 'muted' },
        'One token for scripts and the GPU Go CLI; it acts as you. Regenerating it replaces the old one.',
      ),
      state.fresh ? freshPanel() : null,
      state.loading
        ? skeleton(2)
        : exists
          ? h(
              'dl',
              { class: 'facts-grid', id: 'pat-info' },
              h('div', {}, h('dt', {}, 'Created'), h('dd', {}, dateTime(pat.createdAt))),
              h('div', {}, h('dt', {}, 'Expires'), h('dd', {}, pat.expiresAt ? dateTime(pat.expiresAt) : 'Never')),
              h(
                'div',
                {},
                h('dt', {}, 'Last used'),
                h('dd', { id: 'pat-last-used' }, pat.lastUsedAt ? h('time', { datetime: pat.lastUsedAt, title: dateTime(pat.lastUsedAt) }, ago(pat.lastUsedAt)) : 'Never'),
              ),
            )
          : h('p', { id: 'pat-info', class: 'empty-inline' }, 'You have no token.'),
      errorBox(state.error),
      h(
        'form',
        { class: 'form-row align-end', onsubmit: create },
        field({
          id: 'pat-expiry',
          label: 'Valid for',
          className: 'narrow',
          control: h(
            'select',
            { name: 'expiry' },
            EXPIRIES.map(([value, text]) => h('option', { value, selected: value === '90' }, text)),
          ),
        }),
        h(
          'div',
          { class: 'actions' },
          h('button', { type: 'submit', class: 'btn btn-primary', disabled: state.busy || state.loading }, exists ? 'Regenerate token' : 'Create token'),
          exists ? h('button', { type: 'button', class: 'btn btn-danger-ghost', onclick: remove }, 'Delete token') : null,
        ),
      ),
    );
  }

  function draw() {
    const me = app.me;
    render(
      root,
      h(
        'div',
        { class: 'settings' },
        pageHeader('Settings'),
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'account-title' },
          h('h2', { id: 'account-title' }, 'Account'),
          h(
            'dl',
            { class: 'facts-grid' },
            h('div', {}, h('dt', {}, 'E-mail'), h('dd', {}, me.email)),
            h('div', {}, h('dt', {}, 'Plan'), h('dd', {}, titleCase(me.plan))),
            h('div', {}, h('dt', {}, 'Member since'), h('dd', {}, dateTime(me.createdAt))),
          ),
        ),
        patCard(),
      ),
    );
  }

  draw();
  refresh();
  return () => {};
}
