// A test OpenID provider (oidc-provider) for pinniped's OIDC login tests.
//
//   node provider.mjs --cert FILE --key FILE [options]
//
//   --port N                 port on 127.0.0.1; 0 (default) picks a free one
//   --cert FILE, --key FILE  TLS certificate (chain) and key, PEM
//                            (or env PINNIPED_TEST_OIDC_CERT / PINNIPED_TEST_OIDC_KEY)
//   --jwks FILE              {"keys":[private JWKs]}: the signing keys. The first
//                            key signs ID tokens; jwks_uri publishes all of them.
//                            (or env PINNIPED_TEST_OIDC_JWKS; without it, one RSA
//                            key is made at start)
//   --issuer-path /P         issuer is https://127.0.0.1:PORT/P (default: none)
//   --users FILE             {"users":[{username, password, sub, email,
//                            email_verified, groups}]} replaces alice and bob
//   --id-token-ttl S         default 300
//   --access-token-ttl S     default 300
//   --refresh-token-ttl S    default 86400
//   --device-code-ttl S      default 600
//   --lifetime S             exit by itself after S seconds (default 0: never)
//
// Once listening it prints exactly one line to stdout:
//   {"issuer":"https://127.0.0.1:PORT[/P]","port":PORT}
// Everything else goes to stderr, never a token or a password. SIGTERM and
// SIGINT close the server and exit 0.
//
// Client `pinniped-cli`: public, native, code + refresh_token + device_code,
// redirect_uri http://127.0.0.1/callback on any port (oidc-provider ignores the
// port of a loopback http redirect for native clients, RFC 8252 7.3), PKCE S256
// required. Login and consent are our own small pages (below) that check the
// password, so a wrong password fails.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const log = (...a) => console.error('provider:', ...a);
const die = (msg) => { log(msg); process.exit(2); };
// a bad flag or an unreadable file ends the process with one line, not a stack
process.on('uncaughtException', (err) => die(err.message));

const { values: opt } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    cert: { type: 'string', default: process.env.PINNIPED_TEST_OIDC_CERT },
    key: { type: 'string', default: process.env.PINNIPED_TEST_OIDC_KEY },
    jwks: { type: 'string', default: process.env.PINNIPED_TEST_OIDC_JWKS },
    'issuer-path': { type: 'string', default: '' },
    users: { type: 'string' },
    'id-token-ttl': { type: 'string', default: '300' },
    'access-token-ttl': { type: 'string', default: '300' },
    'refresh-token-ttl': { type: 'string', default: '86400' },
    'device-code-ttl': { type: 'string', default: '600' },
    lifetime: { type: 'string', default: '0' },
  },
});

const seconds = (name) => {
  const n = Number(opt[name]);
  if (!Number.isInteger(n) || n < 0) die(`--${name} wants a whole number of seconds`);
  return n;
};
if (!opt.cert || !opt.key) die('--cert and --key are required');
const prefix = opt['issuer-path'].replace(/\/+$/, '');
if (prefix && !/^\/[A-Za-z0-9._~/-]+$/.test(prefix)) die('--issuer-path must look like /oidc');

const USERS = opt.users ? JSON.parse(fs.readFileSync(opt.users, 'utf8')).users : [
  { username: 'alice', password: 'alice-password', sub: 'sub-alice', email: 'alice@example.com', email_verified: true, groups: ['devs', 'ops'] },
  { username: 'bob', password: 'bob-password', sub: 'sub-bob', email: 'bob@example.com', email_verified: false, groups: ['devs'] },
];
const userBySub = (sub) => USERS.find((u) => (u.sub || u.username) === sub);

// Signing keys. The client's ID-token alg follows the first key, and the
// keystore picks the first key of that type, so the first key signs.
let jwks;
if (opt.jwks) {
  jwks = JSON.parse(fs.readFileSync(opt.jwks, 'utf8'));
} else {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  jwks = { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'generated-rsa' }] };
}
if (!Array.isArray(jwks.keys) || !jwks.keys.length) die('--jwks: no keys');
const algOf = (k) => k.alg || (k.kty === 'RSA' ? 'RS256'
  : { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[k.crv]);
const signingAlg = algOf(jwks.keys[0]);
if (!signingAlg) die('--jwks: the first key must be RSA or EC P-256/384/521');

const ttl = {
  IdToken: seconds('id-token-ttl'),
  AccessToken: seconds('access-token-ttl'),
  RefreshToken: seconds('refresh-token-ttl'),
  DeviceCode: seconds('device-code-ttl'),
  AuthorizationCode: 60,
  Interaction: 600,
  Session: 3600,
};
ttl.Grant = Math.max(ttl.RefreshToken, ttl.AccessToken, ttl.Session);

// Plain pages with no outside resources (the built-in ones load web fonts,
// which a machine with no network waits for).
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body>${body}</body></html>`;

const configuration = {
  clients: [{
    client_id: 'pinniped-cli',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    id_token_signed_response_alg: signingAlg,
  }],
  jwks,
  findAccount: (ctx, sub) => {
    const u = userBySub(sub);
    return u && {
      accountId: sub,
      claims: () => ({
        sub,
        username: u.username,
        preferred_username: u.username,
        email: u.email,
        email_verified: u.email_verified,
        groups: u.groups,
      }),
    };
  },
  // Which scope releases which claims; conformIdTokenClaims: false puts them
  // in the ID token itself, not only in the userinfo response.
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username'],
    groups: ['groups'],
    username: ['username'],
  },
  conformIdTokenClaims: false,
  // Pinniped's CLI asks for this one; granted, with no effect here.
  scopes: ['openid', 'offline_access', 'pinniped:request-audience'],
  responseTypes: ['code'],
  pkce: { methods: ['S256'], required: () => true },
  // A refresh token only with offline_access (the default rule), rotated on
  // every use; presenting a used one fails and revokes the whole grant.
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  rotateRefreshToken: true,
  enabledJWA: { idTokenSigningAlgValues: ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'ES512'] },
  ttl,
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  interactions: { url: (ctx, interaction) => `${prefix}/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    deviceFlow: {
      enabled: true,
      userCodeInputSource: (ctx, form, out, err) => {
        const msg = err ? `<p id="op-error">${esc(out?.error_description || 'The code you entered is incorrect')}</p>` : '';
        ctx.body = page('Device sign-in', `<h1>Enter the code shown on your device</h1>${msg}${form}<button id="device-continue" type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      userCodeConfirmSource: (ctx, form, client, deviceInfo, userCode) => {
        ctx.body = page('Confirm device', `<h1>Confirm device</h1><p>${esc(client.clientId)} shows the code <code id="user-code">${esc(userCode)}</code></p>${form}<button id="device-confirm" type="submit" form="op.deviceConfirmForm">Continue</button><button id="device-abort" type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`);
      },
      successSource: (ctx) => {
        ctx.body = page('Device signed in', '<h1 id="device-success">Device signed in</h1><p>You can close this page.</p>');
      },
    },
  },
  renderError: (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>Error</h1><p id="op-error">${esc(out.error)}: ${esc(out.error_description)}</p>`);
  },
};

// --- our login and consent pages --------------------------------------------

function loginPage(uid, details, error) {
  const err = error ? `<p id="login-error">${esc(error)}</p>` : '';
  return page('Sign in', `<h1>Sign in to ${esc(details.params.client_id)}</h1>${err}
<form id="login" method="post" action="${prefix}/interaction/${esc(uid)}/login">
<label>Username <input name="username" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button id="login-submit" type="submit">Sign in</button></form>`);
}

function consentPage(uid, details) {
  const scopes = (details.prompt.details.missingOIDCScope || []).join(' ');
  return page('Consent', `<h1>Allow ${esc(details.params.client_id)}?</h1><p>Scopes: <span id="scopes">${esc(scopes)}</span></p>
<form id="consent" method="post" action="${prefix}/interaction/${esc(uid)}/confirm"><button id="consent-allow" type="submit">Allow</button></form>
<form method="post" action="${prefix}/interaction/${esc(uid)}/abort"><button id="consent-deny" type="submit">Deny</button></form>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function interaction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page('Error', '<p id="op-error">interaction mismatch</p>'));
  const prompt = details.prompt.name;
  if (req.method === 'GET' && !action) {
    return send(res, 200, prompt === 'login' ? loginPage(uid, details) : consentPage(uid, details));
  }
  if (req.method !== 'POST') return send(res, 405, page('Error', '<p id="op-error">method not allowed</p>'));
  if (action === 'login' && prompt === 'login') {
    const form = await readForm(req);
    const user = USERS.find((u) => u.username === form.get('username'));
    const ok = user && crypto.timingSafeEqual(
      crypto.createHash('sha256').update(String(form.get('password'))).digest(),
      crypto.createHash('sha256').update(user.password).digest(),
    );
    if (!ok) {
      log(`login refused for ${JSON.stringify(form.get('username'))}`);
      return send(res, 401, loginPage(uid, details, 'Invalid username or password'));
    }
    log(`login accepted for ${user.username}`);
    return provider.interactionFinished(req, res, { login: { accountId: user.sub || user.username } }, { mergeWithLastSubmission: false });
  }
  if (action === 'confirm' && prompt === 'consent') {
    const { prompt: { details: missing }, params, session, grantId } = details;
    const grant = grantId ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }
  if (action === 'abort') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
  }
  return send(res, 400, page('Error', '<p id="op-error">unexpected step</p>'));
}

// oidc-provider drops offline_access from an authorization request without
// prompt=consent (OIDC Core 11), so the CLI would get no refresh token. Our
// consent page is shown on every login anyway: add the prompt for it.
function promptConsentForOffline(url) {
  const [p, query = ''] = url.split('?');
  const q = new URLSearchParams(query);
  if (q.has('prompt') || !(q.get('scope') || '').split(' ').includes('offline_access')) return url;
  q.set('prompt', 'consent');
  return `${p}?${q}`;
}

// --- server ------------------------------------------------------------------

const server = https.createServer({ cert: fs.readFileSync(opt.cert), key: fs.readFileSync(opt.key) });
server.listen(Number(opt.port), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `https://127.0.0.1:${port}${prefix}`;
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (ctx, err) => log('server error:', err.message));
  provider.on('grant.error', (ctx, err) => log(`token endpoint: ${err.error || err.name}: ${err.error_description || err.message}`));
  const callback = provider.callback();
  const interactionRoute = new RegExp(`^${prefix}/interaction/([A-Za-z0-9_-]+)(?:/(login|confirm|abort))?$`);

  server.on('request', (req, res) => {
    const path = req.url.split('?')[0];
    const m = interactionRoute.exec(path);
    if (m) {
      interaction(provider, req, res, m[1], m[2]).catch((err) => {
        log(`interaction: ${err.message}`);
        if (!res.headersSent) send(res, 400, page('Error', `<p id="op-error">${esc(err.message)}</p>`));
      });
      return;
    }
    if (req.method === 'GET' && path === `${prefix}/auth`) req.url = promptConsentForOffline(req.url);
    // Counted by the tests that check how often a relying party fetches keys.
    if (req.method === 'GET' && path === `${prefix}/jwks`) log('jwks requested');
    if (prefix) {
      if (path !== prefix && !path.startsWith(`${prefix}/`)) return send(res, 404, page('Not found', ''));
      // oidc-provider works out its mount point from originalUrl vs url
      req.originalUrl = req.url;
      req.url = req.url.slice(prefix.length) || '/';
    }
    callback(req, res);
  });
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
  log(`listening at ${issuer} (ID tokens signed ${signingAlg}, kid ${jwks.keys[0].kid || '(computed)'})`);
});
server.on('error', (err) => die(`listen: ${err.message}`));

function stop(why) {
  log(`stopping (${why})`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
if (seconds('lifetime') > 0) setTimeout(() => stop('lifetime over'), seconds('lifetime') * 1000).unref();
