// The dashboard shell: session, top bar, hash router. Every page is a module whose
// mount({root, params, query, app}) draws into `root` and returns its cleanup.

import { h, render, replace } from './dom.js';
import { gql, onAuthLost, onForbiddenOrigin } from './gql.js';
import { onFallback } from './live.js';
import { navigate, toast } from './ui.js';
import { client } from './ws.js';
import * as activity from './views/activity.js';
import * as agent from './views/agent.js';
import * as auth from './views/auth.js';
import * as metrics from './views/metrics.js';
import * as notifications from './views/notifications.js';
import * as onboard from './views/onboard.js';
import * as overview from './views/overview.js';
import * as settings from './views/settings.js';
import * as shares from './views/shares.js';

const ME = `query Me { me { ${auth.USER_FIELDS} } }`;
const LOGOUT = 'mutation Logout { logout }';

const ROUTES = [
  { pattern: /^\/login$/, view: auth.login, title: 'Log in', public: true },
  { pattern: /^\/signup$/, view: auth.signup, title: 'Sign up', public: true },
  { pattern: /^\/$/, view: overview.mount, title: 'Overview', nav: '/' },
  { pattern: /^\/add$/, view: onboard.mount, title: 'Add a GPU machine', nav: '/add' },
  { pattern: /^\/agents\/([^/]+)$/, view: agent.mount, title: 'Machine', nav: '/' },
  { pattern: /^\/agents\/([^/]+)\/metrics$/, view: metrics.mount, title: 'Metrics', nav: '/' },
  { pattern: /^\/shares$/, view: shares.mount, title: 'Shares', nav: '/shares' },
  { pattern: /^\/activity$/, view: activity.mount, title: 'Activity', nav: '/activity' },
  { pattern: /^\/notifications$/, view: notifications.mount, title: 'Notifications', nav: '/notifications' },
  { pattern: /^\/settings$/, view: settings.mount, title: 'Settings', nav: '/settings' },
];

const NAV = [
  ['/', 'Overview'],
  ['/add', 'Add machine'],
  ['/shares', 'Shares'],
  ['/activity', 'Activity'],
  ['/notifications', 'Notifications'],
  ['/settings', 'Settings'],
];

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');
const banner = document.getElementById('banner');

const app = {
  me: null,
  current: null,
  liveState: 'idle',
  fallback: null,
  async refreshMe() {
    const data = await gql(ME);
    app.me = data.me;
    drawTopbar();
    return app.me;
  },
  signedIn(user) {
    app.me = user;
    const next = sessionStorage.getItem('gpugo.next');
    sessionStorage.removeItem('gpugo.next');
    drawTopbar();
    if (next && next !== location.hash.slice(1)) navigate(next);
    else if (['/login', '/signup'].includes(parse().path)) navigate('/');
    else route();
  },
  signedOut() {
    app.me = null;
    client().close();
    drawTopbar();
    navigate('/login');
  },
};

function parse() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, search = ''] = raw.split('?');
  return { path: path || '/', query: new URLSearchParams(search) };
}

async function logout() {
  try {
    await gql(LOGOUT);
  } catch {
    // the session may be gone already; signed out either way
  }
  app.signedOut();
  toast('You are logged out.');
}

function liveLabel() {
  if (app.fallback === 'polling') return ['polling', 'Auto-refresh'];
  switch (app.liveState) {
    case 'live':
      return ['live', 'Live'];
    case 'connecting':
      return ['connecting', 'Connecting…'];
    case 'reconnecting':
    case 'closed':
      return ['reconnecting', 'Reconnecting…'];
    default:
      return ['idle', ''];
  }
}

function drawTopbar() {
  const { path } = parse();
  const current = ROUTES.find((r) => r.pattern.test(path));
  const [liveKey, liveText] = liveLabel();
  render(
    topbar,
    h(
      'div',
      { class: 'topbar-inner' },
      h(
        'a',
        { class: 'brand', href: app.me ? '#/' : '#/login' },
        h('img', { src: '/ui/favicon.svg', alt: '', width: 24, height: 24 }),
        h('span', {}, 'GPU Go'),
      ),
      app.me
        ? h(
            'nav',
            { class: 'nav', 'aria-label': 'Main' },
            NAV.map(([href, text]) =>
              h(
                'a',
                { href: `#${href}`, 'aria-current': current && current.nav === href ? 'page' : null },
                text,
              ),
            ),
          )
        : null,
      app.me
        ? h(
            'div',
            { class: 'account' },
            h(
              'span',
              { class: `live live-${liveKey}`, 'data-live': liveKey, title: 'Live updates' },
              h('span', { class: 'dot', 'aria-hidden': 'true' }),
              liveText,
            ),
            h('span', { class: 'email', title: app.me.email }, app.me.email),
            h('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: logout }, 'Log out'),
          )
        : null,
    ),
  );
}

let firstRoute = true;

async function route() {
  const { path, query } = parse();
  const match = ROUTES.find((r) => r.pattern.test(path));
  if (!match) {
    navigate(app.me ? '/' : '/login');
    return;
  }
  if (!match.public && !app.me) {
    sessionStorage.setItem('gpugo.next', path + (query.toString() ? `?${query}` : ''));
    navigate('/login');
    return;
  }
  if (match.public && app.me) {
    navigate('/');
    return;
  }
  if (app.current) app.current();
  app.current = null;
  document.title = `${match.title} · GPU Go`;
  drawTopbar();
  const root = h('div', { class: 'page' });
  replace(main, root);
  const params = path.match(match.pattern).slice(1).map(decodeURIComponent);
  app.current = match.view({ root, params, query, app }) || null;
  if (!firstRoute) {
    const heading = main.querySelector('h1');
    (heading || main).focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  firstRoute = false;
}

function showOriginBanner() {
  const meta = document.querySelector('meta[name="gpugo-public-origin"]');
  const expected = meta ? meta.content : '';
  const text =
    expected && expected !== location.origin
      ? [
          'This server accepts the dashboard only at its public address. Open ',
          h('a', { href: `${expected}/` }, `${expected}/`),
          ' instead (or set GPUGO_PUBLIC_URL to this address).',
        ]
      : 'The server refused this page’s requests (its origin check failed).';
  render(banner, h('div', { class: 'banner banner-error', role: 'alert' }, text));
}

async function start() {
  onAuthLost(() => {
    if (app.me) {
      toast('Your session has ended. Please log in again.', 'error');
      app.signedOut();
    }
  });
  onForbiddenOrigin(showOriginBanner);
  client().onState((state) => {
    app.liveState = state;
    if (app.me) drawTopbar();
  });
  onFallback((mode) => {
    app.fallback = mode;
    if (app.me) drawTopbar();
  });
  try {
    await app.refreshMe();
  } catch (error) {
    app.me = null;
    if (error.code !== 'unauthorized') console.warn(error);
  }
  window.addEventListener('hashchange', route);
  route();
}

start();
