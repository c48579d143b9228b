// A machine's display name and tags, edited in a dialog. The limits are said before
// anything is typed; every problem shows at once, at its field, in plain words; focus goes
// to the first field to fix, and back to the control that opened the dialog when it closes.

import { h, render } from './dom.js';
import { charCount, focusFirstInvalid, focusOpener, formDialog, noErrors, serverErrors } from './forms.js';
import { gql } from './gql.js';
import { errorBox, field, toast } from './ui.js';

const SET_LABELS = `mutation SetAgentLabels($id: ID!, $input: AgentLabelsInput!) {
  setAgentLabels(id: $id, input: $input) { agentId displayName tags }
}`;
// The server's limits (gpugo/inputs/agent_labels.py), checked here too so that every
// problem shows at once; the server still decides.
const MAX_NAME = 100;
const MAX_TAGS = 16;
const MAX_TAG = 32;
// Letters and digits of any script, _ . : / - (what Python's [\w.:/-] takes).
const TAG = new RegExp(`^[\\p{L}\\p{N}_.:/-]{1,${MAX_TAG}}$`, 'u');
const TAG_RULE = `1 to ${MAX_TAG} letters, digits or . _ : / -`;

/** The tags typed: split at commas, trimmed, a tag written twice (any case) kept once. */
export function readTags(text) {
  const seen = new Set();
  const tags = [];
  for (const raw of text.split(',')) {
    const tag = raw.trim();
    if (!tag || seen.has(tag.toLowerCase())) continue;
    seen.add(tag.toLowerCase());
    tags.push(tag);
  }
  return tags;
}

function quoted(values) {
  const shown = values.slice(0, 3).map((v) => `“${v}”`);
  if (values.length > 3) shown.push(`${values.length - 3} more`);
  return shown.length > 1 ? `${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]}` : shown[0];
}

/** What the page can see wrong itself, per field. */
function check(displayName, tags) {
  const fields = {};
  const nameLength = charCount(displayName);
  if (nameLength > MAX_NAME) fields.displayName = `Use at most ${MAX_NAME} characters (this name has ${nameLength}).`;
  const problems = [];
  const bad = tags.filter((tag) => !TAG.test(tag));
  if (bad.length) {
    problems.push(`${quoted(bad)} ${bad.length === 1 ? 'is not a tag' : 'are not tags'}: a tag is ${TAG_RULE}.`);
  }
  if (tags.length > MAX_TAGS) problems.push(`Use at most ${MAX_TAGS} tags (there are ${tags.length}).`);
  if (problems.length) fields.tags = problems.join(' ');
  return fields;
}

/**
 * The dialog for `agent` ({id, hostname}) with its `displayName` and `tags`. After a save,
 * `onSaved(labels)` (awaited). `opener()` finds the control that opened it (again: a live
 * update may have redrawn it), which gets focus back when the dialog closes.
 */
export function editLabels({ agent, displayName, tags, opener, onSaved }) {
  const { dialog, show } = formDialog({ className: 'labels-dialog', labelledBy: 'labels-title', opener });
  let errors = noErrors();
  let busy = false;

  async function save(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const input = { displayName: form.displayName.value, tags: readTags(form.tags.value) };
    errors = { fields: check(input.displayName, input.tags), message: null };
    if (!Object.keys(errors.fields).length) {
      busy = true;
      paint();
      try {
        const saved = (await gql(SET_LABELS, { id: agent.id, input })).setAgentLabels;
        dialog.close();
        toast(`Name and tags of ${agent.hostname} saved.`);
        if (onSaved) await onSaved(saved);
        // The redraw may have taken focus away with the node that had it.
        if (document.activeElement === document.body) focusOpener(opener);
        return;
      } catch (error) {
        errors = serverErrors(error, {
          fields: ['displayName', 'tags'],
          say: { not_found: () => 'This machine no longer exists (it may have been deleted).' },
        });
      }
      busy = false;
    }
    paint();
    focusFirstInvalid(dialog);
  }

  function paint() {
    render(
      dialog,
      h(
        'form',
        { novalidate: true, onsubmit: save },
        h('h2', { id: 'labels-title' }, `Name and tags of ${agent.hostname}`),
        field({
          id: 'labels-name',
          label: 'Display name',
          // No maxlength: a longer name pasted in is said to be too long, not cut silently.
          control: h('input', { name: 'displayName', type: 'text', value: displayName || '', autocomplete: 'off' }),
          hint: `Up to ${MAX_NAME} characters, shown instead of the host name (${agent.hostname}, which stays). Empty: the host name.`,
          error: errors.fields.displayName,
        }),
        field({
          id: 'labels-tags',
          label: 'Tags',
          control: h('input', { name: 'tags', type: 'text', value: tags.join(', '), autocomplete: 'off', spellcheck: 'false' }),
          hint: `Up to ${MAX_TAGS}, separated by commas; each ${TAG_RULE} (e.g. rack-3, a100).`,
          error: errors.fields.tags,
        }),
        errorBox(errors.message),
        h(
          'div',
          { class: 'actions end' },
          h('button', { type: 'button', class: 'btn', onclick: () => dialog.close() }, 'Cancel'),
          h('button', { type: 'submit', class: 'btn btn-primary', disabled: busy }, 'Save'),
        ),
      ),
    );
  }

  paint();
  show();
  dialog.querySelector('#labels-name').focus();
}
