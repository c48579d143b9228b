// Activity: the account's security log (sign-ins, tokens, machines, share links), newest
// first, filtered by kind. No subscription streams audit events, so the first page is
// re-read every few seconds while the page is visible.

import { h, render } from '../dom.js';
import { ago, dateTime, plural } from '../format.js';
import { gql } from '../gql.js';
import { emptyState, errorBox, field, pageHeader, skeleton } from '../ui.js';

const PAGE = 50;
const POLL_MS = 3000;
const FIELDS = 'id at kind actor address userAgent subjectKind subjectId outcome detail';
const QUERY = `query Activity($first: Int!, $after: String, $kind: String) {
  auditEvents(first: $first, after: $after, kind: $kind) {
    edges { node { ${FIELDS} } } pageInfo { hasNextPage endCursor } totalCount
  }
}`;

// Every kind the server records (docs/audit.md), in the words the page uses.
export const KINDS = [
  ['signup', 'Account created'],
  ['login.succeeded', 'Signed in'],
  ['login.failed', 'Sign-in failed'],
  ['logout', 'Signed out'],
  ['session.expired', 'Session expired'],
  ['session.revoked', 'Session ended'],
  ['pat.created', 'Token created'],
  ['pat.regenerated', 'Token regenerated'],
  ['pat.deleted', 'Token deleted'],
  ['pat.new_address', 'Token used from a new address'],
  ['install_token.created', 'Install token created'],
  ['install_token.used', 'Install token used'],
  ['install_token.expired', 'Install token expired unused'],
  ['agent.registered', 'Machine registered'],
  ['agent.deleted', 'Machine deleted'],
  ['agent.unregistered', 'Machine unregistered itself'],
  ['agent_secret.refused', 'Machine secret refused'],
  ['share.created', 'Share link created'],
  ['share.deleted', 'Share link deleted'],
  ['share.used_up', 'Share link used up'],
  ['plan.changed', 'Plan changed'],
  ['rate_limited', 'Too many attempts'],
];
const LABELS = new Map(KINDS);

const ACTORS = {
  user: 'you (browser)',
  pat: 'your token',
  agent: 'a machine',
  install_token: 'an install token',
  operator: 'the operator',
  anonymous: 'sign-in or link',
  system: 'the server',
};

export function mount({ root }) {
  const state = { loading: true, events: [], total: 0, next: null, kind: '', error: null, more: false };

  async function load({ append = false } = {}) {
    try {
      const variables = { first: PAGE, kind: state.kind || null, after: append ? state.next : null };
      const page = (await gql(QUERY, variables)).auditEvents;
      const nodes = page.edges.map((e) => e.node);
      if (append) state.events = state.events.concat(nodes);
      else if (!state.more) state.events = nodes;
      else {
        // Keep the pages already loaded below; put what is new on top.
        const known = new Set(state.events.map((e) => e.id));
        state.events = nodes.filter((e) => !known.has(e.id)).concat(state.events);
      }
      if (append || !state.more) state.next = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      state.more = state.more || append;
      state.total = page.totalCount;
      state.error = null;
    } catch (error) {
      if (error.code === 'unauthorized') return;
      state.error = error.message;
    }
    state.loading = false;
    draw();
  }

  function filter(event) {
    state.kind = event.currentTarget.value;
    state.loading = true;
    state.more = false;
    state.next = null;
    draw();
    load();
  }

  function row(event, now) {
    const failed = event.outcome === 'failure';
    const subject = event.subjectKind ? `${event.subjectKind} ${event.subjectId}` : '';
    return h(
      'tr',
      { key: event.id, 'data-event': event.id, 'data-kind': event.kind },
      h('td', { 'data-label': 'When' }, h('time', { datetime: event.at, title: dateTime(event.at) }, ago(event.at, now))),
      h(
        'td',
        { 'data-label': 'What' },
        h('span', { class: 'strong' }, LABELS.get(event.kind) || event.kind),
        failed ? h('span', { class: 'tag tag-danger' }, 'failed') : null,
        event.detail ? h('div', { class: 'muted small' }, event.detail) : null,
      ),
      h('td', { 'data-label': 'By' }, ACTORS[event.actor] || event.actor),
      h(
        'td',
        { 'data-label': 'From' },
        h('code', {}, event.address || '—'),
        event.userAgent ? h('div', { class: 'muted small one-line', title: event.userAgent }, event.userAgent) : null,
      ),
      h('td', { 'data-label': 'On' }, subject ? h('code', { class: 'small', title: subject }, subject) : '—'),
    );
  }

  function table() {
    const now = Date.now();
    return h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'table responsive', id: 'activity-table' },
        h('thead', {}, h('tr', {}, ['When', 'What', 'By', 'From', 'On'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, state.events.map((event) => row(event, now))),
      ),
    );
  }

  function draw() {
    let body;
    if (state.loading) body = skeleton(4);
    else if (!state.events.length)
      body = emptyState('Nothing here yet', state.kind ? 'No event of this kind.' : 'Sign-ins, tokens, machines and share links appear here.');
    else body = table();
    render(
      root,
      h(
        'div',
        { class: 'activity' },
        pageHeader('Activity', { sub: 'Who did what with your account, and from where. Kept for 90 days by default.' }),
        errorBox(state.error),
        h(
          'div',
          { class: 'form-row align-end' },
          field({
            id: 'activity-kind',
            label: 'Show',
            className: 'narrow',
            control: h(
              'select',
              { name: 'kind', onchange: filter },
              h('option', { value: '', selected: state.kind === '' }, 'Everything'),
              KINDS.map(([value, text]) => h('option', { value, selected: state.kind === value }, text)),
            ),
          }),
          h('p', { class: 'muted small', id: 'activity-count' }, state.loading ? '' : plural(state.total, 'event')),
        ),
        h('section', { class: 'panel', 'aria-label': 'Events', 'aria-busy': state.loading ? 'true' : 'false' }, body),
        state.next
          ? h('button', { type: 'button', class: 'btn', onclick: () => load({ append: true }) }, 'Show older events')
          : null,
      ),
    );
  }

  draw();
  load();
  const ticker = setInterval(() => {
    if (document.visibilityState === 'visible' && !state.loading) load();
  }, POLL_MS);
  return () => clearInterval(ticker);
}
