// Settings: the account and its plan (with how plans change on this installation), the
// password, its personal access token (shown once at creation) and its signed-in sessions
// (end one, or all but this one).

import { h, render } from '../dom.js';
import { ago, dateTime, titleCase } from '../format.js';
import { focusFirstInvalid, noErrors, serverErrors } from '../forms.js';
import { gql } from '../gql.js';
import { confirmDialog, copyButton, errorBox, field, meter, pageHeader, skeleton, toast } from '../ui.js';

const QUERY = 'query Pat { personalAccessToken { exists expiresAt lastUsedAt createdAt } }';
const CREATE = `mutation CreatePat($days: Int) { createPersonalAccessToken(expiresInDays: $days) { token expiresAt createdAt } }`;
const DELETE = 'mutation DeletePat { deletePersonalAccessToken }';
const SESSIONS = 'query Sessions { sessions { id createdAt lastSeenAt address userAgent current } }';
const REVOKE = 'mutation RevokeSession($id: ID!) { revokeSession(id: $id) }';
const REVOKE_OTHERS = 'mutation RevokeOthers { revokeOtherSessions }';
const CHANGE_PASSWORD = 'mutation ChangePassword($input: ChangePasswordInput!) { changePassword(input: $input) }';
const MIN_PASSWORD = 8;

const EXPIRIES = [
  ['30', '30 days'],
  ['90', '90 days'],
  ['365', '1 year'],
  ['', 'No expiry'],
];

export function mount({ root, app }) {
  const state = {
    loading: true,
    pat: null,
    fresh: null,
    error: null,
    busy: false,
    sessions: null,
    password: { ...noErrors(), busy: false },
  };

  async function changePassword(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const current = form.current.value;
    const next = form.next.value;
    const fields = {};
    // Every problem at once, before anything is sent.
    if (!current) fields.currentPassword = 'Enter your current password.';
    if (next.length < MIN_PASSWORD) fields.newPassword = `Use at least ${MIN_PASSWORD} characters.`;
    else if (next !== form.repeat.value) fields.repeatPassword = 'The two new passwords differ.';
    state.password = { fields, message: null, busy: Object.keys(fields).length === 0 };
    draw();
    if (!state.password.busy) {
      focusFirstInvalid(form);
      return;
    }
    try {
      const ended = (await gql(CHANGE_PASSWORD, { input: { currentPassword: current, newPassword: next } })).changePassword;
      form.reset();
      state.password = { ...noErrors(), busy: false };
      toast(`Password changed. ${ended === 1 ? '1 other session' : `${ended} other sessions`} ended.`);
      await refresh();
      const heading = root.querySelector('#password-title');
      if (heading) heading.focus();
      return;
    } catch (error) {
      state.password = { ...serverErrors(error, { fields: ['currentPassword', 'newPassword'] }), busy: false };
    }
    draw();
    focusFirstInvalid(root.querySelector('#password-form'));
  }

  async function refresh() {
    try {
      state.pat = (await gql(QUERY)).personalAccessToken;
      state.sessions = (await gql(SESSIONS)).sessions;
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

  async function endSession(session) {
    const ok = await confirmDialog({
      title: 'End this session?',
      body: h('p', {}, `The browser at ${session.address || 'an unknown address'} is signed out at once.`),
      confirmLabel: 'End session',
    });
    if (!ok) return;
    try {
      await gql(REVOKE, { id: session.id });
      toast('Session ended.');
      await refresh();
    } catch (error) {
      toast(error.message, 'error');
    }
  }

  async function endOthers() {
    const ok = await confirmDialog({
      title: 'Log out everywhere else?',
      body: h('p', {}, 'Every other browser signed in to this account is signed out at once.'),
      confirmLabel: 'Log out everywhere else',
    });
    if (!ok) return;
    try {
      const ended = (await gql(REVOKE_OTHERS)).revokeOtherSessions;
      toast(ended === 1 ? '1 session ended.' : `${ended} sessions ended.`);
      await refresh();
    } catch (error) {
      toast(error.message, 'error');
    }
  }

  function passwordCard() {
    const errors = state.password;
    const input = (name, autocomplete) =>
      h('input', { name, type: 'password', autocomplete, required: true, maxlength: 1024 });
    return h(
      'section',
      { class: 'panel', 'aria-labelledby': 'password-title' },
      h('h2', { id: 'password-title', tabindex: '-1' }, 'Password'),
      h(
        'p',
        { class: 'muted' },
        'Changing it signs out every other browser signed in to this account; this one stays. The personal access token keeps working: regenerate it below if someone else may have it.',
      ),
      h(
        'form',
        { id: 'password-form', class: 'form', novalidate: true, onsubmit: changePassword },
        field({ id: 'password-current', label: 'Current password', control: input('current', 'current-password'), error: errors.fields.currentPassword }),
        field({
          id: 'password-new',
          label: 'New password',
          control: input('next', 'new-password'),
          hint: `At least ${MIN_PASSWORD} characters.`,
          error: errors.fields.newPassword,
        }),
        field({ id: 'password-repeat', label: 'New password again', control: input('repeat', 'new-password'), error: errors.fields.repeatPassword }),
        errorBox(errors.message),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn-primary', disabled: errors.busy }, 'Change password')),
      ),
    );
  }

  function planCard() {
    const me = app.me;
    const usage = me.usage;
    return h(
      'section',
      { class: 'panel', 'aria-labelledby': 'plan-title', id: 'plan' },
      h('h2', { id: 'plan-title' }, `Plan: ${titleCase(me.plan)}`),
      usage
        ? h(
            'div',
            { class: 'plan-meters' },
            meter({ label: 'GPUs (all machines)', used: usage.gpusUsed, allowed: usage.gpusAllowed }),
            meter({ label: 'Workers (all machines)', used: usage.workersUsed, allowed: usage.workersAllowed }),
            h('p', { class: 'small muted' }, usage.metricsIncluded ? 'Metrics charts are included.' : 'Metrics charts are not included in this plan.'),
          )
        : null,
      h(
        'p',
        { id: 'plan-change' },
        'Plans on this installation are set by whoever runs this GPU Go server; there is no payment here. Ask them to run ',
        h('code', {}, `gpugo user set-plan ${me.email} PLAN`),
        ' with PLAN one of free, personal, team or pro. Your machines pick up the new limits at once.',
      ),
    );
  }

  function sessionsCard() {
    const sessions = state.sessions || [];
    const others = sessions.filter((s) => !s.current).length;
    return h(
      'section',
      { class: 'panel', 'aria-labelledby': 'sessions-title' },
      h('h2', { id: 'sessions-title' }, 'Sessions'),
      h('p', { class: 'muted' }, 'Browsers signed in to this account. The activity page shows what each did.'),
      state.loading
        ? skeleton(2)
        : h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              { class: 'table responsive', id: 'sessions-table' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ['Browser', 'Address', 'Signed in', 'Last active'].map((t) => h('th', { scope: 'col' }, t)),
                  h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
                ),
              ),
              h(
                'tbody',
                {},
                sessions.map((s) =>
                  h(
                    'tr',
                    { key: s.id, 'data-session': s.id },
                    h(
                      'td',
                      { 'data-label': 'Browser' },
                      h('span', { class: 'one-line', title: s.userAgent || '' }, s.userAgent || 'Unknown'),
                      s.current ? h('span', { class: 'tag' }, 'this session') : null,
                    ),
                    h('td', { 'data-label': 'Address' }, h('code', {}, s.address || '—')),
                    h('td', { 'data-label': 'Signed in' }, dateTime(s.createdAt)),
                    h('td', { 'data-label': 'Last active' }, h('time', { datetime: s.lastSeenAt, title: dateTime(s.lastSeenAt) }, ago(s.lastSeenAt))),
                    h(
                      'td',
                      { class: 'row-actions' },
                      s.current
                        ? null
                        : h(
                            'button',
                            { type: 'button', class: 'btn btn-small btn-danger-ghost', onclick: () => endSession(s), 'aria-label': `End the session from ${s.address || 'an unknown address'}` },
                            'End',
                          ),
                    ),
                  ),
                ),
              ),
            ),
          ),
      others
        ? h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn btn-danger-ghost', onclick: endOthers }, 'Log out everywhere else'))
        : null,
    );
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
        planCard(),
        passwordCard(),
        patCard(),
        sessionsCard(),
      ),
    );
  }

  draw();
  refresh();
  return () => {};
}
