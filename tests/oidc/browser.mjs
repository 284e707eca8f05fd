// Drives Debian's chromium (headless, through playwright-core) through a login
// at the test provider (provider.mjs).
//
//   node browser.mjs login  URL USER PASSWORD
//       URL is an authorization URL. Signs in, allows consent, follows the
//       redirect. Exit 0 when the last page is http://127.0.0.1:PORT/callback
//       and it answered 2xx/3xx; its text goes to stdout.
//   node browser.mjs device URL USER PASSWORD [USER_CODE]
//       URL is verification_uri_complete, or verification_uri with USER_CODE.
//       Exit 0 when the provider says the device is signed in.
//
// Env: PINNIPED_TEST_OIDC_CA  PEM file with the provider's CA (or its
//        self-signed certificate). Chromium then ignores certificate errors
//        only for chains holding one of those keys (an SPKI pin), nothing else.
//      PINNIPED_TEST_BROWSER_TIMEOUT  seconds before giving up (default 60).
// On failure: exit 1 with one line "browser: REASON" on stderr (2: bad usage).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [mode, url, user, password, userCode] = process.argv.slice(2);
const fail = (why, code = 1) => {
  process.stderr.write(`browser: ${why}\n`);
  cleanup();
  process.exit(code);
};
let profile;
function cleanup() {
  if (profile) fs.rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
  profile = undefined;
}

if (!['login', 'device'].includes(mode) || !url || user === undefined || password === undefined) {
  fail('usage: browser.mjs login|device URL USER PASSWORD [USER_CODE]', 2);
}
const caFile = process.env.PINNIPED_TEST_OIDC_CA;
if (!caFile) fail('set PINNIPED_TEST_OIDC_CA to the provider CA file', 2);
const timeout = Number(process.env.PINNIPED_TEST_BROWSER_TIMEOUT || 60) * 1000;
if (!(timeout > 0)) fail('PINNIPED_TEST_BROWSER_TIMEOUT must be a number of seconds', 2);

// base64(sha256(SubjectPublicKeyInfo)) of every certificate in the CA file
function spkiPins(file) {
  const pem = fs.readFileSync(file, 'utf8');
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) || [];
  if (!certs.length) fail(`${file}: no certificate`, 2);
  return certs.map((c) => {
    const spki = new crypto.X509Certificate(c).publicKey.export({ type: 'spki', format: 'der' });
    return crypto.createHash('sha256').update(spki).digest('base64');
  });
}

const hardStop = setTimeout(() => fail(`timed out after ${timeout / 1000} s`), timeout);
process.on('SIGTERM', () => fail('terminated'));

const pins = spkiPins(caFile);
profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pinniped-chromium-'));
// chromium also writes to $TMPDIR and $HOME (crash database, dconf): point
// both inside the folder we remove at exit
const sub = (name) => path.join(profile, name);
for (const name of ['tmp', 'home']) fs.mkdirSync(sub(name));
const context = await chromium.launchPersistentContext(sub('data'), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--ignore-certificate-errors-spki-list=${pins.join(',')}`,
  ],
  env: {
    ...process.env, TMPDIR: sub('tmp'), HOME: sub('home'), XDG_CONFIG_HOME: sub('home/.config'), XDG_CACHE_HOME: sub('home/.cache'),
  },
  timeout,
  // our own SIGTERM handler exits; playwright kills chromium's process group on exit
  handleSIGTERM: false,
}).catch((err) => fail(`chromium did not start: ${err.message.split('\n')[0]}`));
const browserPage = context.pages()[0] || await context.newPage();
browserPage.setDefaultTimeout(timeout);

// Remember the status of the last main-frame document, whatever redirected to it.
let lastStatus = 0;
browserPage.on('response', (r) => {
  if (r.request().isNavigationRequest() && r.frame() === browserPage.mainFrame()) lastStatus = r.status();
});

// Submit the page's form and wait for the next document to load.
async function submit(selector) {
  await Promise.all([
    browserPage.waitForEvent('load'),
    browserPage.click(selector),
  ]);
}

const callbackURL = /^http:\/\/127\.0\.0\.1:\d+\/callback([?#]|$)/;
const text = async () => (await browserPage.locator('body').innerText().catch(() => '')).trim();
const has = async (selector) => (await browserPage.locator(selector).count()) > 0;

async function run() {
  const first = await browserPage.goto(url, { waitUntil: 'load' }).catch((err) => fail(`cannot open ${url.split('?')[0]}: ${err.message.split('\n')[0].replace(/\?\S*/g, '?...')}`));
  lastStatus = first ? first.status() : 0;
  let loggedIn = false;
  for (let step = 0; step < 12; step++) {
    const here = browserPage.url();
    if (mode === 'login' && callbackURL.test(here)) {
      process.stdout.write(`${await text()}\n`);
      if (lastStatus >= 400) fail(`callback answered HTTP ${lastStatus}`);
      return;
    }
    if (await has('#device-success')) {
      if (mode === 'device') return void process.stdout.write(`${await text()}\n`);
      fail('got the device success page in login mode');
    }
    if (await has('#login-error')) fail('login refused: invalid username or password');
    if (await has('#op-error')) fail(`provider error: ${(await browserPage.locator('#op-error').first().innerText()).trim()}`);
    if (await has('form#login')) {
      if (loggedIn) fail('login form shown twice');
      await browserPage.fill('form#login input[name=username]', user);
      await browserPage.fill('form#login input[name=password]', password);
      loggedIn = true;
      await submit('#login-submit');
    } else if (await has('form#consent')) {
      await submit('#consent-allow');
    } else if (await has('#device-confirm')) {
      await submit('#device-confirm');
    } else if (await has('#device-continue')) {
      if (!userCode) fail('the device page asks for a user code: pass USER_CODE');
      await browserPage.fill('input[name=user_code]', userCode);
      await submit('#device-continue');
    } else {
      fail(`unexpected page ${here.split('?')[0]} (HTTP ${lastStatus}): ${(await text()).slice(0, 200).replace(/\s+/g, ' ')}`);
    }
  }
  fail('too many steps');
}

try {
  await run();
} catch (err) {
  fail(err.message.split('\n')[0]);
}
clearTimeout(hardStop);
await Promise.race([context.close(), new Promise((r) => { setTimeout(r, 5000); })]);
cleanup();
process.exit(0);
