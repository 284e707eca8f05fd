// End-to-end check of the OIDC test stack, without pinniped: provider.mjs,
// browser.mjs, open-browser.sh and chromium together. `node smoke.mjs`; exit 0
// when all pass. Makes its own CA, server certificate and keys in a temp dir.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinniped-oidc-smoke-'));
const children = new Set();
const results = [];
let providerErr = '';
const t0 = Date.now();
const ms = (since) => Date.now() - since;
const sleep = (n) => new Promise((r) => { setTimeout(r, n); });

function check(name, ok, detail = '') {
  results.push(ok);
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
  return ok;
}
function finish(code) {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
  const failed = results.filter((r) => !r).length;
  if (failed || code) console.log(`provider stderr:\n${providerErr}`);
  console.log(`smoke: ${results.length - failed} passed, ${failed} failed`);
  process.exit(code || (failed ? 1 : 0));
}
setTimeout(() => { check('whole run within 150 s', false); finish(1); }, 150000).unref();
process.on('SIGINT', () => finish(1));
process.on('SIGTERM', () => finish(1));

// --- material: a CA, a server certificate for 127.0.0.1, RSA + EC JWKs ---------
const f = (name) => path.join(dir, name);
const ssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
ssl('req', '-x509', ...ecKey, '-days', '1', '-subj', '/CN=pinniped test OIDC CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
ssl('req', '-x509', ...ecKey, '-days', '1', '-subj', '/CN=some other CA', '-keyout', f('other.key'), '-out', f('other.pem'));
ssl('req', ...ecKey, '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr'));
fs.writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
  '-days', '1', '-extfile', f('ext'), '-out', f('server.pem'));
// the server sends its chain, so chromium sees the CA key it is pinned to
fs.writeFileSync(f('chain.pem'), fs.readFileSync(f('server.pem'), 'utf8') + fs.readFileSync(f('ca.pem'), 'utf8'));
const ca = fs.readFileSync(f('ca.pem'));

const jwk = (type, opts, kid, alg) => ({
  ...crypto.generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig',
});
const rsa = jwk('rsa', { modulusLength: 2048 }, 'test-rsa', 'RS256');
const ec = jwk('ec', { namedCurve: 'P-256' }, 'test-ec', 'ES256');
fs.writeFileSync(f('jwks.json'), JSON.stringify({ keys: [rsa, ec] }));
fs.writeFileSync(f('jwks-ec-first.json'), JSON.stringify({ keys: [ec, rsa] }));

// --- helpers ----------------------------------------------------------------
// One HTTPS request that trusts only our CA; redirects are not followed.
function request(method, url, form) {
  return new Promise((resolve, reject) => {
    const body = form ? new URLSearchParams(form).toString() : undefined;
    const req = https.request(url, {
      method, ca, timeout: 10000,
      headers: body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {},
    }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(data); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, json, text: data });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

// Runs a child, resolves to {code, out, err, ms}; killed after `limit` ms.
function run(cmd, args, env = {}, limit = 90000) {
  return new Promise((resolve) => {
    const start = Date.now();
    const child = spawn(cmd, args, { cwd: here, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = ''; let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), limit);
    child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, out: out.trim(), err: err.trim(), ms: ms(start) });
    });
  });
}
const browserEnv = { PINNIPED_TEST_OIDC_CA: f('ca.pem') };
const browser = (...args) => run(process.execPath, ['browser.mjs', ...args], browserEnv);

// Starts provider.mjs and waits for its one stdout line.
async function startProvider(args) {
  const start = Date.now();
  const proc = spawn(process.execPath, ['provider.mjs', '--port', '0', '--cert', f('chain.pem'), '--key', f('server.key'),
    '--lifetime', '170', ...args], { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  proc.stderr.on('data', (c) => { providerErr += c; });
  const line = await new Promise((resolve) => {
    let buf = '';
    proc.stdout.on('data', (c) => { buf += c; if (buf.includes('\n')) resolve(buf.split('\n')[0]); });
    proc.on('exit', () => resolve(''));
    setTimeout(() => resolve(''), 15000);
  });
  let parsed = {};
  try { parsed = JSON.parse(line); } catch { /* checked by the caller */ }
  const d = parsed.issuer ? (await request('GET', `${parsed.issuer}/.well-known/openid-configuration`)).json || {} : {};
  return { proc, line, ms: ms(start), ...parsed, d };
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const decode = (jwt) => jwt.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url')));
function verifySignature(jwt, jwks) {
  const [h, p, s] = jwt.split('.');
  const { kid, alg } = JSON.parse(Buffer.from(h, 'base64url'));
  const pub = jwks.keys.find((k) => k.kid === kid);
  if (!pub || !['RS256', 'ES256'].includes(alg)) return false;
  // JWS ECDSA signatures are raw r||s, which node calls ieee-p1363
  const key = { key: crypto.createPublicKey({ key: pub, format: 'jwk' }), dsaEncoding: 'ieee-p1363' };
  return crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
}
const sameSet = (a, b) => Array.isArray(a) && a.length === b.length && b.every((x) => a.includes(x));

// A loopback listener like the CLI's: one page at /callback, records queries.
const callbacks = [];
const listener = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://127.0.0.1');
  if (u.pathname !== '/callback') { res.writeHead(404); res.end(); return; }
  callbacks.push(u.searchParams);
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<html><body><p>smoke: login complete, you may close this window</p></body></html>');
});
await new Promise((r) => { listener.listen(0, '127.0.0.1', r); });
const redirectUri = `http://127.0.0.1:${listener.address().port}/callback`;

// --- provider with an issuer path, RSA key first ---------------------------------
const p1 = await startProvider(['--jwks', f('jwks.json'), '--issuer-path', '/oidc']);
const { issuer, d } = p1;
if (!check('provider prints {"issuer","port"}', issuer === `https://127.0.0.1:${p1.port}/oidc`, `${p1.ms} ms: ${p1.line}`)) finish(1);
check('discovery lists S256, RS256 and a device endpoint', d.issuer === issuer
  && sameSet(d.code_challenge_methods_supported, ['S256']) && d.id_token_signing_alg_values_supported?.includes('RS256')
  && d.device_authorization_endpoint === `${issuer}/device/auth`);
const jwks = (await request('GET', d.jwks_uri)).json;
check('jwks_uri publishes both keys, public parts only', sameSet(jwks?.keys.map((k) => k.kid), ['test-rsa', 'test-ec'])
  && jwks.keys.every((k) => !('d' in k)));

// --- authorization code + PKCE ------------------------------------------------
const SCOPES = 'openid offline_access email profile groups username pinniped:request-audience';
function authURL(disco, extra = {}) {
  const verifier = b64url(crypto.randomBytes(32));
  const params = {
    client_id: 'pinniped-cli', response_type: 'code', scope: SCOPES, redirect_uri: redirectUri,
    state: b64url(crypto.randomBytes(12)), nonce: b64url(crypto.randomBytes(12)),
    code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
    ...extra,
  };
  for (const k of Object.keys(params)) if (params[k] === undefined) delete params[k];
  return { url: `${disco.authorization_endpoint}?${new URLSearchParams(params)}`, verifier, ...params };
}
const tokenRequest = (disco, form) => request('POST', disco.token_endpoint, { client_id: 'pinniped-cli', ...form });
const codeFor = (a, cb) => ({ grant_type: 'authorization_code', code: cb?.get('code'), redirect_uri: redirectUri, code_verifier: a.verifier });
const why = (r) => (r.status === 200 ? '' : `HTTP ${r.status} ${r.json?.error || ''} ${r.json?.error_description || ''}`);

const noPkce = await request('GET', authURL(d, { code_challenge: undefined, code_challenge_method: undefined }).url);
check('authorization without PKCE is refused', noPkce.status === 303 && /error=invalid_request/.test(noPkce.headers.location || ''));
const badRedirect = await request('GET', authURL(d, { redirect_uri: redirectUri.replace('/callback', '/elsewhere') }).url);
check('a loopback redirect with another path is refused', badRedirect.status === 400 && /redirect_uri/.test(badRedirect.text));

const a = authURL(d);
const login = await browser('login', a.url, 'alice', 'alice-password');
const cb = callbacks.shift();
check('browser login reaches the loopback callback on a random port', login.code === 0 && /login complete/.test(login.out)
  && cb?.get('state') === a.state && !!cb.get('code') && cb.get('iss') === issuer, `${login.ms} ms${login.err ? `: ${login.err}` : ''}`);

const tok = await tokenRequest(d, codeFor(a, cb));
const t = tok.json || {};
check('code exchange returns id, access and refresh tokens', tok.status === 200 && !!t.id_token && !!t.access_token && !!t.refresh_token, why(tok));
if (t.id_token) {
  const [hdr, c] = decode(t.id_token);
  check('ID token signed RS256 by the first key, verifies against jwks_uri', hdr.kid === 'test-rsa' && verifySignature(t.id_token, jwks));
  check('ID token iss/aud/nonce and lifetime', c.iss === issuer && c.aud === 'pinniped-cli' && c.nonce === a.nonce && c.exp - c.iat === 300);
  check('ID token claims for alice', c.sub === 'sub-alice' && c.username === 'alice' && c.email === 'alice@example.com'
    && c.email_verified === true && sameSet(c.groups, ['devs', 'ops']), JSON.stringify({ username: c.username, email: c.email, groups: c.groups }));
}

const r1 = await tokenRequest(d, { grant_type: 'refresh_token', refresh_token: t.refresh_token });
const [, rc] = r1.json?.id_token ? decode(r1.json.id_token) : [{}, {}];
check('refresh gives a new ID token and a rotated refresh token', r1.status === 200 && rc.username === 'alice'
  && !!r1.json.refresh_token && r1.json.refresh_token !== t.refresh_token, why(r1));
const r2 = await tokenRequest(d, { grant_type: 'refresh_token', refresh_token: t.refresh_token });
const r3 = await tokenRequest(d, { grant_type: 'refresh_token', refresh_token: r1.json?.refresh_token });
check('a used refresh token is refused and ends the login', r2.status === 400 && r2.json?.error === 'invalid_grant'
  && r3.status === 400 && r3.json?.error === 'invalid_grant');
const reuse = await tokenRequest(d, codeFor(a, cb));
check('an authorization code works once', reuse.status === 400 && reuse.json?.error === 'invalid_grant');

// open-browser.sh, as $BROWSER would run it: returns at once, logs, signs bob in
const blog = f('browser.log');
const b = authURL(d);
const ob = await run('sh', ['open-browser.sh', b.url], {
  ...browserEnv, PINNIPED_TEST_OIDC_USER: 'bob', PINNIPED_TEST_OIDC_PASSWORD: 'bob-password', PINNIPED_TEST_BROWSER_LOG: blog,
});
let logText = '';
for (let i = 0; i < 300 && !/open-browser: exit/.test(logText); i++) {
  await sleep(100);
  logText = fs.existsSync(blog) ? fs.readFileSync(blog, 'utf8') : '';
}
const bcb = callbacks.shift();
const btok = await tokenRequest(d, codeFor(b, bcb));
const [, bc] = btok.json?.id_token ? decode(btok.json.id_token) : [{}, {}];
check('open-browser.sh returns at once and signs bob in', ob.code === 0 && ob.ms < 1000 && /open-browser: exit 0/.test(logText)
  && bc.username === 'bob' && bc.email_verified === false && sameSet(bc.groups, ['devs']), `returned in ${ob.ms} ms; ${why(btok)}${logText.trim().split('\n').pop()}`);

// --- device flow ----------------------------------------------------------------
async function deviceFlow(disco, user, password, useComplete) {
  const da = await request('POST', disco.device_authorization_endpoint, { client_id: 'pinniped-cli', scope: 'openid offline_access email groups username' });
  const dj = da.json || {};
  const poll = () => tokenRequest(disco, { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: dj.device_code });
  const pending = await poll();
  const args = useComplete ? [dj.verification_uri_complete] : [dj.verification_uri, dj.user_code];
  const br = browser('device', args[0], user, password, ...args.slice(1));
  let done = false; let res;
  br.then(() => { done = true; });
  for (let i = 0; i < 300; i++) { // every 0.2 s until the tokens come, or the browser gave up
    res = await poll();
    if (res.status === 200 || res.json?.error !== 'authorization_pending' || (done && i > 5)) break;
    await sleep(200);
  }
  const bres = await br;
  const how = useComplete ? 'verification_uri_complete' : 'verification_uri + user code';
  check(`device flow (${user}, ${how}): pending, then tokens`, da.status === 200 && pending.json?.error === 'authorization_pending'
    && bres.code === 0 && /signed in/i.test(bres.out) && res.status === 200 && !!res.json.id_token && !!res.json.refresh_token,
  `${bres.ms} ms${bres.err ? `: ${bres.err}` : ''}${why(res)}`);
  return res.json?.id_token || '';
}
const bobToken = await deviceFlow(d, 'bob', 'bob-password', false);
const bob = bobToken ? decode(bobToken)[1] : {};
check('ID token claims for bob (email not verified)', bob.sub === 'sub-bob' && bob.username === 'bob' && bob.email === 'bob@example.com'
  && bob.email_verified === false && sameSet(bob.groups, ['devs']));

// --- failures that must fail ----------------------------------------------------------
const wrong = await browser('login', authURL(d).url, 'alice', 'not-her-password');
check('a wrong password fails the login', wrong.code === 1 && /invalid username or password/.test(wrong.err) && callbacks.length === 0,
  `${wrong.ms} ms: ${wrong.err}`);
const otherCA = await run(process.execPath, ['browser.mjs', 'login', authURL(d).url, 'alice', 'alice-password'],
  { PINNIPED_TEST_OIDC_CA: f('other.pem') });
check('a browser pinned to another CA does not reach the provider', otherCA.code === 1 && /CERT/.test(otherCA.err)
  && callbacks.length === 0, otherCA.err);

// --- provider without an issuer path, EC key first: ES256 ID tokens ---------------
const p2 = await startProvider(['--jwks', f('jwks-ec-first.json'), '--id-token-ttl', '120']);
check('second provider: issuer without a path', p2.issuer === `https://127.0.0.1:${p2.port}` && p2.d.issuer === p2.issuer, `${p2.ms} ms`);
const ecToken = await deviceFlow(p2.d, 'alice', 'alice-password', true);
if (ecToken) {
  const [hdr, c] = decode(ecToken);
  const jwks2 = (await request('GET', p2.d.jwks_uri)).json;
  check('EC key first: ID token ES256 by it, verifies; --id-token-ttl honoured', hdr.alg === 'ES256' && hdr.kid === 'test-ec'
    && verifySignature(ecToken, jwks2) && c.iss === p2.issuer && c.exp - c.iat === 120 && c.username === 'alice');
}

// --- stop ----------------------------------------------------------------------------
for (const p of [p1, p2]) {
  const start = Date.now();
  const stopped = new Promise((r) => { p.proc.on('exit', (code) => r(code)); });
  p.proc.kill('SIGTERM');
  const code = await Promise.race([stopped, sleep(5000).then(() => 'hung')]);
  check(`provider on port ${p.port} exits 0 on SIGTERM`, code === 0, `${ms(start)} ms`);
}
check('providers logged no token', !/eyJ[A-Za-z0-9_-]{20,}/.test(providerErr) && !providerErr.includes(t.refresh_token || '\0'));
listener.close();
console.log(`smoke: provider start ${p1.ms} ms, browser login ${login.ms} ms, total ${ms(t0)} ms`);
finish(0);
