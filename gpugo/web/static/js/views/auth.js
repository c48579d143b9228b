// Sign up and log in.

import { h, render } from '../dom.js';
import { focusFirstInvalid, serverErrors } from '../forms.js';
import { gql } from '../gql.js';
import { errorBox, field, link } from '../ui.js';

const USER = 'id email plan createdAt usage { gpusUsed gpusAllowed workersUsed workersAllowed metricsIncluded }';
const LOGIN = `mutation Login($input: CredentialsInput!) { login(input: $input) { ${USER} } }`;
const SIGNUP = `mutation Signup($input: CredentialsInput!) { signup(input: $input) { ${USER} } }`;

// What the server's refusal says, at the fields or above the button.
function authErrors(error, mode) {
  return serverErrors(error, {
    fields: ['email', 'password'],
    at: { conflict: 'email' },
    say: {
      unauthorized: () => 'Wrong e-mail or password.',
      rate_limited: (e) => `Too many attempts.${e.retryAfter ? ` Try again in ${e.retryAfter} s.` : ' Try again in a minute.'}`,
      forbidden: (e) => (mode === 'signup' ? 'Sign-up is closed on this server. Ask its operator for an account.' : e.message),
    },
  });
}

function authPage(mode) {
  return ({ root, app }) => {
    const state = { busy: false, error: null, fields: {}, lockedUntil: 0 };
    let timer = null;
    const isSignup = mode === 'signup';

    async function submit(event) {
      event.preventDefault();
      const form = event.currentTarget;
      const input = { email: form.email.value.trim(), password: form.password.value };
      state.busy = true;
      state.error = null;
      state.fields = {};
      draw();
      try {
        const data = await gql(isSignup ? SIGNUP : LOGIN, { input }, { auth: false });
        app.signedIn(isSignup ? data.signup : data.login);
      } catch (error) {
        const said = authErrors(error, mode);
        state.error = said.message;
        state.fields = said.fields;
        if (error.code === 'rate_limited') {
          state.lockedUntil = Date.now() + (error.retryAfter || 60) * 1000;
          clearInterval(timer);
          timer = setInterval(() => {
            if (Date.now() >= state.lockedUntil) {
              clearInterval(timer);
              state.error = null;
            } else {
              const left = Math.ceil((state.lockedUntil - Date.now()) / 1000);
              state.error = `Too many attempts. Try again in ${left} s.`;
            }
            draw();
          }, 1000);
        }
        state.busy = false;
        draw();
        focusFirstInvalid(form);
      }
    }

    function draw() {
      const locked = Date.now() < state.lockedUntil;
      render(
        root,
        h(
          'section',
          { class: 'auth-card panel' },
          h('div', { class: 'auth-brand' }, h('img', { src: '/ui/favicon.svg', alt: '', width: 40, height: 40 }), h('span', {}, 'GPU Go')),
          h('h1', { tabindex: '-1' }, isSignup ? 'Create your account' : 'Log in'),
          h(
            'form',
            { class: 'form', novalidate: true, onsubmit: submit, 'aria-describedby': 'auth-error' },
            field({
              id: 'auth-email',
              label: 'E-mail',
              control: h('input', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
              error: state.fields.email,
            }),
            field({
              id: 'auth-password',
              label: 'Password',
              control: h('input', {
                name: 'password',
                type: 'password',
                autocomplete: isSignup ? 'new-password' : 'current-password',
                required: true,
                minlength: isSignup ? 8 : null,
              }),
              hint: isSignup ? 'At least 8 characters.' : null,
              error: state.fields.password,
            }),
            h('div', { id: 'auth-error' }, errorBox(state.error)),
            h(
              'button',
              { type: 'submit', class: 'btn btn-primary btn-block', disabled: state.busy || locked },
              state.busy ? 'Please wait…' : isSignup ? 'Create account' : 'Log in',
            ),
          ),
          h(
            'p',
            { class: 'auth-switch' },
            isSignup ? 'Already have an account? ' : 'New to GPU Go? ',
            link(isSignup ? '/login' : '/signup', {}, isSignup ? 'Log in' : 'Create an account'),
          ),
        ),
      );
    }

    draw();
    return () => clearInterval(timer);
  };
}

export const login = authPage('login');
export const signup = authPage('signup');
export const USER_FIELDS = USER;
