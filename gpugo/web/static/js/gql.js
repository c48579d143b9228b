// GraphQL over HTTP: one POST /graphql per operation, with the session cookie.
// The browser sends this page's Origin with it, which the server's CSRF rule needs.

export class GqlError extends Error {
  constructor(errors, status = 200) {
    super((errors[0] && errors[0].message) || 'Request failed.');
    this.errors = errors;
    this.status = status;
    const ext = (errors[0] && errors[0].extensions) || {};
    this.code = ext.code || 'error';
    this.retryAfter = ext.retryAfter;
  }

  /** {field: message} from validation details (GraphQL argument names, e.g. listenPort). */
  get fields() {
    const out = {};
    for (const error of this.errors) {
      for (const detail of (error.extensions && error.extensions.details) || []) {
        const field = String(detail.field || '').replace(/^input\./, '');
        const base = field.replace(/\[\d+\]$/, '');
        if (!(base in out)) out[base] = detail.message;
      }
    }
    return out;
  }
}

const listeners = { unauthorized: [], forbidden: [] };

/** Called when any request finds the session gone (e.g. logged out in another tab). */
export function onAuthLost(fn) {
  listeners.unauthorized.push(fn);
}

/** Called when the server refuses this page's origin (CSRF rule). */
export function onForbiddenOrigin(fn) {
  listeners.forbidden.push(fn);
}

/**
 * Run one operation. Resolves to `data`; rejects with a GqlError carrying the server's
 * extensions.code. `{auth: false}` for login/signup, whose `unauthorized` is an answer.
 */
export async function gql(query, variables = {}, { auth = true } = {}) {
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new GqlError([
      {
        message: 'The server cannot be reached. Check the connection and try again.',
        extensions: { code: 'network_error' },
      },
    ]);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GqlError(
      [
        {
          message: `Unexpected answer from the server (HTTP ${response.status}).`,
          extensions: { code: 'http_error' },
        },
      ],
      response.status,
    );
  }
  if (body.errors && body.errors.length) {
    const error = new GqlError(body.errors, response.status);
    if (response.status === 403 && error.code === 'forbidden') {
      listeners.forbidden.forEach((fn) => fn(error));
    } else if (auth && error.code === 'unauthorized') {
      listeners.unauthorized.forEach((fn) => fn(error));
    }
    throw error;
  }
  return body.data;
}
