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
];

const AGENT = `query MetricsAgent($id: ID!) {
  me { ${USER_FIELDS} }
  agent(id: $id) { id hostname status lastSeenAt gpus { gpuId model vramMb } workers { id name } }
}`;
const METRICS = `query Metrics($agentId: ID!, $from: DateTime!, $to: DateTime!, $bucket: Int!) {
  agentMetrics(agentId: $agentId, from: $from, to: $to, bucket: $bucket) {
    from to bucketSeconds
    gpus { gpuId points { at samples utilizationAvg vramUsedMbAvg vramTotalMb temperatureAvg temperatureMax } }
    workers { workerId points { at samples runningSamples connectionsAvg connectionsMax restartsMax } }
  }
}`;

// y: options for the axis, or a function of (series from the server, the agent's GPUs).
const CHARTS = [
  {
    key: 'utilization',
    title: 'GPU utilisation',
    value: (p) => p.utilizationAvg,
    format: (v, axis) => `${axis ? Math.round(v) : Math.round(v * 10) / 10} %`,
    y: () => ({ fixed: [0, 100] }),
  },
  {
    key: 'vram',
    title: 'VRAM used',
    // In GB (1024 MB), against the largest card's total.
    value: (p) => p.vramUsedMbAvg / 1024,
    format: (v, axis) => (axis ? `${Number(v.toFixed(1))} GB` : vram(Math.round(v * 1024))),
    y: (series, gpus) => {
      const totals = series.flatMap((g) => g.points.map((p) => p.vramTotalMb));
      const known = totals.length ? totals : gpus.map((g) => g.vramMb);
      return known.length ? { fixed: [0, Math.max(...known) / 1024] } : { floor: 0 };
    },
  },
  {
    key: 'temperature',
    title: 'Temperature',
    value: (p) => p.temperatureAvg,
    format: (v) => `${Math.round(v)} °C`,
    y: () => ({ minStep: 1, empty: [20, 100] }),
  },
  {
    key: 'clients',
    title: 'Clients per worker',
    source: 'workers',
    value: (p) => p.connectionsAvg,
    format: (v, axis) => (axis ? `${Math.round(v)}` : `${Math.round(v * 10) / 10} clients`),
    y: () => ({ floor: 0, minStep: 1, empty: [0, 4] }),
  },
  {
    key: 'running',
    title: 'Workers running (share of samples)',
    source: 'workers',
    value: (p) => (p.samples ? (100 * p.runningSamples) / p.samples : 0),
    format: (v) => `${Math.round(v)} %`,
    y: () => ({ fixed: [0, 100] }),
  },
];

export function mount({ root, params, query, app }) {
  const agentId = params[0];
  const initial = RANGES.find((r) => r.key === query.get('range')) || RANGES[1];
  const state = { range: initial, agent: null, metrics: null, loading: true, error: null, missing: false };
  let stop = null;

  function windowNow() {
    const bucketMs = state.range.bucket * 1000;
    const to = Math.ceil(Date.now() / bucketMs) * bucketMs;
    return { from: to - state.range.seconds * 1000, to };
  }

  async function refresh() {
    try {
      const data = await gql(AGENT, { id: agentId });
      app.me = data.me;
      state.agent = data.agent;
      state.missing = !data.agent;
      if (data.agent && app.me.usage.metricsIncluded) {
        const { from, to } = windowNow();
        const result = await gql(METRICS, {
          agentId,
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
          bucket: state.range.bucket,
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
    state.range = RANGES.find((r) => r.key === event.currentTarget.value) || RANGES[1];
    history.replaceState(null, '', `#/agents/${agentId}/metrics?range=${state.range.key}`);
    state.metrics = null;
    draw();
    refresh();
  }

  function workerName(id) {
    const worker = state.agent && (state.agent.workers || []).find((w) => w.id === id);
    return worker ? worker.name : id;
  }

  function series(chart) {
    if (chart.source === 'workers') {
      const workers = (state.metrics && state.metrics.workers) || [];
      return workers.map((w, i) => ({
        name: workerName(w.workerId),
        cls: `c${i % 8}`,
        points: w.points.map((p) => ({ t: new Date(p.at).getTime(), v: chart.value(p) })),
      }));
    }
    const gpus = (state.metrics && state.metrics.gpus) || [];
    return gpus.map((g, i) => ({
      name: g.gpuId,
      cls: `c${i % 8}`,
      points: g.points.map((p) => ({ t: new Date(p.at).getTime(), v: chart.value(p) })),
    }));
  }

  function legend() {
    const gpus = state.agent ? state.agent.gpus : [];
    const order = ((state.metrics && state.metrics.gpus) || []).map((g) => g.gpuId);
    return h(
      'ul',
      { class: 'legend', 'aria-label': 'GPUs' },
      gpus.map((gpu) => {
        const index = order.indexOf(gpu.gpuId);
        return h(
          'li',
          { key: gpu.gpuId },
          h('span', { class: `swatch ${index >= 0 ? `c${index % 8}` : 'none'}`, 'aria-hidden': 'true' }),
          h('code', {}, gpu.gpuId),
          h('span', { class: 'muted small' }, ` ${gpu.model}`),
          index < 0 ? h('span', { class: 'muted small' }, ' (no samples)') : null,
        );
      }),
    );
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
        h('li', {}, 'temperature, to spot throttling and cooling trouble'),
        h('li', {}, 'ranges from the last 15 minutes to the last 7 days, updating live'),
      ),
      h('p', { class: 'muted' }, 'Ask this server’s operator to move your account to Team or Pro.'),
    );
  }

  function charts() {
    const m = state.metrics;
    const hasPoints = m && m.gpus.some((g) => g.points.length);
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
            RANGES.map((r) => h('option', { value: r.key, selected: r.key === state.range.key }, r.label)),
          ),
        ),
        h(
          'p',
          { class: 'muted small', role: 'status', id: 'metrics-status' },
          m ? `${hasPoints ? '' : 'No samples in this range. '}Buckets of ${m.bucketSeconds} s.` : 'Loading…',
        ),
      ),
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
        label: `${c.title}, ${state.range.label.toLowerCase()}`,
        series: series(c),
        from,
        to,
        gapMs: state.metrics.bucketSeconds * 1000 * 2.5,
        format: c.format,
        y: c.y(state.metrics.gpus, state.agent ? state.agent.gpus : []),
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
    if (state.metrics) refresh();
  }, 60000);
  return () => {
    if (stop) stop();
    clearInterval(ticker);
    resize.disconnect();
  };
}
