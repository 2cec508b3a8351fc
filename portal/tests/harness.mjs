// Browser-test harness: a private `berth serve` on a free loopback port, a
// headless Chromium (playwright-core driving Debian's /usr/bin/chromium),
// axe-core checks, screenshots, and images pushed by a real client (skopeo).
//
// Environment:
//   BERTH_BIN          the berth binary (default $CARGO_TARGET_DIR/debug/berth,
//                      CARGO_TARGET_DIR defaulting to ~/.cache/berth/target)
//   CHROMIUM           the browser (default /usr/bin/chromium)
//   BERTH_PORTAL_PROXY=1  serve portal/dist from a tiny Node server in front of
//                      berth (for a binary without the embedded portal)
//   BERTH_TEST_HEADED=1   show the browser (debugging)

import { spawn, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir, homedir } from 'node:os';
import { basename, dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
export const PORTAL = dirname(here);
export const SCREENSHOTS = join(here, 'screenshots');

export const ADMIN = { username: 'admin', password: 'Harbor12345' };

const targetDir = process.env.CARGO_TARGET_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'berth', 'target');
export const BERTH_BIN = process.env.BERTH_BIN || join(targetDir, 'debug', 'berth');

// ------------------------------------------------------------- berth ----

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Children to kill (by PID) whatever way this process ends. */
const children = new Set();
function killChildren() {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  children.clear();
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killChildren();
    process.exit(130);
  });
}

/**
 * Starts `berth serve` with a fresh data dir on a free loopback port and waits
 * for `/api/v2.0/ping`. Returns { url, host, port, dir, log(), stop() }.
 */
export async function startBerth() {
  assert.ok(existsSync(BERTH_BIN), `no berth binary at ${BERTH_BIN} (cargo build -p berth, or set BERTH_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'berth-portal-test-'));
  const logPath = join(dir, 'berth.log');
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const out = openSync(logPath, 'a');
    const child = spawn(
      BERTH_BIN,
      ['serve', '--addr', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data'), '--public-url', base, '--sweep-interval', '0'],
      {
        env: { ...process.env, BERTH_ADMIN_PASSWORD: ADMIN.password },
        stdio: ['ignore', out, out],
      },
    );
    children.add(child.pid);
    let exited = false;
    child.on('exit', () => {
      exited = true;
      children.delete(child.pid);
    });
    const deadline = Date.now() + 30_000;
    while (!exited && Date.now() < deadline) {
      try {
        const r = await fetch(`${base}/api/v2.0/ping`);
        if (r.ok) {
          const berth = {
            url: base,
            host: `127.0.0.1:${port}`,
            port,
            dir,
            log: () => readFileSync(logPath, 'utf8'),
            stop: async () => {
              if (!exited) {
                child.kill('SIGTERM');
                for (let i = 0; i < 50 && !exited; i++) await sleep(100);
                if (!exited) child.kill('SIGKILL');
              }
              children.delete(child.pid);
              archiveLog(logPath);
              rmSync(dir, { recursive: true, force: true });
            },
          };
          return berth;
        }
      } catch {
        /* not listening yet */
      }
      await sleep(100);
    }
    lastErr = exited ? `berth exited early:\n${readFileSync(logPath, 'utf8')}` : 'berth did not answer /api/v2.0/ping within 30 s';
    if (!exited) child.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(lastErr);
}

/**
 * tests/run's log scan (tests/scan-logs) reads every server log kept in
 * BERTH_E2E_LOG_ARCHIVE for secrets: berth's log goes there, and so does
 * every password or robot secret a test handles (recordSecret).
 */
function archiveLog(logPath) {
  const archive = process.env.BERTH_E2E_LOG_ARCHIVE;
  if (!archive || !existsSync(logPath)) return;
  const name = `portal-${basename(process.argv[1] ?? 'test', '.mjs')}-${process.pid}.log`;
  copyFileSync(logPath, join(archive, name));
}

/** Lists a password or secret for the log scan (see archiveLog). */
export function recordSecret(secret) {
  const archive = process.env.BERTH_E2E_LOG_ARCHIVE;
  if (archive && secret) appendFileSync(join(archive, 'secrets.list'), `${secret}\n`);
}

/** Whether `GET /` on berth returns the portal (not a placeholder or 404). */
export async function servesPortal(url) {
  try {
    const r = await fetch(`${url}/harbor/projects`);
    const body = await r.text();
    return r.ok && /<script[^>]+src="\/assets\//.test(body);
  } catch {
    return false;
  }
}

/**
 * A small static server for portal/dist in front of berth (BERTH_PORTAL_PROXY=1,
 * for a binary built before the portal was embedded). /api, /c, /v2 and
 * /service go to berth; everything else is dist (index.html for app routes).
 */
export async function startPortalProxy(berthUrl) {
  const dist = join(PORTAL, 'dist');
  assert.ok(existsSync(join(dist, 'index.html')), 'portal/dist is missing: cd portal && npm run build');
  const target = new URL(berthUrl);
  const types = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html; charset=utf-8', '.svg': 'image/svg+xml', '.json': 'application/json' };
  const server = createServer((req, res) => {
    const path = req.url.split('?')[0];
    if (/^\/(api|c|v2|service)(\/|$)/.test(path)) {
      const up = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (r) => {
          res.writeHead(r.statusCode, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      req.pipe(up);
      return;
    }
    let file = normalize(join(dist, decodeURIComponent(path)));
    if (!file.startsWith(dist) || !existsSync(file) || statSync(file).isDirectory()) file = join(dist, 'index.html');
    const isAsset = path.startsWith('/assets/');
    const headers = { 'content-type': types[extname(file)] ?? 'application/octet-stream' };
    headers['cache-control'] = isAsset ? 'public, max-age=31536000, immutable' : 'no-cache';
    if (!isAsset)
      headers['content-security-policy'] = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";
    res.writeHead(200, headers);
    res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}`, stop: () => new Promise((r) => server.close(r)) };
}

// --------------------------------------------------------------- API ----

/** Calls Berth's API with HTTP Basic auth (default admin). */
export async function api(berth, method, path, body, creds = ADMIN) {
  const headers = { Accept: 'application/json', Authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(`${berth.url}/api/v2.0${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: r.status, headers: r.headers, json, location: r.headers.get('location') };
}

/** Creates a project; returns its id. */
export async function createProject(berth, name, isPublic = false) {
  await api(berth, 'POST', '/projects', { project_name: name, metadata: { public: String(isPublic) } });
  const { json } = await api(berth, 'GET', `/projects/${name}`);
  return json.project_id;
}

/** Creates a user (admin-only API); returns its id. */
export async function createUser(berth, username, password) {
  recordSecret(password);
  const { location } = await api(berth, 'POST', '/users', { username, password, email: `${username}@example.com`, realname: username });
  return Number(location?.split('/').pop());
}

// ------------------------------------------------------------ images ----

/** A ustar archive of `files` ({name: string|Buffer}), deterministic. */
export function tar(files) {
  const blocks = [];
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const h = Buffer.alloc(512);
    const put = (off, len, s) => h.write(s, off, len, 'ascii');
    const oct = (off, len, n) => put(off, len, n.toString(8).padStart(len - 1, '0') + '\0');
    put(0, 100, name);
    oct(100, 8, 0o644);
    oct(108, 8, 0);
    oct(116, 8, 0);
    oct(124, 12, data.length);
    oct(136, 12, 1_700_000_000);
    put(148, 8, '        ');
    put(156, 1, '0');
    put(257, 6, 'ustar\0');
    put(263, 2, '00');
    put(265, 32, 'root');
    put(297, 32, 'root');
    let sum = 0;
    for (const b of h) sum += b;
    put(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

/**
 * Writes an OCI image layout holding a multi-arch index (linux/amd64 and
 * linux/arm64 images, one small gzip layer each, configs with a build
 * history) tagged `tag`. Returns { dir, digest (of the index) }.
 */
export function writeImageLayout(dir, tag = 'v1', variant = '') {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const blob = (buf, mediaType, extra = {}) => {
    const digest = sha256(buf);
    writeFileSync(join(dir, 'blobs', 'sha256', digest), buf);
    return { mediaType, digest: `sha256:${digest}`, size: buf.length, ...extra };
  };
  const json = (v) => Buffer.from(JSON.stringify(v));
  const manifests = [];
  for (const architecture of ['amd64', 'arm64']) {
    const layerTar = tar({ 'hello.txt': `hello from berth's portal tests, ${architecture}${variant}\n`, 'etc/berth-arch': `${architecture}\n` });
    const layer = blob(gzipSync(layerTar), 'application/vnd.oci.image.layer.v1.tar+gzip');
    const created = '2026-01-02T03:04:05Z';
    const config = blob(
      json({
        created,
        architecture,
        os: 'linux',
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/cat', '/hello.txt'] },
        rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(layerTar)}`] },
        history: [
          { created, created_by: '/bin/sh -c #(nop) ADD file:hello.txt in / ', comment: 'berth portal test layer' },
          { created, created_by: '/bin/sh -c #(nop)  CMD ["/bin/cat" "/hello.txt"]', empty_layer: true },
        ],
      }),
      'application/vnd.oci.image.config.v1+json',
    );
    const manifest = json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] });
    manifests.push(blob(manifest, 'application/vnd.oci.image.manifest.v1+json', { platform: { architecture, os: 'linux' } }));
  }
  const index = blob(json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }), 'application/vnd.oci.image.index.v1+json');
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ ...index, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
  return { dir, digest: index.digest };
}

/**
 * Pushes a fresh two-platform image to `project/repo:tag` with skopeo, as
 * `creds` ({username, password}; robot names hold `$`: no shell involved).
 * `variant` changes the layers' content (another digest). Returns the index
 * digest.
 */
export async function pushImage(berth, ref, creds, tag = 'v1', variant = '') {
  const dir = mkdtempSync(join(tmpdir(), 'berth-portal-oci-'));
  try {
    const { digest } = writeImageLayout(dir, tag, variant);
    await promisify(execFile)(
      'skopeo',
      [
        'copy',
        '--quiet',
        '--all',
        '--dest-tls-verify=false',
        '--dest-creds',
        `${creds.username}:${creds.password}`,
        `oci:${dir}:${tag}`,
        `docker://${berth.host}/${ref}:${tag}`,
      ],
      { timeout: 60_000 },
    ).catch((e) => {
      throw new Error(`skopeo copy failed: ${e.stderr || e.message}`);
    });
    return digest;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ----------------------------------------------------------- browser ----

/**
 * Launches headless Chromium; returns { browser, newPage(opts), close() }.
 * Every page: 1280x800, clipboard permissions, base URL `url`.
 */
export async function launch(url) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: !process.env.BERTH_TEST_HEADED,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  const errors = [];
  const newContext = async (opts = {}) => {
    const ctx = await browser.newContext({
      baseURL: url,
      viewport: { width: 1280, height: 800 },
      permissions: ['clipboard-read', 'clipboard-write'],
      locale: 'en-US',
      colorScheme: 'light',
      // Pico honours it: no transitions, so axe never sees a colour midway.
      reducedMotion: 'reduce',
      ...opts,
    });
    ctx.setDefaultTimeout(15_000);
    ctx.setDefaultNavigationTimeout(15_000);
    return ctx;
  };
  const newPage = async (opts) => {
    const ctx = await newContext(opts);
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) errors.push(`${page.url()}: ${m.text()}`);
    });
    return page;
  };
  return { browser, newContext, newPage, errors, close: () => browser.close() };
}

/** Signs in through the sign-in form; waits for the projects page. */
export async function signIn(page, creds = ADMIN) {
  await page.goto('/harbor/sign-in');
  await page.getByLabel('Username').fill(creds.username);
  await page.getByLabel('Password').fill(creds.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/harbor/projects');
  await page.getByRole('heading', { level: 1 }).first().waitFor();
}

const AXE = require.resolve('axe-core/axe.min.js');
let axeText = null;
const axeSource = () => (axeText ??= readFileSync(AXE, 'utf8'));

/**
 * Runs axe-core (WCAG 2.0/2.1 A and AA) on the page; fails on any serious or
 * critical violation, listing them. Returns all violations.
 */
export async function checkA11y(page, name) {
  // Let the page settle: no busy indicator left.
  await page
    .waitForFunction(() => !document.querySelector('[aria-busy="true"]'), null, { timeout: 5_000 })
    .catch(() => {});
  // Evaluated (not a <script> tag): the portal's CSP forbids inline scripts.
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(axeSource());
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')} — ${n.failureSummary?.split('\n').slice(1, 3).join('; ')}`) }));
  });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const text = bad.map((v) => `  [${v.impact}] ${v.id}: ${v.help}\n${v.nodes.map((n) => `      ${n}`).join('\n')}`).join('\n');
  assert.equal(bad.length, 0, `axe: ${bad.length} serious/critical violation(s) on ${name} (${page.url()}):\n${text}`);
  return violations;
}

/** Saves a full-page screenshot to portal/tests/screenshots/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page
    .waitForFunction(() => !document.querySelector('[aria-busy="true"]'), null, { timeout: 5_000 })
    .catch(() => {});
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * The clipboard's text once `accept(text)` holds (the copy is asynchronous),
 * or whatever it holds after 3 s.
 */
export async function readClipboard(page, accept = (t) => t.length > 0) {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const text = await page.evaluate(() => navigator.clipboard.readText());
    if (accept(text) || Date.now() > deadline) return text;
    await sleep(50);
  }
}

/** Toggles the theme switch in the top bar. */
export async function setDark(page, on = true) {
  const sw = page.getByRole('switch', { name: 'Dark theme' }).or(page.getByRole('switch', { name: '深色主题' }));
  if ((await sw.isChecked()) !== on) await sw.click();
  await page.waitForFunction((t) => document.documentElement.dataset.theme === t, on ? 'dark' : 'light');
}

/** Chooses a language in the top bar's select ('en' or 'zh-CN'). */
export async function setLanguage(page, code) {
  await page.getByRole('combobox', { name: /^(Language|语言)$/ }).selectOption(code);
  await page.waitForFunction((c) => document.documentElement.lang === c, code);
}

/** Everything a suite needs: berth (+ optional proxy), a browser. */
export async function setup() {
  const berth = await startBerth();
  let proxy = null;
  let url = berth.url;
  if (process.env.BERTH_PORTAL_PROXY === '1') {
    proxy = await startPortalProxy(berth.url);
    url = proxy.url;
  } else {
    assert.ok(
      await servesPortal(berth.url),
      `${BERTH_BIN} does not serve the portal at / (rebuild it: cargo build -p berth; or BERTH_PORTAL_PROXY=1 for a binary without it)`,
    );
  }
  const browser = await launch(url);
  return {
    berth,
    url,
    browser,
    teardown: async () => {
      await browser.close().catch(() => {});
      await proxy?.stop();
      await berth.stop();
    },
  };
}
