// axe-core (WCAG 2.0/2.1 A and AA) on every main page, in the light and the
// dark theme: no serious or critical violation. The sign-in page is checked in
// signin.test.mjs. Data is seeded first so that tables have rows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, api, checkA11y, createProject, createUser, pushImage, recordSecret, setDark, setup, signIn } from './harness.mjs';

const PROJECT = 'a11y';
const REPO = 'tools/app';

async function settled(page) {
  await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'), null, { timeout: 10_000 }).catch(() => {});
}

let env;
let projectId;
const urls = { repository: null, artifact: null };

before(async () => {
  env = await setup();
  const b = env.berth;
  projectId = await createProject(b, PROJECT);
  await createUser(b, 'reader', 'Reader12345');
  await api(b, 'POST', `/projects/${projectId}/members`, { role_id: 3, member_user: { username: 'reader' } });
  await api(b, 'POST', '/labels', { name: 'release', color: '#0b5394', scope: 'p', project_id: projectId });
  await api(b, 'POST', '/labels', { name: 'approved', color: '#38761d', scope: 'g' });
  const robot = await api(b, 'POST', '/robots', {
    name: 'builder',
    level: 'project',
    duration: 30,
    permissions: [{ kind: 'project', namespace: PROJECT, access: [{ resource: 'repository', action: 'pull' }] }],
  });
  recordSecret(robot.json.secret);
  await pushImage(b, `${PROJECT}/${REPO}`, ADMIN, 'v1');
});
after(async () => {
  await env?.teardown();
});

/** Path, and what to wait for before checking. */
const PAGES = [
  ['projects', () => '/harbor/projects'],
  ['project summary', () => `/harbor/projects/${projectId}/summary`],
  ['project repositories', () => `/harbor/projects/${projectId}/repositories`],
  ['repository', () => urls.repository],
  ['artifact', () => urls.artifact],
  ['project members', () => `/harbor/projects/${projectId}/members`],
  ['project robot accounts', () => `/harbor/projects/${projectId}/robot-account`],
  ['project labels', () => `/harbor/projects/${projectId}/labels`],
  ['project logs', () => `/harbor/projects/${projectId}/logs`],
  ['project policy', () => `/harbor/projects/${projectId}/policy`],
  ['project webhooks', () => `/harbor/projects/${projectId}/webhook`],
  ['users', () => '/harbor/users'],
  ['robot accounts', () => '/harbor/robot-accounts'],
  ['registries', () => '/harbor/registries'],
  ['replications', () => '/harbor/replications'],
  ['labels', () => '/harbor/labels'],
  ['logs', () => '/harbor/logs'],
  ['garbage collection', () => '/harbor/clearing-job/gc'],
  ['configuration', () => '/harbor/configs'],
];

for (const theme of ['light', 'dark']) {
  describe(`axe, ${theme} theme`, () => {
    let page;
    before(async () => {
      page = await env.browser.newPage();
      await signIn(page);
      await setDark(page, theme === 'dark');
      if (!urls.repository) {
        // The repository and artifact pages, reached by their links (if
        // these are missing, the two pages' tests say so).
        try {
          await page.goto(`/harbor/projects/${projectId}/repositories`);
          await page.getByRole('link', { name: new RegExp(`${REPO}$`) }).first().click({ timeout: 5_000 });
          await page.waitForURL(/\/repositories\/[^/]+$/);
          urls.repository = new URL(page.url()).pathname;
          await settled(page);
          await page.getByRole('link', { name: /sha256:/ }).first().click({ timeout: 5_000 });
          await page.waitForURL(/\/artifacts-tab\/artifacts\/sha256:/);
          urls.artifact = new URL(page.url()).pathname;
        } catch {
          /* reported by the repository / artifact tests */
        }
      }
    });
    after(async () => {
      await page?.context().close();
    });

    for (const [name, path] of PAGES) {
      test(`${name} (${theme})`, async () => {
        assert.ok(path(), `no address for the ${name} page (its link was not found)`);
        await page.goto(path());
        // The page itself rendered: project tabs start with an <h2> (the
        // layout has the project's <h1>), other pages with their <h1>.
        await page.locator(name.startsWith('project ') ? 'main h2' : 'main h1').first().waitFor();
        assert.equal(await page.getByRole('heading', { name: 'Page not found' }).count(), 0);
        await settled(page);
        assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), theme);
        await checkA11y(page, `${name} (${theme})`);
      });
    }
  });
}

test('no script errors or CSP violations in the browser', () => {
  assert.deepEqual(env.browser.errors, []);
});
