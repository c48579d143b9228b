// Building DOM without innerHTML (user data is always text), and updating it in place.
//
// h('button', {class: 'btn', onclick: fn}, 'Save') builds an element; morph(old, fresh)
// makes `old` look like `fresh` while keeping the nodes that stay, so focus, text
// selection, open <details> and what the user typed survive a live update.

const SVG_NS = 'http://www.w3.org/2000/svg';

function dispatch(event) {
  const handler = this._on && this._on[event.type];
  if (handler) handler.call(this, event);
}

function setEvents(el, on) {
  el._on = el._on || {};
  for (const name of Object.keys(on)) {
    if (!(name in el._on)) el.addEventListener(name, dispatch);
  }
  for (const name of Object.keys(el._on)) {
    if (!(name in on)) el._on[name] = null;
  }
  Object.assign(el._on, on);
}

function build(el, props, children) {
  const on = {};
  for (const [name, value] of Object.entries(props || {})) {
    if (name.startsWith('on') && typeof value === 'function') {
      on[name.slice(2).toLowerCase()] = value;
    } else if (name === 'key') {
      if (value != null) el.setAttribute('data-key', String(value));
    } else if (name === 'ref') {
      value(el);
    } else if (value === true) {
      el.setAttribute(name, '');
    } else if (value !== false && value != null) {
      el.setAttribute(name, String(value));
    }
  }
  setEvents(el, on);
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false || child === true) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** An HTML element. */
export function h(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

/** An SVG element. */
export function s(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

function keyOf(node) {
  return node.nodeType === 1 ? node.getAttribute('data-key') : null;
}

function sameKind(a, b) {
  return a.nodeType === b.nodeType && a.nodeName === b.nodeName && keyOf(a) === keyOf(b);
}

// Attributes the browser or the user changes on their own: never taken away by a morph.
const OWN_STATE = { DIALOG: ['open'], DETAILS: ['open'] };

function syncAttributes(from, to) {
  const keep = OWN_STATE[from.nodeName.toUpperCase()] || [];
  for (const attr of Array.from(from.attributes)) {
    if (!to.hasAttribute(attr.name) && !keep.includes(attr.name)) from.removeAttribute(attr.name);
  }
  for (const attr of Array.from(to.attributes)) {
    if (keep.includes(attr.name)) continue;
    if (from.getAttribute(attr.name) !== attr.value) from.setAttribute(attr.name, attr.value);
  }
}

function update(from, to) {
  if (from.nodeType !== 1) {
    if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
    return;
  }
  syncAttributes(from, to);
  setEvents(from, to._on || {});
  if (from.hasAttribute('data-own')) return; // its children are managed by someone else
  const tag = from.nodeName.toUpperCase();
  if (tag === 'TEXTAREA') return;
  morphChildren(from, to);
}

function morphChildren(from, to) {
  const keyed = new Map();
  for (const child of Array.from(from.childNodes)) {
    const key = keyOf(child);
    if (key != null) keyed.set(key, child);
  }
  let ref = from.firstChild;
  for (const fresh of Array.from(to.childNodes)) {
    const key = keyOf(fresh);
    let match = null;
    if (key != null) {
      match = keyed.get(key) || null;
      if (match && match.nodeName !== fresh.nodeName) match = null;
      if (match) keyed.delete(key);
    } else if (ref && sameKind(ref, fresh)) {
      match = ref;
    }
    if (match) {
      if (match === ref) ref = ref.nextSibling;
      else from.insertBefore(match, ref);
      update(match, fresh);
    } else {
      from.insertBefore(fresh, ref);
    }
  }
  while (ref) {
    const next = ref.nextSibling;
    from.removeChild(ref);
    ref = next;
  }
}

/** Make `el`'s children those of `fresh` (a node or an array of nodes), in place. */
export function render(el, fresh) {
  const holder = document.createElement(el.nodeName);
  append(holder, [fresh]);
  morphChildren(el, holder);
}

/** Replace `el`'s children outright (a new page). */
export function replace(el, fresh) {
  el.textContent = '';
  append(el, [fresh]);
}
