// Small shared pieces: badges, fields, copy buttons, confirmation dialogs, toasts.

import { h } from './dom.js';
import { titleCase } from './format.js';

export function navigate(path) {
  if (location.hash !== `#${path}`) location.hash = `#${path}`;
}

export function link(path, props, ...children) {
  return h('a', { href: `#${path}`, ...props }, ...children);
}

const STATUS_HINT = {
  ONLINE: 'Reporting to the server',
  OFFLINE: 'Not heard from recently',
  PENDING: 'Registered, has not reported yet',
  RUNNING: 'Serving clients',
  STOPPING: 'Stopping on the host',
  STOPPED: 'Not running',
};

export function badge(status, extra = '') {
  const s = String(status || '').toUpperCase();
  return h(
    'span',
    { class: `badge badge-${s.toLowerCase()} ${extra}`.trim(), title: STATUS_HINT[s] || null },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    titleCase(s),
  );
}

export function emptyState(title, text, ...actions) {
  return h(
    'div',
    { class: 'empty' },
    h('p', { class: 'empty-title' }, title),
    text ? h('p', { class: 'muted' }, text) : null,
    actions.length ? h('div', { class: 'actions' }, ...actions) : null,
  );
}

export function errorBox(error) {
  if (!error) return h('div', { class: 'form-error', role: 'alert' });
  return h('div', { class: 'form-error shown', role: 'alert' }, error);
}

/**
 * A labelled form field: <label for=id>, the control, a hint and an error slot
 * (aria-describedby names both; aria-invalid when there is an error).
 */
export function field({ id, label, control, hint, error, className = '' }) {
  const described = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(' ');
  control.setAttribute('id', id);
  control.setAttribute('aria-describedby', described);
  if (error) control.setAttribute('aria-invalid', 'true');
  return h(
    'div',
    { class: `field ${className} ${error ? 'has-error' : ''}`.trim() },
    h('label', { for: id }, label),
    control,
    hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null,
    h('p', { class: 'field-error', id: `${id}-error` }, error || ''),
  );
}

/** The same for a group of checkboxes (<fieldset> + <legend>). */
export function fieldset({ id, legend, children, hint, error }) {
  return h(
    'fieldset',
    {
      class: `field ${error ? 'has-error' : ''}`.trim(),
      id,
      'aria-describedby': `${id}-error`,
      'aria-invalid': error ? 'true' : null,
    },
    h('legend', {}, legend),
    h('div', { class: 'checks' }, children),
    hint ? h('p', { class: 'hint' }, hint) : null,
    h('p', { class: 'field-error', id: `${id}-error` }, error || ''),
  );
}

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the selection-based copy
    }
  }
  const area = h('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
  area.value = text;
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A button that copies `text`; says so in place and to screen readers. */
export function copyButton(text, label = 'Copy', props = {}) {
  return h(
    'button',
    {
      type: 'button',
      class: 'btn btn-small btn-copy',
      ...props,
      async onclick(event) {
        const button = event.currentTarget;
        const ok = await copyText(text);
        const original = label;
        button.textContent = ok ? 'Copied' : 'Select & copy';
        toast(ok ? 'Copied to the clipboard.' : 'Copy failed: select the text and copy it.');
        setTimeout(() => {
          if (button.textContent !== original) button.textContent = original;
        }, 1600);
      },
    },
    label,
  );
}

export function toast(message, kind = 'info') {
  const holder = document.getElementById('toasts');
  if (!holder) return;
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : null }, message);
  holder.appendChild(item);
  setTimeout(() => item.classList.add('leaving'), 3600);
  setTimeout(() => item.remove(), 4000);
}

/**
 * A modal confirmation (<dialog>: focus stays inside, Escape cancels). Resolves true
 * when confirmed.
 */
export function confirmDialog({ title, body, confirmLabel, danger = true }) {
  return new Promise((resolve) => {
    let result = false;
    const dialog = h(
      'dialog',
      { class: 'dialog', 'aria-labelledby': 'dialog-title', 'aria-describedby': 'dialog-body' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'dialog-title' }, title),
        h('div', { id: 'dialog-body', class: 'dialog-body' }, body),
        h(
          'div',
          { class: 'actions end' },
          h('button', { type: 'submit', class: 'btn', value: 'cancel', autofocus: true }, 'Cancel'),
          h(
            'button',
            {
              type: 'submit',
              class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`,
              value: 'confirm',
              onclick() {
                result = true;
              },
            },
            confirmLabel,
          ),
        ),
      ),
    );
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}

export function pageHeader(title, { crumbs = [], actions = [], sub = null } = {}) {
  return h(
    'div',
    { class: 'page-header' },
    crumbs.length
      ? h(
          'nav',
          { class: 'crumbs', 'aria-label': 'Breadcrumb' },
          crumbs.map(([path, text]) => [link(path, {}, text), h('span', { 'aria-hidden': 'true' }, ' / ')]),
        )
      : null,
    h(
      'div',
      { class: 'page-title-row' },
      h('h1', { tabindex: '-1' }, title),
      actions.length ? h('div', { class: 'actions' }, ...actions) : null,
    ),
    sub,
  );
}

/** A usage meter: "3 of 8 GPUs". */
export function meter({ label, used, allowed }) {
  const ratio = allowed > 0 ? Math.min(1, used / allowed) : 0;
  const level = ratio >= 1 ? 'full' : ratio >= 0.8 ? 'high' : 'ok';
  return h(
    'div',
    { class: `meter meter-${level}` },
    h(
      'div',
      { class: 'meter-label' },
      h('span', {}, label),
      h('span', { class: 'num' }, `${used} / ${allowed}`),
    ),
    h(
      'div',
      {
        class: 'meter-track',
        role: 'meter',
        'aria-label': label,
        'aria-valuemin': '0',
        'aria-valuemax': String(allowed),
        'aria-valuenow': String(used),
      },
      h('div', { class: `meter-fill w${Math.round(ratio * 20) * 5}` }),
    ),
  );
}

export function skeleton(lines = 3, className = '') {
  return h(
    'div',
    { class: `skeleton ${className}`.trim(), 'aria-busy': 'true', 'aria-label': 'Loading' },
    Array.from({ length: lines }, () => h('div', { class: 'skeleton-line' })),
  );
}
