// Sign-in: a wrong password, the keyboard alone, what the browser keeps
// (no token in localStorage), the headers the portal is served with, and
// deep links that reload into the app.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, checkA11y, screenshot, setDark, setup, signIn } from './harness.mjs';

describe('sign-in', () => {
  let env;
  before(async () => {
    env = await setup();
  });
  after(async () => {
    await env?.teardown();
  });

  test('a wrong password shows an error (role=alert) and stays on the sign-in page', async () => {
    const page = await env.browser.newPage();
    await page.goto('/harbor/sign-in');
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /invalid|password/i);
    assert.match(new URL(page.url()).pathname, /^\/harbor\/sign-in/);
    await page.context().close();
  });

  test('the sign-in page passes axe in light and dark, and is screenshot', async () => {
    const page = await env.browser.newPage();
    await page.goto('/harbor/sign-in');
    await page.getByLabel('Username').waitFor();
    await screenshot(page, 'sign-in');
    await checkA11y(page, 'sign-in (light)');
    // No theme switch before signing in: the preference is read at start.
    await page.evaluate(() => localStorage.setItem('berth-theme', 'dark'));
    await page.reload();
    await page.getByLabel('Username').waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await checkA11y(page, 'sign-in (dark)');
    await page.context().close();
  });

  test('signing in with the keyboard alone lands on /harbor/projects', async () => {
    const page = await env.browser.newPage();
    await page.goto('/harbor/sign-in');
    await page.getByLabel('Username').waitFor();
    // From the start of the page: nothing focused, then Tab.
    await page.evaluate(() => {
      document.activeElement?.blur?.();
      window.getSelection()?.removeAllRanges();
    });
    const focusedName = () => page.evaluate(() => document.activeElement?.getAttribute('name') ?? document.activeElement?.tagName);
    let tabs = 0;
    while ((await focusedName()) !== 'principal' && tabs < 6) {
      await page.keyboard.press('Tab');
      tabs++;
    }
    assert.equal(await focusedName(), 'principal', `Tab never reached the username field (${tabs} presses)`);
    await page.keyboard.type(ADMIN.username);
    await page.keyboard.press('Tab');
    assert.equal(await focusedName(), 'password', 'Tab from the username goes to the password');
    await page.keyboard.type(ADMIN.password);
    await page.keyboard.press('Enter');
    await page.waitForURL('**/harbor/projects');
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    await page.context().close();
  });

  test('localStorage holds no token or secret after sign-in (theme and language only)', async () => {
    const page = await env.browser.newPage();
    await signIn(page);
    await setDark(page, true);
    await page.getByRole('combobox', { name: 'Language' }).selectOption('en');
    const store = await page.evaluate(() => Object.fromEntries(Object.entries(localStorage)));
    for (const key of Object.keys(store)) assert.ok(['berth-theme', 'berth-lang'].includes(key), `unexpected localStorage key ${key}`);
    const session = await page.evaluate(() => Object.keys(sessionStorage));
    assert.deepEqual(session, [], 'sessionStorage is empty');
    const blob = JSON.stringify(store);
    assert.doesNotMatch(blob, /token|secret|sid|Harbor12345|csrf/i);
    // The session cookie is HttpOnly: invisible to scripts.
    assert.doesNotMatch(await page.evaluate(() => document.cookie), /sid=/);
    const sid = (await page.context().cookies()).find((c) => c.name === 'sid');
    assert.ok(sid, 'a sid cookie is set');
    assert.equal(sid.httpOnly, true, 'sid is HttpOnly');
    await page.context().close();
  });

  test('deep links reload into the app', async () => {
    const ctx = await env.browser.newContext();
    const page = await ctx.newPage();
    // Signed out: a deep link goes to sign-in and back after it.
    await page.goto('/harbor/projects/1/members');
    await page.waitForURL(/\/harbor\/sign-in\?redirect_url=/);
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/harbor/projects/1/members');
    // Signed in: a fresh load of a deep link renders it (project 1: library).
    await page.goto('/harbor/projects/1/repositories');
    await page.getByRole('heading', { level: 1, name: 'library' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/harbor/projects/1/repositories');
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'library' }).waitFor();
    for (const path of ['/harbor/logs', '/harbor/configs', '/harbor/users', '/harbor/clearing-job/gc']) {
      await page.goto(path);
      await page.getByRole('heading', { level: 1 }).first().waitFor();
      assert.equal(new URL(page.url()).pathname, path);
      assert.equal(await page.getByRole('heading', { name: 'Page not found' }).count(), 0, `${path} renders a page`);
    }
    await ctx.close();
  });

  test('headers: hashed assets are immutable, the HTML has a CSP', async () => {
    const html = await fetch(`${env.url}/harbor/projects/1/repositories`);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type') ?? '', /text\/html/);
    const csp = html.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/, 'the HTML has a CSP');
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(html.headers.get('cache-control') ?? '', /no-cache/);
    const body = await html.text();
    const scripts = [...body.matchAll(/src="(\/assets\/[^"]+\.js)"/g)].map((m) => m[1]);
    assert.ok(scripts.length > 0, 'index.html loads a script from /assets/');
    const js = await fetch(`${env.url}${scripts[0]}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    // The API is not swallowed by the SPA fallback.
    const api = await fetch(`${env.url}/api/v2.0/no-such-endpoint`);
    assert.notEqual(api.status, 200);
  });

  test('no script errors or CSP violations in the browser', () => {
    assert.deepEqual(env.browser.errors, []);
  });
});
