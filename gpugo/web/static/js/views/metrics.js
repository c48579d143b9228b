// Metrics of one machine: GPU utilisation, VRAM and temperature per GPU over a chosen
// range, redrawn when the agent reports new samples. Plans without metrics see what
// they would get instead.

import { drawChart } from '../chart.js';
import { h, render } from '../dom.js';
import { ago, titleCase, vram } from '../format.js';
import { gql } from '../gql.js';
import { watch } from '../live.js';
import { AGENT_EVENTS, AGENT_METRICS } from '../subs.js';
import { badge, emptyState, errorBox, link, pageHeader, skeleton } from '../ui.js';
import { USER_FIELDS } from './auth.js';
import { agentTabs } from './agent.js';

const RANGES = [
  { key: '15m', label: 'Last 15 minutes', seconds: 900, bucket: 15 },
  { key: '1h', label: 'Last hour', seconds: 3600, bucket: 60 },
  { key: '6h', label: 'Last 6 hours', seconds: 6 * 3600, bucket: 300 },
  { key: '24h', label: 'Last 24 hours', seconds: 86400, bucket: 900 },
  { key: '7d', label: 'Last 7 days', seconds: 7 * 86400, bucket: 3600 },
  { key: 'custom', label: 'Custom range…' },
];
// Bucket widths for a custom range: the first that keeps it within about 200 buckets.
const BUCKETS = [15, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400];
const MAX_BUCKETS = 1000;

const AGENT = `query MetricsAgent($id: ID!) {
  me { ${USER_FIELDS} }
  agent(id: $id) { id hostname status lastSeenAt gpus { gpuId model vramMb } workers { id name } }
}`;
const METRICS = `query Metrics($agentId: ID!, $from: DateTime!, $to: DateTime!, $bucket: Int!) {
  agentMetrics(agentId: $agentId, from: $from, to: $to, bucket: $bucket) {
    from to bucketSeconds
    gpus { gpuId columns { at samples utilizationAvg vramUsedMbAvg vramTotalMb temperatureAvg temperatureMax powerUsageWAvg } }
    systemColumns { at samples cpuUsageAvg memoryUsedMbAvg memoryTotalMb }
    workers { workerId columns { at samples runningSamples connectionsAvg connectionsMax restartsMax } }
  }
}`;

// Each series comes as columns: one array per value (`at` in epoch ms), entry i of each
// is bucket i. value: (columns, i) -> the number drawn for bucket i.
// y: options for the axis, or a function of (GPU series from the server, the agent's
// GPUs, the host's columns).
const CHARTS = [
  {
    key: 'utilization',
    title: 'GPU utilisation',
    value: (c, i) => c.utilizationAvg[i],
    format: (v, axis) => `${axis ? Math.round(v) : Math.round(v * 10) / 10} %`,
    y: () => ({ fixed: [0, 100] }),
  },
  {
    key: 'vram',
    title: 'VRAM used',
    // In GB (1024 MB), against the largest card's total.
    value: (c, i) => c.vramUsedMbAvg[i] / 1024,
    format: (v, axis) => (axis ? `${Number(v.toFixed(1))} GB` : vram(Math.round(v * 1024))),
    y: (series, gpus) => {
      const totals = series.flatMap((g) => g.columns.vramTotalMb);
      const known = totals.length ? totals : gpus.map((g) => g.vramMb);
      return known.length ? { fixed: [0, Math.max(...known) / 1024] } : { floor: 0 };
    },
  },
  {
    key: 'temperature',
    title: 'Temperature',
    value: (c, i) => c.temperatureAvg[i],
    format: (v) => `${Math.round(v)} °C`,
    y: () => ({ minStep: 1, empty: [20, 100] }),
  },
  {
    key: 'power',
    title: 'GPU power',
    value: (c, i) => c.powerUsageWAvg[i],
    format: (v) => `${Math.round(v)} W`,
    y: () => ({ floor: 0, empty: [0, 400] }),
  },
  {
    key: 'cpu',
    title: 'Host CPU',
    source: 'system',
    value: (c, i) => c.cpuUsageAvg[i],
    format: (v, axis) => `${axis ? Math.round(v) : Math.round(v * 10) / 10} %`,
    y: () => ({ fixed: [0, 100] }),
  },
  {
    key: 'memory',
    title: 'Host memory used',
    source: 'system',
    value: (c, i) => c.memoryUsedMbAvg[i] / 1024,
    format: (v, axis) => (axis ? `${Number(v.toFixed(1))} GB` : vram(Math.round(v * 1024))),
    y: (series, gpus, system) => {
      const totals = system ? system.memoryTotalMb : [];
      return totals.length ? { fixed: [0, Math.max(...totals) / 1024] } : { floor: 0 };
    },
  },
  {
    key: 'clients',
    title: 'Clients per worker',
    source: 'workers',
    value: (c, i) => c.connectionsAvg[i],
    format: (v, axis) => (axis ? `${Math.round(v)}` : `${Math.round(v * 10) / 10} clients`),
    y: () => ({ floor: 0, minStep: 1, empty: [0, 4] }),
  },
  {
    key: 'running',
    title: 'Workers running (share of samples)',
    source: 'workers',
    value: (c, i) => (c.samples[i] ? (100 * c.runningSamples[i]) / c.samples[i] : 0),
    format: (v) => `${Math.round(v)} %`,
    y: () => ({ fixed: [0, 100] }),
  },
];

export function mount({ root, params, query, app }) {
  const agentId = params[0];
  const initial = RANGES.find((r) => r.key === query.get('range') && r.key !== 'custom') || RANGES[1];
  const state = {
    range: initial,
    // A custom range: {from, to} in ms, fixed (it does not slide).
    custom: null,
    customError: null,
    customOpen: false,
    hidden: new Set(),
    agent: null,
    metrics: null,
    loading: true,
    error: null,
    missing: false,
  };
  let stop = null;

  function customBucket(spanMs) {
    const seconds = spanMs / 1000;
    return BUCKETS.find((b) => seconds / b <= 200) || BUCKETS[BUCKETS.length - 1];
  }

  function windowNow() {
    if (state.custom) {
      const bucket = customBucket(state.custom.to - state.custom.from);
      return { ...state.custom, bucket };
    }
    const bucketMs = state.range.bucket * 1000;
    const to = Math.ceil(Date.now() / bucketMs) * bucketMs;
    return { from: to - state.range.seconds * 1000, to, bucket: state.range.bucket };
  }

  async function refresh() {
    try {
      const data = await gql(AGENT, { id: agentId });
      app.me = data.me;
      state.agent = data.agent;
      state.missing = !data.agent;
      if (data.agent && app.me.usage.metricsIncluded) {
        const { from, to, bucket } = windowNow();
        const result = await gql(METRICS, {
          agentId,
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
          bucket,
        });
        state.metrics = result.agentMetrics;
      }
      state.error = null;
    } catch (error) {
      if (error.code === 'unauthorized') return;
      state.error = error.message;
    }
    state.loading = false;
    draw();
    startLive();
  }

  function startLive() {
    if (stop || !state.agent) return;
    // The machine's status line follows its events; the charts follow its reports.
    const subs = [{ query: AGENT_EVENTS, variables: { agentId } }];
    if (app.me.usage.metricsIncluded) subs.push({ query: AGENT_METRICS, variables: { agentId } });
    stop = watch(subs, refresh, { pollMs: 15000 });
  }

  function chooseRange(event) {
    const key = event.currentTarget.value;
    if (key === 'custom') {
      state.customOpen = true;
      draw();
      root.querySelector('#metrics-from').focus();
      return;
    }
    state.customOpen = false;
    state.custom = null;
    state.range = RANGES.find((r) => r.key === key) || RANGES[1];
    history.replaceState(null, '', `#/agents/${agentId}/metrics?range=${state.range.key}`);
    state.metrics = null;
    draw();
    refresh();
  }

  function applyCustom(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const from = form.from.value ? new Date(form.from.value).getTime() : NaN;
    const to = form.to.value ? new Date(form.to.value).getTime() : NaN;
    let error = null;
    if (Number.isNaN(from) || Number.isNaN(to)) error = 'Enter both a start and an end.';
    else if (to <= from) error = 'The end must come after the start.';
    else if (from > Date.now()) error = 'The start is in the future: nothing was reported yet.';
    else if ((to - from) / 1000 / customBucket(to - from) > MAX_BUCKETS) error = 'Choose a range of at most 1,000 days.';
    state.customError = error;
    if (!error) {
      state.custom = { from, to };
      state.range = RANGES.find((r) => r.key === 'custom');
      state.metrics = null;
    }
    draw();
    if (!error) refresh();
  }

  function toggleSeries(gpuId) {
    if (state.hidden.has(gpuId)) state.hidden.delete(gpuId);
    else state.hidden.add(gpuId);
    draw();
  }

  function workerName(id) {
    const worker = state.agent && (state.agent.workers || []).find((w) => w.id === id);
    return worker ? worker.name : id;
  }

  // A series' columns as the chart's points: {t (ms), v}.
  function chartPoints(chart, columns) {
    return columns ? columns.at.map((t, i) => ({ t, v: chart.value(columns, i) })) : [];
  }

  function series(chart) {
    if (chart.source === 'workers') {
      const workers = (state.metrics && state.metrics.workers) || [];
      return workers.map((w, i) => ({
        name: workerName(w.workerId),
        cls: `c${i % 8}`,
        points: chartPoints(chart, w.columns),
      }));
    }
    if (chart.source === 'system') {
      return [{ name: 'host', cls: 'c0', points: chartPoints(chart, state.metrics && state.metrics.systemColumns) }];
    }
    const gpus = (state.metrics && state.metrics.gpus) || [];
    return gpus
      .map((g, i) => ({
        name: g.gpuId,
        cls: `c${i % 8}`,
        points: chartPoints(chart, g.columns),
      }))
      .filter((ser) => !state.hidden.has(ser.name));
  }

  // How many buckets of a series have samples (its columns' length).
  function bucketCount(columns) {
    return columns ? columns.at.length : 0;
  }

  // Bucket i of a series' columns as one reading ({at: ISO string, utilizationAvg, ...}).
  function reading(columns, i) {
    const out = {};
    for (const [name, values] of Object.entries(columns)) out[name] = values[i];
    out.at = new Date(columns.at[i]).toISOString();
    return out;
  }

  // One button per GPU: pressed, its lines are drawn; a press hides or shows them.
  function legend() {
    const gpus = state.agent ? state.agent.gpus : [];
    const order = ((state.metrics && state.metrics.gpus) || []).map((g) => g.gpuId);
    return h(
      'ul',
      { class: 'legend', 'aria-label': 'GPUs: show or hide each one’s lines' },
      gpus.map((gpu) => {
        const index = order.indexOf(gpu.gpuId);
        const shown = !state.hidden.has(gpu.gpuId);
        return h(
          'li',
          { key: gpu.gpuId },
          h(
            'button',
            {
              type: 'button',
              class: 'legend-toggle',
              'aria-pressed': String(shown),
              'data-gpu': gpu.gpuId,
              disabled: index < 0,
              title: index < 0 ? 'No samples in this range' : shown ? 'Hide its lines' : 'Show its lines',
              onclick: () => toggleSeries(gpu.gpuId),
            },
            h('span', { class: `swatch ${index >= 0 ? `c${index % 8}` : 'none'}`, 'aria-hidden': 'true' }),
            h('code', {}, gpu.gpuId),
            h('span', { class: 'muted small' }, ` ${gpu.model}`),
            index < 0 ? h('span', { class: 'muted small' }, ' (no samples)') : null,
          ),
        );
      }),
    );
  }

  // The latest reading of each GPU in the range, as numbers.
  function currentTable() {
    const m = state.metrics;
    const gpus = state.agent ? state.agent.gpus : [];
    const latest = new Map(
      ((m && m.gpus) || []).filter((g) => bucketCount(g.columns)).map((g, i) => [g.gpuId, { p: reading(g.columns, bucketCount(g.columns) - 1), i }]),
    );
    if (!latest.size) return null;
    const order = ((m && m.gpus) || []).map((g) => g.gpuId);
    return h(
      'section',
      { class: 'panel current-values', 'aria-labelledby': 'current-title' },
      h('h2', { id: 'current-title' }, 'Latest reading per GPU'),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table responsive', id: 'current-values' },
          h('thead', {}, h('tr', {}, ['GPU', 'At', 'Utilisation', 'VRAM used', 'Temperature', 'Power'].map((t) => h('th', { scope: 'col' }, t)))),
          h(
            'tbody',
            {},
            gpus.map((gpu) => {
              const found = latest.get(gpu.gpuId);
              const index = order.indexOf(gpu.gpuId);
              if (!found)
                return h(
                  'tr',
                  { key: gpu.gpuId, 'data-gpu': gpu.gpuId },
                  h('td', { 'data-label': 'GPU' }, h('code', {}, gpu.gpuId)),
                  h('td', { 'data-label': 'At', class: 'muted' }, 'No samples in this range'),
                );
              const p = found.p;
              return h(
                'tr',
                { key: gpu.gpuId, 'data-gpu': gpu.gpuId },
                h('td', { 'data-label': 'GPU' }, h('span', { class: `swatch c${index % 8}`, 'aria-hidden': 'true' }), h('code', {}, gpu.gpuId), h('div', { class: 'muted small' }, gpu.model)),
                h('td', { 'data-label': 'At', class: 'num' }, h('time', { datetime: p.at }, ago(p.at))),
                h('td', { 'data-label': 'Utilisation', class: 'num util' }, `${Math.round(p.utilizationAvg)} %`),
                h('td', { 'data-label': 'VRAM used', class: 'num' }, `${vram(Math.round(p.vramUsedMbAvg))} of ${vram(p.vramTotalMb)}`),
                h('td', { 'data-label': 'Temperature', class: 'num' }, `${Math.round(p.temperatureAvg)} °C`),
                h('td', { 'data-label': 'Power', class: 'num' }, `${Math.round(p.powerUsageWAvg)} W`),
              );
            }),
          ),
        ),
      ),
    );
  }

  // Why a chart is empty: the machine, the agent, or the range.
  function emptyReason(chart) {
    const agent = state.agent;
    const m = state.metrics;
    const anySamples = m && (m.gpus.some((g) => bucketCount(g.columns)) || bucketCount(m.systemColumns));
    if (agent && agent.status === 'PENDING') return 'The machine has not reported yet';
    if (chart && chart.source !== 'system' && chart.source !== 'workers' && m && m.gpus.length && !series(chart).length) return 'Every GPU is hidden';
    if (anySamples) return chart && chart.source === 'workers' ? 'No worker samples in this range' : 'No samples in this range';
    if (agent && agent.status === 'OFFLINE' && !state.custom) return `The machine is offline (last seen ${ago(agent.lastSeenAt)})`;
    if (state.custom) return 'No samples in this range';
    return 'The agent sends no metrics';
  }

  function reasonText() {
    const agent = state.agent;
    const m = state.metrics;
    if (!m) return 'Loading…';
    const hasPoints = m.gpus.some((g) => bucketCount(g.columns)) || bucketCount(m.systemColumns);
    const buckets = `Buckets of ${m.bucketSeconds} s.`;
    if (hasPoints) return buckets;
    if (agent.status === 'PENDING') return `No samples: the machine has not reported yet. ${buckets}`;
    if (state.custom) return `No samples in this range: pick another. ${buckets}`;
    if (agent.status === 'OFFLINE')
      return `No samples in this range: the machine is offline (last seen ${ago(agent.lastSeenAt)}), so no new ones arrive. ${buckets}`;
    return `No samples in this range: the machine reports its status but its agent sends no GPU metrics (an agent version without them, or collection turned off on the host). ${buckets}`;
  }

  function upsell() {
    const plan = titleCase(app.me.plan);
    return h(
      'section',
      { class: 'panel upsell', id: 'metrics-upsell' },
      h('h2', {}, 'Metrics come with the Team and Pro plans'),
      h('p', {}, `You are on the ${plan} plan. With Team or Pro, this page shows for every GPU of the machine:`),
      h(
        'ul',
        { class: 'ticks' },
        h('li', {}, 'utilisation over time, per GPU'),
        h('li', {}, 'VRAM in use against the card’s total'),
        h('li', {}, 'temperature and power, to spot throttling and cooling trouble'),
        h('li', {}, 'the host’s CPU and memory'),
        h('li', {}, 'ranges from the last 15 minutes to the last 7 days, updating live'),
      ),
      h('p', { class: 'muted' }, 'Ask this server’s operator to move your account to Team or Pro.'),
    );
  }

  function localValue(ms) {
    if (ms == null) return '';
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function customForm() {
    const { from, to } = state.custom || { from: Date.now() - 3 * 3600 * 1000, to: Date.now() };
    return h(
      'form',
      { class: 'custom-range form-row align-end', novalidate: true, onsubmit: applyCustom, 'aria-label': 'Chosen period' },
      h('div', { class: 'field' }, h('label', { for: 'metrics-from' }, 'From'), h('input', { id: 'metrics-from', name: 'from', type: 'datetime-local', value: localValue(from) })),
      h('div', { class: 'field' }, h('label', { for: 'metrics-to' }, 'To'), h('input', { id: 'metrics-to', name: 'to', type: 'datetime-local', value: localValue(to) })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Show')),
      errorBox(state.customError),
    );
  }

  function charts() {
    const m = state.metrics;
    return [
      h(
        'div',
        { class: 'metrics-toolbar' },
        h(
          'div',
          { class: 'field inline' },
          h('label', { for: 'metrics-range' }, 'Range'),
          h(
            'select',
            { id: 'metrics-range', onchange: chooseRange },
            RANGES.map((r) =>
              h('option', { value: r.key, selected: state.customOpen || state.custom ? r.key === 'custom' : r.key === state.range.key }, r.label),
            ),
          ),
        ),
        h('p', { class: 'muted small', role: 'status', id: 'metrics-status' }, reasonText()),
      ),
      state.customOpen || state.custom ? customForm() : null,
      legend(),
      h(
        'div',
        { class: 'charts' },
        CHARTS.map((c) =>
          h(
            'figure',
            { class: 'panel chart', key: c.key },
            h('figcaption', {}, c.title),
            h('div', { class: 'chart-box', id: `chart-${c.key}`, 'data-own': '', key: `box-${c.key}` }),
          ),
        ),
      ),
      currentTable(),
    ];
  }

  function drawCharts() {
    if (!state.metrics) return;
    const { from, to } = {
      from: new Date(state.metrics.from).getTime(),
      to: new Date(state.metrics.to).getTime(),
    };
    for (const c of CHARTS) {
      const box = root.querySelector(`#chart-${c.key}`);
      if (!box) continue;
      drawChart(box, {
        id: `svg-${c.key}`,
        label: `${c.title}, ${state.custom ? 'chosen period' : state.range.label.toLowerCase()}`,
        series: series(c),
        from,
        to,
        gapMs: state.metrics.bucketSeconds * 1000 * 2.5,
        format: c.format,
        y: c.y(state.metrics.gpus, state.agent ? state.agent.gpus : [], state.metrics.systemColumns),
        emptyNote: emptyReason(c),
      });
    }
  }

  function draw() {
    const agent = state.agent;
    const title = agent ? agent.hostname : 'Metrics';
    let body;
    if (state.loading) body = skeleton(6);
    else if (state.missing) body = emptyState('This machine does not exist (any more)', null, link('/', { class: 'btn' }, 'Back to the overview'));
    else if (!app.me.usage.metricsIncluded) body = upsell();
    else body = charts();
    render(
      root,
      h(
        'div',
        { class: 'metrics' },
        pageHeader(title, {
          crumbs: [['/', 'Overview']],
          sub: [
            agentTabs(agentId, 'metrics'),
            agent
              ? h('p', { class: 'muted small status-line' }, badge(agent.status), ` Last seen ${ago(agent.lastSeenAt)}`)
              : null,
          ],
        }),
        errorBox(state.error),
        body,
      ),
    );
    drawCharts();
  }

  let lastWidth = 0;
  const resize = new ResizeObserver(() => {
    const width = root.clientWidth;
    if (width !== lastWidth) {
      lastWidth = width;
      drawCharts();
    }
  });
  resize.observe(root);

  draw();
  refresh();
  // Slide the window forward even when nothing new arrives.
  const ticker = setInterval(() => {
    if (state.metrics && !state.custom) refresh();
  }, 60000);
  return () => {
    if (stop) stop();
    clearInterval(ticker);
    resize.disconnect();
  };
}
