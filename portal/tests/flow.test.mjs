// The portal end to end, as an administrator would use it: sign in, create a
// project, add a member, create a robot and copy its secret, push an image
// with that robot (skopeo), browse to the artifact, change a setting, read the
// audit log. Then a reduced flow in the dark theme and one in Chinese.
//
// The steps share state; when a UI step fails, the next steps fall back to the
// API for what they need, so each failure points at one page.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, api, checkA11y, createProject, createUser, pushImage, readClipboard, recordSecret, screenshot, setDark, setLanguage, setup, signIn } from './harness.mjs';

const PROJECT = 'webapp';
const REPO = 'frontend/site';
const MEMBER = { username: 'dev1', password: 'Developer123' };

/** Waits until no busy indicator is left (tables loaded). */
async function settled(page) {
  await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'), null, { timeout: 10_000 }).catch(() => {});
}

describe('admin flow', () => {
  let env;
  let page;
  const state = { projectId: null, robot: null, digest: null };

  before(async () => {
    env = await setup();
    await createUser(env.berth, MEMBER.username, MEMBER.password);
    page = await env.browser.newPage();
  });
  after(async () => {
    await env?.teardown();
  });

  /** The project id, created through the API if the UI step failed. */
  async function projectId() {
    state.projectId ??= await createProject(env.berth, PROJECT);
    return state.projectId;
  }

  test('sign in', async () => {
    await signIn(page);
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'library' }).waitFor();
    await screenshot(page, 'projects');
  });

  test('the side navigation stays in its column (nothing overlaps the page)', async () => {
    await page.goto('/harbor/projects');
    await page.getByRole('link', { name: 'library' }).waitFor();
    const bad = await page.evaluate(() => {
      const nav = document.querySelector('nav.sidenav, nav[aria-label="Main"]');
      const main = document.querySelector('main').getBoundingClientRect();
      const box = nav.getBoundingClientRect();
      return [...nav.querySelectorAll('a, h2')]
        .map((el) => ({ text: el.textContent.trim(), r: el.getBoundingClientRect() }))
        .filter(({ r }) => r.right > box.right + 1 || r.right > main.left + 1)
        .map(({ text, r }) => `"${text}" spans x ${Math.round(r.left)}..${Math.round(r.right)} (nav ends at ${Math.round(box.right)}, main starts at ${Math.round(main.left)})`);
    });
    assert.deepEqual(bad, [], 'side navigation items drawn over the main content');
  });

  test('a dialog closes with Escape and gives the focus back', async () => {
    await page.goto('/harbor/projects');
    const opener = page.getByRole('button', { name: 'New project' });
    await opener.click();
    const dialog = page.getByRole('dialog', { name: 'New project' });
    await dialog.waitFor();
    await page
      .waitForFunction(() => document.activeElement?.closest('dialog') != null, null, { timeout: 2_000 })
      .catch(() => assert.fail('the focus moves into the dialog'));
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    // (Restored by the dialog's effect cleanup, a frame after it is gone.)
    const back = await opener
      .evaluate((el) => new Promise((resolve) => {
        const t0 = performance.now();
        const check = () => (el === document.activeElement ? resolve(true) : performance.now() - t0 > 2000 ? resolve(false) : requestAnimationFrame(check));
        check();
      }));
    assert.equal(back, true, 'the focus is back on "New project"');
  });

  test('create a project', async () => {
    await page.goto('/harbor/projects');
    await page.getByRole('button', { name: 'New project' }).click();
    const dialog = page.getByRole('dialog', { name: 'New project' });
    await dialog.getByLabel('Project name').fill(PROJECT);
    // A 10 KiB quota (0.01 MiB), so the projects page draws its bar.
    await dialog.getByLabel('Storage limit').fill('0.01');
    await dialog.getByLabel('Unit').selectOption('MiB');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await page.waitForURL(/\/harbor\/projects\/\d+\/repositories$/);
    state.projectId = Number(page.url().match(/projects\/(\d+)\//)[1]);
    await page.getByRole('heading', { level: 1, name: PROJECT }).waitFor();
    const { json } = await api(env.berth, 'GET', `/projects/${PROJECT}`);
    assert.equal(json.project_id, state.projectId);
    assert.equal(json.metadata?.public, 'false');
    const quota = await api(env.berth, 'GET', `/projects/${state.projectId}/summary`);
    assert.equal(quota.json.quota?.hard?.storage, Math.round(0.01 * 1024 * 1024));
  });

  test('add a member', async () => {
    const id = await projectId();
    await page.goto(`/harbor/projects/${id}/members`);
    await page.getByRole('heading', { level: 2, name: 'Members' }).waitFor();
    await page.getByRole('button', { name: 'New member' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Username').fill(MEMBER.username);
    await dialog.getByLabel('Role').selectOption({ label: 'Developer' });
    await dialog.getByRole('button', { name: /^(Save|Create|Add)$/ }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('cell', { name: MEMBER.username, exact: true }).waitFor();
    await settled(page);
    await screenshot(page, 'members');
    const { json } = await api(env.berth, 'GET', `/projects/${id}/members`);
    const m = json.find((x) => x.entity_name === MEMBER.username);
    assert.ok(m, 'the member exists');
    assert.equal(m.role_id, 2, 'as Developer');
  });

  test('create a robot account and copy its secret', async () => {
    const id = await projectId();
    await page.goto(`/harbor/projects/${id}/robot-account`);
    await page.getByRole('button', { name: 'New robot account' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name', { exact: true }).fill('ci');
    await dialog.getByLabel('Expiration (days)').fill('30');
    await dialog.getByRole('button', { name: /^(Create|Save|Add)$/ }).click();
    const created = page.getByRole('dialog', { name: 'Robot account created' });
    await created.waitFor();
    // The secret is shown once, with the robot's full name.
    const shown = await created.locator('code, input, output').evaluateAll((els) => els.map((e) => (e.value ?? e.textContent ?? '').trim()).filter(Boolean));
    const name = shown.find((s) => s.startsWith('robot$'));
    const secret = shown.find((s) => !s.startsWith('robot$') && s.length >= 8 && !/\s/.test(s));
    assert.equal(name, `robot$${PROJECT}+ci`, `the dialog shows the robot's full name (shown: ${JSON.stringify(shown)})`);
    assert.ok(secret, `the dialog shows the secret (shown: ${JSON.stringify(shown)})`);
    await created.getByRole('button', { name: 'Copy secret' }).click();
    const copied = await readClipboard(page, (t) => t === secret);
    assert.equal(copied, secret, 'the clipboard holds the secret shown');
    await screenshot(page, 'robot-created');
    recordSecret(secret);
    state.robot = { username: name, password: copied };
    await created.getByRole('button', { name: /^(Close|Done|OK)$/ }).first().click();
    await created.waitFor({ state: 'detached' });
    await page.getByRole('cell', { name: /ci$/ }).first().waitFor();
  });

  test('push a two-platform image with the robot (skopeo)', async () => {
    await projectId();
    if (!state.robot) {
      // The robot step failed: a robot from the API, so the next steps run.
      const { json } = await api(env.berth, 'POST', '/robots', {
        name: 'ci-api',
        level: 'project',
        duration: 30,
        permissions: [{ kind: 'project', namespace: PROJECT, access: [{ resource: 'repository', action: 'push' }, { resource: 'repository', action: 'pull' }] }],
      });
      recordSecret(json.secret);
      state.robot = { username: json.name, password: json.secret };
    }
    state.digest = await pushImage(env.berth, `${PROJECT}/${REPO}`, state.robot, 'v1');
    const { json } = await api(env.berth, 'GET', `/projects/${PROJECT}/repositories/${encodeURIComponent(encodeURIComponent(REPO))}/artifacts/v1`);
    assert.equal(json.digest, state.digest);
  });

  test('browse to the artifact: tags, platforms, pull command', async () => {
    const id = await projectId();
    if (!state.digest) state.digest = await pushImage(env.berth, `${PROJECT}/${REPO}`, ADMIN, 'v1');
    await page.goto(`/harbor/projects/${id}/repositories`);
    await page.getByRole('link', { name: `${PROJECT}/${REPO}` }).or(page.getByRole('link', { name: REPO, exact: true })).first().click();
    await page.waitForURL(new RegExp(`/harbor/projects/${id}/repositories/[^/]+$`));
    await page.getByRole('heading', { level: 1 }).filter({ hasText: REPO }).waitFor();
    await settled(page);
    await page.getByRole('cell', { name: 'v1' }).or(page.getByText('v1', { exact: true })).first().waitFor();
    await screenshot(page, 'repository');
    // The artifact: its row's digest link.
    await page.getByRole('link', { name: new RegExp(state.digest.slice(7, 15)) }).first().click();
    await page.waitForURL(/\/artifacts-tab\/artifacts\/sha256:/);
    assert.ok(decodeURIComponent(page.url()).endsWith(state.digest), `the artifact page of ${state.digest}`);
    await settled(page);
    const main = page.locator('main');
    await main.getByText('v1', { exact: true }).first().waitFor();
    await main.getByText('linux/amd64').first().waitFor();
    await main.getByText('linux/arm64').first().waitFor();
    const text = await main.innerText();
    const pull = new RegExp(`pull ${env.berth.host.replace(/\./g, '\\.')}/${PROJECT}/${REPO}(@sha256:[0-9a-f]{64}|:v1)`);
    assert.match(text, pull, 'the pull command names this registry, repository and artifact');
    await main.getByRole('button', { name: 'Copy pull command' }).first().click();
    const copied = await readClipboard(page, (t) => pull.test(t));
    assert.match(copied, pull, 'the copied pull command');
    assert.ok(await main.getByRole('button', { name: 'Add tag' }).count(), 'an admin sees "Add tag"');
    await screenshot(page, 'artifact');
  });

  test('add a tag on the artifact page', async () => {
    const id = await projectId();
    if (!state.digest) state.digest = await pushImage(env.berth, `${PROJECT}/${REPO}`, ADMIN, 'v1');
    await page.goto(`/harbor/projects/${id}/repositories/${encodeURIComponent(REPO)}/artifacts-tab/artifacts/${state.digest}`);
    await page.getByRole('button', { name: 'Add tag' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add tag' });
    await dialog.getByLabel(/^Tag( name)?$/).fill('stable');
    await dialog.getByRole('button', { name: /^(Save|Add|Create)$/ }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('main').getByText('stable', { exact: true }).first().waitFor();
    const { json } = await api(env.berth, 'GET', `/projects/${PROJECT}/repositories/${encodeURIComponent(encodeURIComponent(REPO))}/artifacts/stable`);
    assert.equal(json.digest, state.digest, 'the new tag names the artifact');
    // And deleted again: the row's Delete, then the confirmation.
    const row = page.getByRole('row').filter({ hasText: 'stable' });
    await row.getByRole('button', { name: /Delete/ }).click();
    const confirm = page.getByRole('dialog');
    await confirm.getByText(/stable/).first().waitFor();
    await confirm.getByRole('button', { name: 'Delete' }).click();
    await confirm.waitFor({ state: 'detached' });
    await row.waitFor({ state: 'detached' });
    const tags = (await api(env.berth, 'GET', `/projects/${PROJECT}/repositories/${encodeURIComponent(encodeURIComponent(REPO))}/artifacts/${state.digest}/tags`)).json;
    assert.deepEqual(tags.map((x) => x.name), ['v1'], 'only v1 is left');
  });

  test('the push command of the project names this registry', async () => {
    const id = await projectId();
    await page.goto(`/harbor/projects/${id}/repositories`);
    await page.getByRole('button', { name: 'Push command' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText(`docker push ${env.berth.host}/${PROJECT}/`).first().waitFor();
    await dialog.getByRole('button', { name: 'Close' }).first().click();
    await dialog.waitFor({ state: 'detached' });
  });

  test("a platform's image: its build history", async () => {
    const id = await projectId();
    if (!state.digest) state.digest = await pushImage(env.berth, `${PROJECT}/${REPO}`, ADMIN, 'v1');
    await page.goto(`/harbor/projects/${id}/repositories/${encodeURIComponent(REPO)}/artifacts-tab/artifacts/${state.digest}`);
    const row = page.getByRole('row').filter({ hasText: 'linux/arm64' });
    await row.getByRole('link').first().click();
    await page.waitForURL((u) => u.pathname.includes('/artifacts-tab/artifacts/sha256:') && !decodeURIComponent(u.pathname).endsWith(state.digest));
    await settled(page);
    const main = page.locator('main');
    await main.getByText('linux/arm64').first().waitFor();
    await main.getByRole('heading', { name: 'Build history' }).waitFor();
    await main.getByText(/ADD file:hello\.txt/).first().waitFor();
    await screenshot(page, 'artifact-platform');
  });

  test('change a setting on the Configuration page; it is kept after reload', async () => {
    await page.goto('/harbor/configs');
    await page.getByRole('heading', { level: 1, name: 'Configuration' }).waitFor();
    await settled(page);
    const before = (await api(env.berth, 'GET', '/configurations')).json;
    const selfReg = page.getByLabel(/self[- ]registration/i);
    assert.ok(await selfReg.count(), 'a "Self-registration" control on the Configuration page');
    const was = await selfReg.first().isChecked();
    assert.equal(was, !!before.self_registration?.value, 'the page shows the stored value');
    await selfReg.first().setChecked(!was);
    await page.getByRole('button', { name: 'Save' }).first().click();
    await page.getByRole('status').filter({ hasText: /saved/i }).or(page.getByText(/saved/i)).first().waitFor();
    const afterSave = (await api(env.berth, 'GET', '/configurations')).json;
    assert.equal(afterSave.self_registration?.value, !was, 'the server has the new value');
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Configuration' }).waitFor();
    await settled(page);
    assert.equal(await page.getByLabel(/self[- ]registration/i).first().isChecked(), !was, 'kept after reload');
    await screenshot(page, 'configuration');
  });

  test('create a user on the Users page; they can sign in', async () => {
    const user = { username: 'newcomer', password: 'Newcomer123' };
    recordSecret(user.password);
    await page.goto('/harbor/users');
    await page.getByRole('button', { name: 'New user' }).click();
    const dialog = page.getByRole('dialog', { name: 'New user' });
    await dialog.getByLabel('Username').fill(user.username);
    await dialog.getByLabel('Email').fill(`${user.username}@example.com`);
    // (The label also holds the password rule: its name starts with Password.)
    await dialog.getByLabel(/^Password/).fill(user.password);
    await dialog.getByLabel('Confirm password').fill(user.password);
    await dialog.getByRole('button', { name: /^(Save|Create)$/ }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('cell', { name: user.username, exact: true }).waitFor();
    // Signed in as them in a second browser context; then signed out.
    const p = await env.browser.newPage();
    await signIn(p, user);
    await p.getByText(`Signed in as ${user.username}`).waitFor();
    assert.equal(await p.getByRole('heading', { name: 'Administration' }).count(), 0);
    await p.getByRole('button', { name: 'Sign out' }).click();
    await p.waitForURL('**/harbor/sign-in**');
    await p.goto('/harbor/projects');
    await p.waitForURL(/\/harbor\/sign-in/);
    await p.context().close();
  });

  test('the audit log shows the push', async () => {
    await page.goto('/harbor/logs');
    await page.getByRole('heading', { level: 1 }).first().waitFor();
    await settled(page);
    const row = page.getByRole('row').filter({ hasText: `${PROJECT}/${REPO}:v1` });
    await row.first().waitFor();
    const text = await row.first().innerText();
    assert.match(text, /create|push/i, 'the operation');
    if (state.robot) assert.ok(text.includes(state.robot.username), `by the robot (${text})`);
    assert.ok(await page.locator('main svg').count(), 'the activity chart');
    await screenshot(page, 'logs');
  });

  test('dark theme: the flow renders and the theme is applied', async () => {
    const p = await env.browser.newPage();
    await signIn(p);
    await setDark(p, true);
    assert.equal(await p.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assert.equal(await p.evaluate(() => localStorage.getItem('berth-theme')), 'dark');
    // A project created in the dark theme, and its pages.
    await p.getByRole('button', { name: 'New project' }).click();
    await p.getByRole('dialog').getByLabel('Project name').fill('dark-project');
    await p.getByRole('dialog').getByLabel('Public').check();
    await p.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
    await p.waitForURL(/\/harbor\/projects\/\d+\/repositories$/);
    await p.getByRole('heading', { level: 1, name: 'dark-project' }).waitFor();
    await checkA11y(p, 'dark project repositories');
    await p.getByRole('link', { name: 'Projects' }).first().click();
    await p.getByRole('link', { name: 'dark-project' }).waitFor();
    await settled(p);
    await screenshot(p, 'projects-dark');
    // The preference survives a reload.
    await p.reload();
    await p.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    assert.equal(await p.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assert.equal(await p.getByRole('switch', { name: 'Dark theme' }).isChecked(), true);
    const id = await projectId();
    await p.goto(`/harbor/projects/${id}/members`);
    await p.getByRole('button', { name: 'New member' }).waitFor();
    await p.goto('/harbor/logs');
    await p.getByRole('row').filter({ hasText: `${PROJECT}/${REPO}:v1` }).first().waitFor();
    await p.context().close();
  });

  test('Chinese: the language select switches the portal to 简体中文', async () => {
    const p = await env.browser.newPage();
    await signIn(p);
    await setLanguage(p, 'zh-CN');
    await p.getByRole('heading', { name: '项目', level: 1 }).waitFor();
    await p.getByRole('navigation', { name: '主导航' }).getByRole('link', { name: '项目' }).waitFor();
    await p.getByRole('button', { name: '退出登录' }).waitFor();
    assert.equal(await p.evaluate(() => localStorage.getItem('berth-lang')), 'zh-CN');
    await settled(p);
    await screenshot(p, 'projects-zh');
    // A project created in Chinese, then its tabs.
    await p.getByRole('button', { name: '新建项目' }).click();
    await p.getByRole('dialog').getByLabel('项目名称').fill('zh-project');
    await p.getByRole('dialog').getByRole('button', { name: '新建' }).click();
    await p.waitForURL(/\/harbor\/projects\/\d+\/repositories$/);
    await p.getByRole('link', { name: '成员' }).click();
    await p.getByRole('heading', { level: 2, name: '成员' }).waitFor();
    // Kept after a reload; English again from the select.
    await p.reload();
    await p.getByRole('heading', { level: 2, name: '成员' }).waitFor();
    await setLanguage(p, 'en');
    await p.getByRole('heading', { level: 2, name: 'Members' }).waitFor();
    await p.context().close();
  });

  test('no script errors or CSP violations in the browser', () => {
    assert.deepEqual(env.browser.errors, []);
  });
});
