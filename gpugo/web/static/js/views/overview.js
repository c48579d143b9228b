// Overview: the fleet at a glance (machines by state, GPUs in use, utilisation), the
// plan, and the machines: searched, filtered by state, sorted and paged on the server,
// so a fleet of a thousand machines costs one page of rows.

import { h, render } from '../dom.js';
import { ago, dateTime, plural, titleCase, vram } from '../format.js';
import { gql } from '../gql.js';
import { editLabels } from '../labels.js';
import { watch } from '../live.js';
import { AGENT_EVENTS } from '../subs.js';
import { badge, emptyState, errorBox, field, link, meter, navigate, pageHeader, skeleton } from '../ui.js';
import { USER_FIELDS } from './auth.js';

const PAGE = 50;
const SEARCH_DELAY_MS = 200;
const QUERY = `query Overview($search: String!, $state: FleetState, $sort: FleetSort!, $first: Int!, $offset: Int!) {
  me { ${USER_FIELDS} }
  fleet(search: $search, state: $state, sort: $sort, first: $first, offset: $offset) {
    summary { machines online offline pending gpusTotal gpusInUse gpusIdle gpusUnreachable
      gpuModels { model count } metricsIncluded utilization vramUsedMb vramTotalMb tags }
    matching
    machines {
      name displayName tags gpusInUse workersRunning workersTotal lastKnownAt utilization
      temperature vramUsedMb vramTotalMb
      agent { id hostname os arch status statusReason lastSeenAt createdAt gpuCount
        configVersion fetchedConfigVersion }
    }
  }
}`;
const SORTS = [
  ['NAME', 'Name'],
  ['STATUS', 'Status (problems first)'],
  ['GPUS', 'Most GPUs'],
  ['UTILIZATION', 'Busiest'],
  ['LAST_SEEN', 'Longest silent'],
  ['NEWEST', 'Newest'],
];
const STATES = [
  [null, 'All', 'machines'],
  ['ONLINE', 'Online', 'online'],
  ['OFFLINE', 'Offline', 'offline'],
  ['PENDING', 'Pending', 'pending'],
];

export function configState(agent) {
  if (agent.fetchedConfigVersion == null) return { key: 'never', text: 'Not fetched yet' };
  if (agent.fetchedConfigVersion >= agent.configVersion) return { key: 'synced', text: 'Up to date' };
  return { key: 'behind', text: `Update waiting (has v${agent.fetchedConfigVersion} of v${agent.configVersion})` };
}

export function mount({ root, query, app }) {
  const sortParam = query.get('sort');
  const stateParam = query.get('state');
  const state = {
    loading: true,
    error: null,
    machines: [],
    summary: null,
    matching: 0,
    search: query.get('q') || '',
    filter: STATES.some(([s]) => s === stateParam) ? stateParam : null,
    sort: SORTS.some(([s]) => s === sortParam) ? sortParam : 'NAME',
    offset: 0,
  };
  let sequence = 0;
  let searchTimer = null;

  async function load() {
    const mine = ++sequence;
    const data = await gql(QUERY, {
      search: state.search,
      state: state.filter,
      sort: state.sort,
      first: PAGE,
      offset: state.offset,
    });
    if (mine !== sequence) return; // a later request (another filter) answers instead
    app.me = data.me;
    const fleet = data.fleet;
    // The page emptied under us (machines deleted): show the last one that has rows.
    if (!fleet.machines.length && state.offset > 0 && fleet.matching > 0) {
      state.offset = Math.max(0, Math.floor((fleet.matching - 1) / PAGE) * PAGE);
      await load();
      return;
    }
    Object.assign(state, {
      machines: fleet.machines,
      summary: fleet.summary,
      matching: fleet.matching,
      loading: false,
      error: null,
    });
    draw();
    root.dispatchEvent(new CustomEvent('fleet-drawn'));
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

  function remember() {
    // The choice survives a reload and can be linked to (#/?state=OFFLINE&sort=STATUS).
    const params = new URLSearchParams();
    if (state.search) params.set('q', state.search);
    if (state.filter) params.set('state', state.filter);
    if (state.sort !== 'NAME') params.set('sort', state.sort);
    const text = params.toString();
    history.replaceState(null, '', `#/${text ? `?${text}` : ''}`);
  }

  function choose(changes) {
    Object.assign(state, changes, { offset: 0 });
    remember();
    // At once, without redrawing the rows the answer replaces: the pressed filter, the
    // search box (a typed value lives in the property, which a re-render leaves alone).
    for (const button of root.querySelectorAll('.state-filter')) {
      button.setAttribute('aria-pressed', String(button.dataset.state === (state.filter || 'ALL')));
    }
    const input = root.querySelector('#fleet-search');
    if (input && 'search' in changes && input.value.trim() !== state.search) input.value = state.search;
    refresh();
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

  function fleetSummary() {
    const sum = state.summary;
    if (!sum) return h('section', { class: 'panel fleet-summary', 'aria-label': 'Fleet' }, skeleton(2));
    const counts = { null: sum.machines, ONLINE: sum.online, OFFLINE: sum.offline, PENDING: sum.pending };
    const models = sum.gpuModels.slice(0, 4).map((m) => `${m.count} × ${m.model}`);
    if (sum.gpuModels.length > 4) models.push(`${sum.gpuModels.length - 4} more models`);
    return h(
      'section',
      { class: 'panel fleet-summary', 'aria-labelledby': 'fleet-title' },
      h('h2', { id: 'fleet-title', class: 'visually-hidden' }, 'Fleet'),
      h(
        'div',
        { class: 'state-filters', role: 'group', 'aria-label': 'Show machines by state' },
        STATES.map(([key, label, cls]) =>
          h(
            'button',
            {
              type: 'button',
              class: `state-filter state-${cls}`,
              'aria-pressed': String(state.filter === key),
              'data-state': key || 'ALL',
              onclick: () => choose({ filter: key }),
            },
            h('span', { class: 'state-count num' }, String(counts[key])),
            h('span', { class: 'state-label' }, label),
          ),
        ),
      ),
      h(
        'dl',
        { class: 'fleet-stats' },
        h('div', {}, h('dt', {}, 'GPUs'), h('dd', { id: 'fleet-gpus' }, `${sum.gpusTotal} total · ${sum.gpusInUse} in use · ${sum.gpusIdle} idle`, sum.gpusUnreachable ? ` · ${sum.gpusUnreachable} on machines offline or pending` : '')),
        sum.metricsIncluded
          ? [
              h(
                'div',
                {},
                h('dt', {}, 'Utilisation'),
                h('dd', { id: 'fleet-utilization' }, sum.utilization == null ? 'No readings yet' : `${Math.round(sum.utilization)} %`),
              ),
              h(
                'div',
                {},
                h('dt', {}, 'GPU memory'),
                h('dd', {}, sum.vramTotalMb ? `${vram(sum.vramUsedMb)} of ${vram(sum.vramTotalMb)}` : 'No readings yet'),
              ),
            ]
          : null,
        h('div', { class: 'fleet-models' }, h('dt', {}, 'Models'), h('dd', {}, models.length ? models.join(', ') : 'None yet')),
      ),
    );
  }

  function toolbar() {
    return h(
      'div',
      { class: 'fleet-toolbar' },
      field({
        id: 'fleet-search',
        label: 'Search',
        className: 'fleet-search',
        control: h('input', {
          type: 'search',
          name: 'search',
          value: state.search,
          placeholder: 'Name, host, IP or tag',
          autocomplete: 'off',
          spellcheck: 'false',
          oninput(event) {
            const value = event.currentTarget.value;
            clearTimeout(searchTimer);
            searchTimer = setTimeout(() => {
              if (value.trim() !== state.search) choose({ search: value.trim() });
            }, SEARCH_DELAY_MS);
          },
        }),
      }),
      field({
        id: 'fleet-sort',
        label: 'Sort by',
        className: 'fleet-sort',
        control: h(
          'select',
          { name: 'sort', onchange: (event) => choose({ sort: event.currentTarget.value }) },
          SORTS.map(([value, label]) => h('option', { value, selected: value === state.sort }, label)),
        ),
      }),
    );
  }

  function readingCell(machine) {
    if (machine.utilization == null)
      return h('td', { 'data-label': 'Load', class: 'num reading muted' }, machine.agent.status === 'ONLINE' ? 'No readings' : '—');
    return h(
      'td',
      { 'data-label': 'Load', class: 'num reading' },
      h('meter', { min: 0, max: 100, low: 50, high: 90, optimum: 40, value: machine.utilization, 'aria-label': 'GPU utilisation' }),
      h('span', { class: 'util' }, `${Math.round(machine.utilization)} %`),
      h('span', { class: 'temp', title: 'Hottest GPU' }, `${machine.temperature} °C`),
    );
  }

  /** A number the machine reported: once it is offline, greyed and marked as last known. */
  function reportedCell(machine, label, text, title) {
    if (!machine.lastKnownAt) return h('td', { 'data-label': label, class: 'num', title }, text);
    return h(
      'td',
      { 'data-label': label, class: 'num last-known', title: `Last known, ${dateTime(machine.lastKnownAt)}` },
      text,
      h('span', { class: 'small' }, '(last known)'),
    );
  }

  function machineRow(machine, now) {
    const agent = machine.agent;
    const config = configState(agent);
    const metrics = state.summary && state.summary.metricsIncluded;
    return h(
      'tr',
      { key: agent.id, 'data-agent': agent.id, class: `machine-${agent.status.toLowerCase()}` },
      h(
        'td',
        { 'data-label': 'Machine', class: 'machine-cell' },
        h(
          'div',
          { class: 'machine-name' },
          link(`/agents/${agent.id}`, { class: 'strong', title: agent.hostname }, machine.name),
          h(
            'button',
            {
              type: 'button',
              class: 'btn-icon',
              'aria-label': `Edit name and tags of ${agent.hostname}`,
              title: 'Edit name and tags',
              onclick: () =>
                editLabels({
                  agent,
                  displayName: machine.displayName,
                  tags: machine.tags,
                  opener: () => root.querySelector(`tr[data-agent="${agent.id}"] .btn-icon`),
                  onSaved: () => refresh(),
                }),
            },
            '✎',
          ),
        ),
        h(
          'div',
          { class: 'muted small machine-sub' },
          machine.displayName ? `${agent.hostname} · ` : '',
          `${agent.os}/${agent.arch}`,
          machine.tags.map((tag) =>
            h(
              'button',
              { type: 'button', class: 'tag tag-filter', title: `Show machines tagged ${tag}`, onclick: () => choose({ search: tag }) },
              tag,
            ),
          ),
        ),
      ),
      h(
        'td',
        { 'data-label': 'Status', class: 'status-cell' },
        badge(agent.status),
        h('div', { class: 'muted small reason', title: agent.statusReason }, agent.statusReason),
      ),
      reportedCell(machine, 'GPUs in use', `${machine.gpusInUse}/${agent.gpuCount}`, `${machine.gpusInUse} of ${agent.gpuCount} GPUs in use`),
      metrics ? readingCell(machine) : null,
      reportedCell(machine, 'Workers', `${machine.workersRunning}/${machine.workersTotal} running`),
      h(
        'td',
        { 'data-label': 'Last seen', class: 'num' },
        h('time', { datetime: agent.lastSeenAt || '', title: dateTime(agent.lastSeenAt) }, ago(agent.lastSeenAt, now)),
      ),
      h('td', { 'data-label': 'Config', class: 'config-cell' }, h('span', { class: `sync sync-${config.key}`, title: config.text }, config.text)),
    );
  }

  function pager() {
    if (state.matching <= PAGE) return null;
    const from = state.offset + 1;
    const to = Math.min(state.offset + PAGE, state.matching);
    const go = (offset) => {
      state.offset = offset;
      refresh();
    };
    return h(
      'nav',
      { class: 'pager', 'aria-label': 'Pages of machines' },
      h('button', { type: 'button', class: 'btn btn-small', disabled: state.offset === 0, onclick: () => go(Math.max(0, state.offset - PAGE)) }, 'Previous'),
      h('span', { class: 'muted', 'aria-live': 'polite', id: 'fleet-range' }, `${from}–${to} of ${state.matching}`),
      h('button', { type: 'button', class: 'btn btn-small', disabled: to >= state.matching, onclick: () => go(state.offset + PAGE) }, 'Next'),
    );
  }

  function machinesCard() {
    const now = Date.now();
    const metrics = state.summary && state.summary.metricsIncluded;
    let body;
    if (state.loading) body = skeleton(3, 'table-skeleton');
    else if (state.summary.machines === 0)
      body = emptyState(
        'No GPU machines yet',
        'Add a machine: run one command on it and it appears here within seconds.',
        h('button', { type: 'button', class: 'btn btn-primary', onclick: () => navigate('/add') }, 'Add a GPU machine'),
      );
    else if (state.machines.length === 0)
      body = emptyState(
        'No machine matches',
        state.search ? `Nothing matches “${state.search}”${state.filter ? ` among ${state.filter.toLowerCase()} machines` : ''}.` : `No ${String(state.filter).toLowerCase()} machines.`,
        h('button', { type: 'button', class: 'btn', onclick: () => choose({ search: '', filter: null }) }, 'Show all machines'),
      );
    else
      body = h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table responsive fleet-table', id: 'agents-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              [
                ['machine', 'Machine'],
                ['status', 'Status'],
                ['gpus', 'GPUs used'],
                metrics ? ['load', 'Load'] : null,
                ['workers', 'Workers'],
                ['seen', 'Last seen'],
                ['config', 'Config'],
              ]
                .filter(Boolean)
                .map(([key, text]) => h('th', { scope: 'col', class: `col-${key}` }, text)),
            ),
          ),
          h('tbody', {}, state.machines.map((m) => machineRow(m, now))),
        ),
        pager(),
      );
    return h(
      'section',
      { class: 'panel', 'aria-labelledby': 'agents-title' },
      h(
        'div',
        { class: 'panel-head' },
        h(
          'h2',
          { id: 'agents-title' },
          'GPU machines',
          state.loading ? null : h('span', { class: 'count', id: 'fleet-matching' }, String(state.matching)),
        ),
        state.summary && state.summary.machines
          ? h('button', { type: 'button', class: 'btn btn-primary', onclick: () => navigate('/add') }, 'Add a GPU machine')
          : null,
      ),
      state.summary && state.summary.machines ? toolbar() : null,
      errorBox(state.error),
      body,
    );
  }

  function summaryLine() {
    const sum = state.summary;
    return h(
      'p',
      { class: 'muted summary' },
      !sum ? '\u00a0' : `${plural(sum.machines, 'machine')}: ${sum.online} online, ${sum.offline} offline, ${sum.pending} pending`,
    );
  }

  function draw() {
    render(
      root,
      h(
        'div',
        { class: 'overview' },
        pageHeader('Overview', { sub: summaryLine() }),
        // With machines: the fleet and the plan on top, the machines the full width below.
        state.summary && state.summary.machines
          ? [h('div', { class: 'fleet-top' }, fleetSummary(), planCard()), machinesCard()]
          : h('div', { class: 'grid-overview' }, planCard(), machinesCard()),
      ),
    );
  }

  draw();
  refresh();
  const stop = watch([{ query: AGENT_EVENTS }], refresh, { everyMs: 30000 });
  const ticker = setInterval(draw, 5000); // "last seen" moves on
  return () => {
    stop();
    clearInterval(ticker);
    clearTimeout(searchTimer);
  };
}
