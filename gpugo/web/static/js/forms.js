// A form's problems, said the same way by every form: each field's in plain words at that
// field (the error slot of ui.field / ui.fieldset), all of them at once, what concerns no
// field in the form's box (ui.errorBox), and focus on the first field to fix.
//
// A form keeps {fields: {name: message}, message} in its state: its own checks fill it
// before anything is sent, serverErrors() from the server's refusal, and its draw shows it.

import { h } from './dom.js';

/** Focus back on the control that opened a dialog: `opener()` finds it again (a redraw
 * may have replaced it meanwhile). */
export function focusOpener(opener) {
  const el = opener && opener();
  if (el && el.isConnected) el.focus();
}

/**
 * A modal dialog for a form (`className`, titled by the element `labelledBy`). Drawn by
 * the caller, then `show()`n; closed by Save, Cancel or Escape alike, it goes and focus
 * returns to `opener()`.
 */
export function formDialog({ className, labelledBy, opener }) {
  const dialog = h('dialog', { class: `dialog ${className}`, 'aria-labelledby': labelledBy });
  dialog.addEventListener('close', () => {
    dialog.remove();
    focusOpener(opener);
  });
  return {
    dialog,
    show() {
      document.body.appendChild(dialog);
      dialog.showModal();
    },
  };
}

/** A form with nothing to say. */
export function noErrors() {
  return { fields: {}, message: null };
}

/** True when the form has something to say (at a field or in its box). */
export function hasErrors(errors) {
  return Boolean(errors.message) || Object.keys(errors.fields).length > 0;
}

/**
 * The server's refusal (a GqlError) as the form's {fields, message}.
 *
 * `fields`: the names of the form's fields as the server's `details` name them (GraphQL
 * input names: listenPort, maxUses); the server checks the whole input and names every
 * bad field, so all of them show at once. A detail about a field the form does not show,
 * and an error about no field, go to the box. `at`: codes said at a field
 * ({conflict: 'listenPort'}). `say`: codes worded for the box ({plan_limit_exceeded:
 * (error) => ...}; null: nothing in the box).
 */
export function serverErrors(error, { fields: shown = [], at = {}, say = {} } = {}) {
  const fields = {};
  const elsewhere = [];
  for (const [name, text] of Object.entries(error.fields || {})) {
    if (shown.includes(name)) fields[name] = text;
    else elsewhere.push(text);
  }
  let message = null;
  if (at[error.code]) fields[at[error.code]] = error.message;
  else if (error.code in say) message = say[error.code](error);
  else if (error.code !== 'validation_error') message = error.message;
  else if (!Object.keys(fields).length && !elsewhere.length) message = error.message;
  if (!message && elsewhere.length) message = elsewhere.join(' ');
  return { fields, message };
}

/**
 * Focus the first control marked invalid inside `scope` (for a group of checkboxes, its
 * first box). True when there was one.
 */
export function focusFirstInvalid(scope) {
  const bad = scope && scope.querySelector('[aria-invalid="true"]');
  if (!bad) return false;
  const target = bad.matches('fieldset') ? bad.querySelector('input, select, textarea') || bad : bad;
  target.focus();
  return true;
}

/** "at most 100 characters" counted as the server counts them (code points, not UTF-16). */
export function charCount(text) {
  return [...text].length;
}
