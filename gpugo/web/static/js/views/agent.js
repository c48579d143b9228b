// Agent detail: status, config sync, GPUs, workers (create, edit, enable/disable,
// delete), and deleting the machine. What an offline machine last reported is shown
// greyed as "last known", never as current.

import { h, render } from '../dom.js';
import { ago, dateTime, plural, vram } from '../format.js';
import { focusFirstInvalid, noErrors, serverErrors } from '../forms.js';
import { gql } from '../gql.js';
import { editLabels } from '../labels.js';
import { watch } from '../live.js';
import { AGENT_EVENTS } from '../subs.js';
import {
  badge,
  confirmDialog,
  emptyState,
  errorBox,
  field,
  fieldset,
  link,
  navigate,
  pageHeader,
  skeleton,
  toast,
} from '../ui.js';
import { USER_FIELDS } from './auth.js';
import { configState } from './overview.js';

const WORKER_FIELDS = `id name gpuIds listenPort enabled status isDefault pid restarts createdAt
  vramMb computePercent isolationMode agentOnline lastKnownAt liveConnectionCount
  connections { clientIp clientPort clientPid connectedAt }`;
// The first port offered to a new worker (the default worker's), and the highest.
const FIRST_PORT = 9001;
const LAST_PORT = 65535;
// The largest VRAM limit the server takes (gpugo/inputs/workers.py).
const MAX_VRAM_MB = 2 ** 31 - 1;
const ISOLATION_MODES = [
  ['', 'Agent default'],
  ['shared', 'Shared'],
  ['soft', 'Soft'],
  ['hard', 'Hard'],
  ['partitioned', 'Partitioned'],
];
const QUERY = `query Agent($id: ID!) {
  me { ${USER_FIELDS} }
  agent(id: $id) {
    id hostname displayName tags os arch status statusReason lastSeenAt createdAt gpuCount networkIps
    configVersion fetchedConfigVersion configFetchedAt
    gpus { gpuId gpuIndex vendor model vramMb driverVersion cudaVersion usedByWorker agentOnline lastKnownAt }
    workers { ${WORKER_FIELDS} }
  }
}`;
const CREATE_WORKER = `mutation CreateWorker($input: CreateWorkerInput!) { createWorker(input: $input) { id name } }`;
const UPDATE_WORKER = `mutation UpdateWorker($id: ID!, $input: UpdateWorkerInput!) { updateWorker(id: $id, input: $input) { id name enabled } }`;
const DELETE_WORKER = 'mutation DeleteWorker($id: ID!) { deleteWorker(id: $id) }';
const RESTART_WORKER = 'mutation RestartWorker($id: ID!) { restartWorker(id: $id) }';
const DELETE_AGENT = 'mutation DeleteAgent($id: ID!) { deleteAgent(id: $id) }';

/** Tabs of an agent's pages. */
export function agentTabs(agentId, current) {
  const tabs = [
    [`/agents/${agentId}`, 'Machine', 'machine'],
    [`/agents/${agentId}/metrics`, 'Metrics', 'metrics'],
  ];
  return h(
    'nav',
    { class: 'tabs', 'aria-label': 'Machine sections' },
    tabs.map(([path, text, key]) => link(path, { 'aria-current': key === current ? 'page' : null }, text)),
  );
}

/** A GPU's short label: its index ("GPU 3"), else its id when short. */
export function gpuLabel(gpu) {
  if (gpu.gpuIndex != null) return `GPU ${gpu.gpuIndex}`;
  return gpu.gpuId.length <= 12 ? gpu.gpuId : `${gpu.gpuId.slice(0, 10)}…`;
}

/** "RTX 4090" from "NVIDIA GeForce RTX 4090": the vendor is shown apart. */
export function shortModel(model) {
  return String(model || '').replace(/^(NVIDIA|AMD|Intel)\s+/i, '').replace(/^(GeForce|Radeon)\s+/i, '');
}

/** The lowest port from FIRST_PORT on that no worker of the machine uses. */
export function nextFreePort(workers, except = null) {
  const taken = new Set(workers.filter((w) => w.id !== except).map((w) => w.listenPort));
  for (let port = FIRST_PORT; port <= LAST_PORT; port += 1) {
    if (!taken.has(port)) return port;
  }
  return null;
}

/** gpuId -> names of the enabled workers assigned it (a GPU in two or more is shared). */
export function claims(workers) {
  const out = new Map();
  for (const w of workers) {
    if (!w.enabled) continue;
    for (const id of w.gpuIds) {
      if (!out.has(id)) out.set(id, []);
      out.get(id).push(w.name);
    }
  }
  return out;
}

// The worker form's fields, as the server's details name them.
const WORKER_FORM_FIELDS = ['name', 'gpuIds', 'listenPort', 'vramMb', 'computePercent', 'isolationMode'];

function workerErrors(error) {
  return serverErrors(error, {
    fields: WORKER_FORM_FIELDS,
    at: { conflict: 'listenPort' },
    say: { plan_limit_exceeded: (e) => `${e.message} Remove a worker or change plans to add more.` },
  });
}

export function mount({ root, params, query, app }) {
  const agentId = params[0];
  const state = {
    loading: true,
    agent: null,
    missing: false,
    error: null,
    form: null, // {mode: 'create'} | {mode: 'edit', id}
    formErrors: noErrors(),
    busy: false,
    justRegistered: query.get('new') === '1',
    // Where keyboard focus goes after the next draw: {worker: id} | {add: true}.
    focusNext: null,
  };

  function placeFocus() {
    const target = state.focusNext;
    state.focusNext = null;
    if (!target) return;
    let el = null;
    if (target.worker) el = root.querySelector(`tr[data-worker="${CSS.escape(target.worker)}"] .btn-edit`);
    if (!el) el = root.querySelector('#add-worker');
    if (!el) el = root.querySelector('#workers-title');
    if (el) el.focus();
  }

  async function refresh() {
    try {
      const data = await gql(QUERY, { id: agentId });
      app.me = data.me;
      state.agent = data.agent;
      state.missing = !data.agent;
      state.error = null;
    } catch (error) {
      if (error.code === 'unauthorized') return;
      state.error = error.message;
    }
    state.loading = false;
    draw();
  }

  function workerName(id) {
    const worker = state.agent && state.agent.workers.find((w) => w.id === id);
    return worker ? worker.name : null;
  }

  function openForm(form) {
    state.form = form;
    state.formErrors = noErrors();
    draw();
    const first = root.querySelector('#worker-name');
    if (first) first.focus();
  }

  async function submitWorker(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const gpuIds = Array.from(form.querySelectorAll('input[name="gpu"]:checked')).map((i) => i.value);
    const port = form.port.value.trim();
    const vramText = form.vram.value.trim();
    const computeText = form.compute.value.trim();
    const input = {
      name: form.name.value.trim(),
      gpuIds,
      listenPort: port === '' ? null : Number(port),
      // Empty means no limit (null removes one when editing).
      vramMb: vramText === '' ? null : Number(vramText),
      computePercent: computeText === '' ? null : Number(computeText),
      isolationMode: form.isolation.value === '' ? null : form.isolation.value,
    };
    const fields = {};
    if (!input.name) fields.name = 'Enter a name for the worker.';
    if (gpuIds.length === 0) fields.gpuIds = 'Choose at least one GPU.';
    if (port === '' || !Number.isInteger(input.listenPort)) fields.listenPort = 'Enter a port number.';
    else if (input.listenPort < 1024 || input.listenPort > 65535) fields.listenPort = 'Enter a port from 1024 to 65535.';
    // Letters typed into a number field read as empty: never "no limit" by mistake.
    if (form.vram.validity.badInput || (input.vramMb !== null && !(Number.isInteger(input.vramMb) && input.vramMb >= 1 && input.vramMb <= MAX_VRAM_MB))) {
      fields.vramMb = `Enter whole MiB from 1 to ${MAX_VRAM_MB}, or leave empty for no limit.`;
    }
    if (form.compute.validity.badInput || (input.computePercent !== null && !(Number.isInteger(input.computePercent) && input.computePercent >= 1 && input.computePercent <= 100))) {
      fields.computePercent = 'Enter 1–100, or leave empty for no limit.';
    }
    if (Object.keys(fields).length) {
      state.formErrors = { fields, message: null };
      draw();
      focusFirstInvalid(form);
      return;
    }
    state.busy = true;
    draw();
    try {
      let saved;
      if (state.form.mode === 'create') {
        input.agentId = agentId;
        input.enabled = form.enabled.checked;
        const data = await gql(CREATE_WORKER, { input });
        saved = data.createWorker;
        toast(`Worker ${saved.name} created.`);
      } else {
        const data = await gql(UPDATE_WORKER, { id: state.form.id, input });
        saved = data.updateWorker;
        toast(`Worker ${saved.name} saved.`);
      }
      state.form = null;
      state.formErrors = noErrors();
      // Back to the saved worker's row, not to the top of the page.
      state.focusNext = { worker: saved.id };
      await refresh();
    } catch (error) {
      state.formErrors = workerErrors(error);
    }
    state.busy = false;
    draw();
    focusFirstInvalid(root.querySelector('.worker-form'));
  }

  async function setEnabled(worker, enabled) {
    try {
      await gql(UPDATE_WORKER, { id: worker.id, input: { enabled } });
      toast(`Worker ${worker.name} ${enabled ? 'enabled' : 'disabled'}.`);
      await refresh();
    } catch (error) {
      toast(error.message, 'error');
    }
  }

  async function restartWorker(worker) {
    try {
      await gql(RESTART_WORKER, { id: worker.id });
      // The machine's agent restarts it when its push channel delivers the request.
      toast(`Restart of ${worker.name} requested.`);
    } catch (error) {
      toast(error.message, 'error');
    }
  }

  async function deleteWorker(worker) {
    const ok = await confirmDialog({
      title: `Delete worker ${worker.name}?`,
      body: h('p', {}, 'Its share links stop working and connected clients are cut off when the host applies the change.'),
      confirmLabel: 'Delete worker',
    });
    if (!ok) return;
    // The next worker's row takes focus (else the previous one, else "Add worker").
    const list = state.agent.workers;
    const at = list.findIndex((w) => w.id === worker.id);
    const neighbour = list[at + 1] || list[at - 1];
    try {
      await gql(DELETE_WORKER, { id: worker.id });
      toast(`Worker ${worker.name} deleted.`);
      state.focusNext = neighbour ? { worker: neighbour.id } : { add: true };
      if (state.form && state.form.id === worker.id) state.form = null;
      await refresh();
    } catch (error) {
      toast(error.message, 'error');
    }
  }

  async function deleteAgent() {
    const agent = state.agent;
    const ok = await confirmDialog({
      title: `Delete ${agent.hostname}?`,
      body: [
        h(
          'p',
          {},
          `This removes the machine with its ${plural(agent.gpus.length, 'GPU')}, ${plural(agent.workers.length, 'worker')}, their share links and all its metrics.`,
        ),
        h('p', {}, 'The agent on the host stops getting licenses; to add the machine again, run a new install command.'),
      ],
      confirmLabel: 'Delete machine',
    });
    if (!ok) return;
    try {
      await gql(DELETE_AGENT, { id: agent.id });
      toast(`${agent.hostname} deleted.`);
      navigate('/');
    } catch (error) {
      toast(error.message, 'error');
    }
  }

  /** "Last known 5 min ago" (the time in full on hover) for what an offline machine said. */
  function lastKnown(at, now = Date.now()) {
    if (!at) return h('span', { class: 'muted small last-known' }, 'Not reported yet');
    return h(
      'span',
      { class: 'muted small last-known' },
      'Last known ',
      h('time', { datetime: at, title: dateTime(at) }, ago(at, now)),
    );
  }

  function workerLimit() {
    const usage = app.me && app.me.usage;
    if (!usage) return null;
    return { used: usage.workersUsed, allowed: usage.workersAllowed, full: usage.workersUsed >= usage.workersAllowed };
  }

  function workerForm() {
    const agent = state.agent;
    const editing = state.form.mode === 'edit' ? agent.workers.find((w) => w.id === state.form.id) : null;
    const errors = state.formErrors;
    const others = agent.workers.filter((w) => !editing || w.id !== editing.id);
    const taken = claims(others);
    // A new worker is offered the GPUs no other enabled worker has, and the next free port.
    const free = agent.gpus.filter((g) => !taken.has(g.gpuId)).map((g) => g.gpuId);
    const chosen = new Set(editing ? editing.gpuIds : free);
    const port = editing ? editing.listenPort : nextFreePort(agent.workers);
    const usedPorts = others.map((w) => w.listenPort).sort((a, b) => a - b);
    const title = editing ? `Edit worker ${editing.name}` : 'New worker';
    return h(
      'form',
      {
        class: 'worker-form panel inset',
        key: editing ? `edit-${editing.id}` : 'create',
        novalidate: true,
        onsubmit: submitWorker,
        'aria-labelledby': 'worker-form-title',
      },
      h('h3', { id: 'worker-form-title' }, title),
      h(
        'div',
        { class: 'form-row' },
        field({
          id: 'worker-name',
          label: 'Name',
          control: h('input', { name: 'name', type: 'text', maxlength: 100, required: true, value: editing ? editing.name : '' }),
          error: errors.fields.name,
        }),
        field({
          id: 'worker-port',
          label: 'Port',
          className: 'narrow',
          control: h('input', {
            name: 'port',
            type: 'number',
            inputmode: 'numeric',
            min: 1024,
            max: 65535,
            required: true,
            value: port == null ? '' : port,
          }),
          hint: usedPorts.length
            ? `TCP port on the machine, 1024–65535. In use: ${usedPorts.join(', ')}.`
            : 'TCP port on the machine, 1024–65535.',
          error: errors.fields.listenPort,
        }),
      ),
      h(
        'div',
        { class: 'form-row' },
        field({
          id: 'worker-vram',
          label: 'VRAM limit (MiB)',
          className: 'narrow',
          control: h('input', {
            name: 'vram',
            type: 'number',
            inputmode: 'numeric',
            min: 1,
            value: editing && editing.vramMb !== null ? editing.vramMb : '',
          }),
          hint: 'Empty: no limit.',
          error: errors.fields.vramMb,
        }),
        field({
          id: 'worker-compute',
          label: 'Compute limit (%)',
          className: 'narrow',
          control: h('input', {
            name: 'compute',
            type: 'number',
            inputmode: 'numeric',
            min: 1,
            max: 100,
            value: editing && editing.computePercent !== null ? editing.computePercent : '',
          }),
          hint: 'Empty: no limit.',
          error: errors.fields.computePercent,
        }),
        field({
          id: 'worker-isolation',
          label: 'Isolation',
          control: h(
            'select',
            { name: 'isolation' },
            ...ISOLATION_MODES.map(([value, label]) =>
              h('option', { value, selected: (editing ? editing.isolationMode || '' : '') === value }, label),
            ),
          ),
          error: errors.fields.isolationMode,
        }),
      ),
      fieldset({
        id: 'worker-gpus',
        legend: 'GPUs',
        hint: free.length
          ? `Free: ${agent.gpus.filter((g) => free.includes(g.gpuId)).map(gpuLabel).join(', ')}. A GPU given to several workers is shared between them.`
          : 'Every GPU is assigned to another worker already; a GPU given to several workers is shared between them.',
        error: errors.fields.gpuIds,
        children: agent.gpus.map((gpu) => {
          const users = taken.get(gpu.gpuId) || [];
          return h(
            'label',
            { class: 'check gpu-check', title: gpu.gpuId },
            h('input', { type: 'checkbox', name: 'gpu', value: gpu.gpuId, checked: chosen.has(gpu.gpuId) }),
            h(
              'span',
              {},
              h('span', { class: 'strong' }, gpuLabel(gpu)),
              ` · ${shortModel(gpu.model)} · ${vram(gpu.vramMb)}`,
              h('span', { class: `small ${users.length ? 'gpu-taken' : 'gpu-free'}` }, users.length ? ` · in ${users.join(', ')}` : ' · free'),
            ),
          );
        }),
      }),
      editing
        ? null
        : h(
            'label',
            { class: 'check' },
            h('input', { type: 'checkbox', name: 'enabled', checked: true }),
            h('span', {}, 'Start it right away (enabled)'),
          ),
      errorBox(errors.message),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'submit', class: 'btn btn-primary', disabled: state.busy }, editing ? 'Save worker' : 'Create worker'),
        h(
          'button',
          {
            type: 'button',
            class: 'btn',
            onclick() {
              state.focusNext = editing ? { worker: editing.id } : { add: true };
              state.form = null;
              draw();
            },
          },
          'Cancel',
        ),
      ),
    );
  }

  function connectionsCell(worker) {
    const list = worker.connections;
    if (!list.length) return h('span', { class: 'muted' }, 'None');
    if (!worker.agentOnline) {
      // What the machine said before it went quiet: not counted as live.
      return h(
        'div',
        {},
        h('span', { class: 'muted' }, 'None live'),
        h('div', { class: 'muted small' }, `${plural(list.length, 'client')} when last heard`),
      );
    }
    return h(
      'div',
      {},
      h('span', { class: 'num strong' }, plural(list.length, 'client')),
      h(
        'ul',
        { class: 'connections' },
        list.slice(0, 5).map((c) =>
          h(
            'li',
            { key: `${c.clientIp}:${c.clientPort}:${c.connectedAt}` },
            h('code', {}, c.clientPort ? `${c.clientIp}:${c.clientPort}` : c.clientIp),
            h('span', { class: 'muted small' }, ` since ${ago(c.connectedAt)}`),
          ),
        ),
        list.length > 5 ? h('li', { class: 'muted small' }, `and ${list.length - 5} more`) : null,
      ),
    );
  }

  /** The worker's GPUs as short labels; the full id on hover (and in the GPUs table). */
  function gpuChips(worker) {
    const agent = state.agent;
    const byId = new Map(agent.gpus.map((g) => [g.gpuId, g]));
    const shared = claims(agent.workers);
    if (!worker.gpuIds.length) return h('span', { class: 'muted' }, 'None');
    return h(
      'ul',
      { class: 'gpu-chips', 'aria-label': `GPUs of ${worker.name}` },
      worker.gpuIds.map((id) => {
        const gpu = byId.get(id);
        const label = gpu ? gpuLabel(gpu) : id.length <= 12 ? id : `${id.slice(0, 10)}…`;
        const with_ = worker.enabled ? (shared.get(id) || []).filter((n) => n !== worker.name) : [];
        const detail = `${id}${gpu ? ` · ${gpu.model}` : ''}${with_.length ? ` · shared with ${with_.join(', ')}` : ''}`;
        return h(
          'li',
          { key: id, class: `gpu-chip ${with_.length ? 'gpu-chip-shared' : ''}`.trim(), title: detail },
          label,
        );
      }),
    );
  }

  function overlapNotice() {
    const agent = state.agent;
    const shared = [...claims(agent.workers).entries()].filter(([, names]) => names.length > 1);
    if (!shared.length) return null;
    const byId = new Map(agent.gpus.map((g) => [g.gpuId, g]));
    const label = (id) => (byId.has(id) ? gpuLabel(byId.get(id)) : id);
    const workers = new Set(shared.flatMap(([, names]) => names));
    return h(
      'div',
      { class: 'notice notice-warning overlap', role: 'note', id: 'gpu-overlap' },
      h(
        'p',
        {},
        h('strong', {}, `${plural(shared.length, 'GPU')} ${shared.length === 1 ? 'is' : 'are'} assigned to more than one worker`),
        ` (${shared.map(([id, names]) => `${label(id)}: ${names.join(', ')}`).join('; ')}).`,
      ),
      h(
        'p',
        { class: 'small' },
        `${plural(workers.size, 'worker')} share memory and compute there; set VRAM and compute limits, or edit the workers so each has its own GPUs.`,
      ),
    );
  }

  function workersSection() {
    const agent = state.agent;
    const now = Date.now();
    const shared = claims(agent.workers);
    const limit = workerLimit();
    const rows = agent.workers.map((w) => {
      const overlaps = w.enabled && w.gpuIds.some((id) => (shared.get(id) || []).length > 1);
      const stale = !w.agentOnline;
      return h(
        'tr',
        { key: w.id, 'data-worker': w.id, 'data-agent-online': String(w.agentOnline), class: stale ? 'stale' : null },
        h(
          'td',
          { 'data-label': 'Worker' },
          h('span', { class: 'strong worker-name', title: w.name }, w.name),
          w.isDefault ? h('span', { class: 'tag' }, 'default') : null,
          w.enabled ? null : h('span', { class: 'tag tag-muted' }, 'disabled'),
          overlaps ? h('span', { class: 'tag tag-warn', title: 'Shares a GPU with another worker' }, 'shared GPU') : null,
        ),
        h(
          'td',
          { 'data-label': 'Status' },
          badge(w.status, stale ? 'badge-stale' : ''),
          stale && agent.status !== 'PENDING' ? lastKnown(w.lastKnownAt, now) : null,
        ),
        h('td', { 'data-label': 'Port', class: 'num' }, String(w.listenPort)),
        h('td', { 'data-label': 'GPUs' }, gpuChips(w)),
        h('td', { 'data-label': 'Connections' }, connectionsCell(w)),
        h(
          'td',
          { class: 'row-actions' },
          h(
            'button',
            { type: 'button', class: 'btn btn-small btn-edit', onclick: () => openForm({ mode: 'edit', id: w.id }), 'aria-label': `Edit ${w.name}` },
            'Edit',
          ),
          h(
            'button',
            { type: 'button', class: 'btn btn-small', onclick: () => setEnabled(w, !w.enabled), 'aria-label': `${w.enabled ? 'Disable' : 'Enable'} ${w.name}` },
            w.enabled ? 'Disable' : 'Enable',
          ),
          w.enabled
            ? h(
                'button',
                { type: 'button', class: 'btn btn-small', onclick: () => restartWorker(w), 'aria-label': `Restart ${w.name}` },
                'Restart',
              )
            : null,
          h(
            'button',
            { type: 'button', class: 'btn btn-small', onclick: () => navigate(`/shares?worker=${encodeURIComponent(w.id)}`), 'aria-label': `Share ${w.name}` },
            'Share',
          ),
          h(
            'button',
            { type: 'button', class: 'btn btn-small btn-danger-ghost', onclick: () => deleteWorker(w), 'aria-label': `Delete ${w.name}` },
            'Delete',
          ),
        ),
      );
    });
    const full = limit && limit.full;
    return h(
      'section',
      { class: 'panel', 'aria-labelledby': 'workers-title' },
      h(
        'div',
        { class: 'panel-head' },
        h('h2', { id: 'workers-title', tabindex: '-1' }, 'Workers', h('span', { class: 'count' }, String(agent.workers.length))),
        state.form && state.form.mode === 'create'
          ? null
          : h(
              'button',
              {
                type: 'button',
                id: 'add-worker',
                class: 'btn btn-primary',
                // Full: the reason is said next to it before anything is filled in.
                'aria-disabled': full ? 'true' : null,
                'aria-describedby': limit ? 'worker-limit' : null,
                onclick: () => (full ? null : openForm({ mode: 'create' })),
              },
              'Add worker',
            ),
      ),
      limit
        ? h(
            'p',
            { id: 'worker-limit', class: `small worker-limit ${full ? 'worker-limit-full' : 'muted'}` },
            full
              ? `Your ${String(app.me.plan).toLowerCase()} plan's ${plural(limit.allowed, 'worker')} are all in use (over all machines): delete one, or change plans (see Settings) to add more.`
              : `${limit.used} of ${plural(limit.allowed, 'worker')} in use on your ${String(app.me.plan).toLowerCase()} plan (over all machines).`,
          )
        : null,
      overlapNotice(),
      state.form ? workerForm() : null,
      agent.workers.length
        ? h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              { class: 'table responsive', id: 'workers-table' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ['Worker', 'Status', 'Port', 'GPUs', 'Connections'].map((t) => h('th', { scope: 'col' }, t)),
                  h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
                ),
              ),
              h('tbody', {}, rows),
            ),
          )
        : emptyState('No workers', 'A worker exposes some of this machine’s GPUs on a TCP port.'),
    );
  }

  function gpusSection() {
    const agent = state.agent;
    const now = Date.now();
    const assignedTo = claims(agent.workers);
    return h(
      'section',
      { class: 'panel', 'aria-labelledby': 'gpus-title' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'gpus-title' }, 'GPUs', h('span', { class: 'count' }, String(agent.gpus.length)))),
      agent.gpus.length
        ? h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              { class: 'table responsive', id: 'gpus-table' },
              h('thead', {}, h('tr', {}, ['GPU', 'Model', 'VRAM', 'Driver', 'Used by'].map((t) => h('th', { scope: 'col' }, t)))),
              h(
                'tbody',
                {},
                agent.gpus.map((gpu) => {
                  const user = gpu.usedByWorker ? workerName(gpu.usedByWorker) || 'another worker' : null;
                  const assigned = assignedTo.get(gpu.gpuId) || [];
                  const stale = !gpu.agentOnline;
                  const long = gpu.gpuId !== gpuLabel(gpu);
                  return h(
                    'tr',
                    { key: gpu.gpuId, 'data-gpu': gpu.gpuId, 'data-agent-online': String(gpu.agentOnline), class: stale ? 'stale' : null },
                    h(
                      'td',
                      { 'data-label': 'GPU' },
                      h('span', { class: 'strong' }, gpuLabel(gpu)),
                      long
                        ? h(
                            'details',
                            { class: 'gpu-id' },
                            h('summary', { class: 'small muted' }, 'Full id'),
                            h('code', { class: 'small' }, gpu.gpuId),
                          )
                        : null,
                    ),
                    h('td', { 'data-label': 'Model' }, gpu.model, h('div', { class: 'muted small' }, gpu.vendor)),
                    h('td', { 'data-label': 'VRAM', class: 'num' }, vram(gpu.vramMb)),
                    h(
                      'td',
                      { 'data-label': 'Driver' },
                      gpu.driverVersion || '—',
                      gpu.cudaVersion ? h('div', { class: 'muted small' }, `CUDA ${gpu.cudaVersion}`) : null,
                    ),
                    h(
                      'td',
                      { 'data-label': 'Used by' },
                      user ? h('span', { class: 'strong' }, user) : h('span', { class: 'muted' }, stale ? 'Unknown' : 'Idle'),
                      stale && user ? lastKnown(gpu.lastKnownAt, now) : null,
                      assigned.length
                        ? h(
                            'div',
                            { class: 'muted small' },
                            `Assigned: ${assigned.join(', ')}`,
                            assigned.length > 1 ? h('span', { class: 'tag tag-warn' }, `shared by ${assigned.length}`) : null,
                          )
                        : null,
                    ),
                  );
                }),
              ),
            ),
          )
        : emptyState('No GPUs reported', null),
    );
  }

  function facts() {
    const agent = state.agent;
    const config = configState(agent);
    const now = Date.now();
    const configText =
      config.key === 'synced'
        ? `Up to date: the host runs configuration v${agent.configVersion} (fetched ${ago(agent.configFetchedAt, now)}).`
        : config.key === 'never'
          ? `The host has not fetched its configuration yet (v${agent.configVersion} is waiting).`
          : `Configuration v${agent.configVersion} is waiting: the host last fetched v${agent.fetchedConfigVersion} ${ago(agent.configFetchedAt, now)}.`;
    // Offline: what the host fetched is only known up to its last report.
    const offline = agent.status === 'OFFLINE';
    const syncKey = offline ? 'stale' : config.key;
    return h(
      'section',
      { class: 'panel facts', 'aria-label': 'Machine status' },
      h(
        'dl',
        { class: 'facts-grid' },
        h('div', {}, h('dt', {}, 'Status'), h('dd', {}, badge(agent.status), h('span', { class: 'muted small reason' }, agent.statusReason))),
        h(
          'div',
          {},
          h('dt', {}, 'Last seen'),
          h('dd', { class: 'num' }, h('time', { datetime: agent.lastSeenAt || '', title: dateTime(agent.lastSeenAt) }, ago(agent.lastSeenAt, now))),
        ),
        h('div', {}, h('dt', {}, 'System'), h('dd', {}, `${agent.os}/${agent.arch}`)),
        h('div', {}, h('dt', {}, 'Addresses'), h('dd', {}, agent.networkIps.length ? agent.networkIps.join(', ') : '—')),
        h('div', {}, h('dt', {}, 'Registered'), h('dd', {}, dateTime(agent.createdAt))),
        h(
          'div',
          { class: 'wide' },
          h('dt', {}, 'Name and tags'),
          h(
            'dd',
            { class: 'labels' },
            agent.displayName ? h('span', { class: 'strong', id: 'display-name' }, agent.displayName) : h('span', { class: 'muted' }, 'No display name'),
            agent.tags.map((tag) => h('span', { class: 'tag', key: tag }, tag)),
            h(
              'button',
              {
                type: 'button',
                id: 'edit-labels',
                class: 'btn btn-small',
                onclick: () =>
                  editLabels({
                    agent,
                    displayName: agent.displayName,
                    tags: agent.tags,
                    opener: () => root.querySelector('#edit-labels'),
                    onSaved: refresh,
                  }),
              },
              'Edit name and tags',
            ),
          ),
        ),
        h(
          'div',
          { class: 'wide' },
          h('dt', {}, 'Configuration'),
          h(
            'dd',
            {},
            h(
              'span',
              { class: `sync sync-${syncKey}`, id: 'config-sync', 'data-sync': syncKey },
              offline ? `Last known ${ago(agent.lastSeenAt, now)} (${dateTime(agent.lastSeenAt)}): ${configText}` : configText,
            ),
          ),
        ),
      ),
    );
  }

  /** Above the GPUs and workers of a machine that went quiet. */
  function offlineNotice() {
    const agent = state.agent;
    if (agent.status !== 'OFFLINE') return null;
    return h(
      'div',
      { class: 'notice notice-offline', role: 'status', id: 'offline-notice' },
      h(
        'p',
        {},
        h('strong', {}, `${agent.hostname} is offline.`),
        ' Its GPUs and workers below are shown as it last reported them, ',
        h('time', { datetime: agent.lastSeenAt || '', title: dateTime(agent.lastSeenAt) }, ago(agent.lastSeenAt)),
        ' (',
        dateTime(agent.lastSeenAt),
        '); clients are not counted as connected.',
      ),
    );
  }

  function draw() {
    if (state.loading) {
      render(root, h('div', {}, pageHeader('Machine', { crumbs: [['/', 'Overview']] }), skeleton(6)));
      return;
    }
    if (state.missing || !state.agent) {
      render(
        root,
        h(
          'div',
          {},
          pageHeader('Machine not found', { crumbs: [['/', 'Overview']] }),
          errorBox(state.error),
          emptyState(
            state.error ? 'Could not load this machine' : 'This machine does not exist (any more)',
            'It may have been deleted.',
            link('/', { class: 'btn' }, 'Back to the overview'),
          ),
        ),
      );
      return;
    }
    const agent = state.agent;
    render(
      root,
      h(
        'div',
        { class: 'agent', 'data-agent': agent.id },
        pageHeader(agent.hostname, {
          crumbs: [['/', 'Overview']],
          sub: agentTabs(agent.id, 'machine'),
        }),
        state.justRegistered
          ? h(
              'div',
              { class: 'notice notice-success', role: 'status' },
              h('strong', {}, `${agent.hostname} is registered.`),
              ' Its default worker starts once the agent has fetched its configuration.',
              h(
                'button',
                {
                  type: 'button',
                  class: 'btn btn-small btn-ghost',
                  'aria-label': 'Dismiss',
                  onclick() {
                    state.justRegistered = false;
                    draw();
                  },
                },
                '×',
              ),
            )
          : null,
        errorBox(state.error),
        facts(),
        offlineNotice(),
        gpusSection(),
        workersSection(),
        h(
          'section',
          { class: 'panel danger-zone', 'aria-labelledby': 'danger-title' },
          h('h2', { id: 'danger-title' }, 'Delete this machine'),
          h('p', { class: 'muted' }, 'Removes its GPUs, workers, share links and metrics from GPU Go.'),
          h('button', { type: 'button', class: 'btn btn-danger', onclick: deleteAgent }, 'Delete machine…'),
        ),
      ),
    );
    placeFocus();
  }

  draw();
  refresh();
  const stop = watch([{ query: AGENT_EVENTS, variables: { agentId } }], refresh);
  const ticker = setInterval(() => {
    if (state.agent) draw();
  }, 5000);
  return () => {
    stop();
    clearInterval(ticker);
  };
}
