// Overview: the plan and its usage, and every agent with its live status.

import { h, render } from '../dom.js';
import { ago, dateTime, plural, titleCase } from '../format.js';
import { gql } from '../gql.js';
import { watch } from '../live.js';
import { AGENT_EVENTS } from '../subs.js';
import { badge, emptyState, errorBox, link, meter, navigate, pageHeader, skeleton } from '../ui.js';
import { USER_FIELDS } from './auth.js';

const PAGE = 100;
const QUERY = `query Overview($first: Int!, $after: String) {
  me { ${USER_FIELDS} }
  agents(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id hostname os arch status statusReason lastSeenAt createdAt gpuCount
      configVersion fetchedConfigVersion
      workers { id status enabled }
    } }
  }
}`;

export function configState(agent) {
  if (agent.fetchedConfigVersion == null) return { key: 'never', text: 'Not fetched yet' };
  if (agent.fetchedConfigVersion >= agent.configVersion) return { key: 'synced', text: 'Up to date' };
  return { key: 'behind', text: `Update waiting (has v${agent.fetchedConfigVersion} of v${agent.configVersion})` };
}

export function mount({ root, app }) {
  const state = { loading: true, error: null, agents: [], total: 0, hasMore: false, pages: 1 };

  async function load() {
    let agents = [];
    let after = null;
    let total = 0;
    let hasMore = false;
    for (let page = 0; page < state.pages; page += 1) {
      const data = await gql(QUERY, { first: PAGE, after });
      app.me = data.me;
      agents = agents.concat(data.agents.edges.map((e) => e.node));
      total = data.agents.totalCount;
      hasMore = data.agents.pageInfo.hasNextPage;
      after = data.agents.pageInfo.endCursor;
      if (!hasMore) break;
    }
    Object.assign(state, { agents, total, hasMore, loading: false, error: null });
    draw();
  }

  async function refresh() {
    try {
      await load();
    } catch (error) {
      if (error.code === 'unauthorized') return;
      state.error = error.message;
      state.loading = false;
      draw();
    }
  }

  function planCard() {
    const me = app.me;
    const usage = me.usage;
    return h(
      'section',
      { class: 'panel plan', 'aria-labelledby': 'plan-title' },
      h(
        'div',
        { class: 'panel-head' },
        h('h2', { id: 'plan-title' }, 'Plan'),
        h('span', { class: `plan-badge plan-${me.plan.toLowerCase()}`, 'data-plan': me.plan }, titleCase(me.plan)),
      ),
      h(
        'div',
        { class: 'meters' },
        meter({ label: 'GPUs', used: usage.gpusUsed, allowed: usage.gpusAllowed }),
        meter({ label: 'Workers', used: usage.workersUsed, allowed: usage.workersAllowed }),
      ),
      h(
        'p',
        { class: 'muted small' },
        usage.metricsIncluded ? 'GPU metrics are included.' : 'GPU metrics come with the Team and Pro plans.',
      ),
    );
  }

  function agentRow(agent, now) {
    const running = agent.workers.filter((w) => w.status === 'RUNNING').length;
    const config = configState(agent);
    return h(
      'tr',
      { key: agent.id, 'data-agent': agent.id },
      h(
        'td',
        { 'data-label': 'Machine' },
        link(`/agents/${agent.id}`, { class: 'strong', title: agent.hostname }, agent.hostname),
        h('div', { class: 'muted small' }, `${agent.os}/${agent.arch}`),
      ),
      h(
        'td',
        { 'data-label': 'Status' },
        badge(agent.status),
        h('div', { class: 'muted small reason', title: agent.statusReason }, agent.statusReason),
      ),
      h('td', { 'data-label': 'GPUs', class: 'num' }, String(agent.gpuCount)),
      h('td', { 'data-label': 'Workers', class: 'num' }, `${running}/${agent.workers.length} running`),
      h(
        'td',
        { 'data-label': 'Last seen', class: 'num' },
        h('time', { datetime: agent.lastSeenAt || '', title: dateTime(agent.lastSeenAt) }, ago(agent.lastSeenAt, now)),
      ),
      h('td', { 'data-label': 'Config' }, h('span', { class: `sync sync-${config.key}`, title: config.text }, config.text)),
    );
  }

  function agentsCard() {
    const now = Date.now();
    let body;
    if (state.loading) body = skeleton(3, 'table-skeleton');
    else if (state.agents.length === 0)
      body = emptyState(
        'No GPU machines yet',
        'Add a machine: run one command on it and it appears here within seconds.',
        h('button', { type: 'button', class: 'btn btn-primary', onclick: () => navigate('/add') }, 'Add a GPU machine'),
      );
    else
      body = h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table responsive', id: 'agents-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Machine', 'Status', 'GPUs', 'Workers', 'Last seen', 'Config'].map((t) => h('th', { scope: 'col' }, t)),
            ),
          ),
          h('tbody', {}, state.agents.map((a) => agentRow(a, now))),
        ),
        state.hasMore
          ? h(
              'div',
              { class: 'actions' },
              h(
                'button',
                {
                  type: 'button',
                  class: 'btn',
                  onclick() {
                    state.pages += 1;
                    refresh();
                  },
                },
                `Show more (${state.agents.length} of ${state.total})`,
              ),
            )
          : null,
      );
    return h(
      'section',
      { class: 'panel', 'aria-labelledby': 'agents-title' },
      h(
        'div',
        { class: 'panel-head' },
        h('h2', { id: 'agents-title' }, 'GPU machines', state.loading ? null : h('span', { class: 'count' }, String(state.total))),
        state.agents.length
          ? h('button', { type: 'button', class: 'btn btn-primary', onclick: () => navigate('/add') }, 'Add a GPU machine')
          : null,
      ),
      errorBox(state.error),
      body,
    );
  }

  function summary() {
    const counts = { ONLINE: 0, OFFLINE: 0, PENDING: 0 };
    state.agents.forEach((a) => {
      counts[a.status] += 1;
    });
    return h(
      'p',
      { class: 'muted summary' },
      state.loading
        ? '\u00a0'
        : `${plural(state.total, 'machine')}: ${counts.ONLINE} online, ${counts.OFFLINE} offline, ${counts.PENDING} pending`,
    );
  }

  function draw() {
    render(
      root,
      h(
        'div',
        { class: 'overview' },
        pageHeader('Overview', { sub: summary() }),
        h('div', { class: 'grid-overview' }, planCard(), agentsCard()),
      ),
    );
  }

  draw();
  refresh();
  const stop = watch([{ query: AGENT_EVENTS }], refresh);
  const ticker = setInterval(draw, 5000); // "last seen" moves on
  return () => {
    stop();
    clearInterval(ticker);
  };
}
