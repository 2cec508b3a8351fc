// A guest of a project (created with the API as admin, added as Guest) signs
// in through the browser and sees no administration: no Administration
// navigation, no "New member", no "New robot account", no "Delete", no
// "Add tag".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, api, createProject, createUser, pushImage, setup, signIn } from './harness.mjs';

const GUEST = { username: 'guest1', password: 'Guest12345' };
const PROJECT = 'shared';

async function settled(page) {
  await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'), null, { timeout: 10_000 }).catch(() => {});
}

describe('guest', () => {
  let env;
  let page;
  let projectId;

  before(async () => {
    env = await setup();
    await createUser(env.berth, GUEST.username, GUEST.password);
    projectId = await createProject(env.berth, PROJECT);
    await api(env.berth, 'POST', `/projects/${projectId}/members`, { role_id: 3, member_user: { username: GUEST.username } });
    await api(env.berth, 'POST', '/labels', { name: 'qa', color: '#2f7d31', scope: 'p', project_id: projectId });
    await pushImage(env.berth, `${PROJECT}/app`, ADMIN, 'v1');
    page = await env.browser.newPage();
    await signIn(page, GUEST);
  });
  after(async () => {
    await env?.teardown();
  });

  /** No element with this role and name on the page (after it loaded). */
  async function absent(role, name) {
    const n = await page.getByRole(role, { name }).count();
    assert.equal(n, 0, `a guest sees no ${role} "${name}" on ${new URL(page.url()).pathname}`);
  }

  test('no Administration navigation; admin pages refuse', async () => {
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    await absent('heading', 'Administration');
    for (const name of ['Users', 'Configuration', 'Registries', 'Replications', 'Clean Up']) await absent('link', name);
    // The projects list shows the guest's role.
    await page.getByRole('row').filter({ hasText: PROJECT }).getByText('Guest').waitFor();
    await page.goto('/harbor/users');
    await page.getByText('Only system administrators can see this page.').waitFor();
    await absent('button', 'New user');
  });

  test('members: no "New member", no "Delete"', async () => {
    await page.goto(`/harbor/projects/${projectId}/members`);
    await page.getByRole('heading', { level: 2, name: 'Members' }).waitFor();
    await page.getByRole('cell', { name: GUEST.username, exact: true }).waitFor();
    await settled(page);
    await absent('button', 'New member');
    await absent('button', 'Delete');
  });

  test('robot accounts: no tab, no "New robot account"', async () => {
    await page.goto(`/harbor/projects/${projectId}/repositories`);
    await page.getByRole('navigation', { name: 'Project sections' }).waitFor();
    await absent('link', 'Robot Accounts');
    await page.goto(`/harbor/projects/${projectId}/robot-account`);
    await page.getByRole('heading', { level: 1, name: PROJECT }).waitFor();
    await settled(page);
    await absent('button', 'New robot account');
  });

  test('repository and artifact: readable, nothing to delete or tag', async () => {
    await page.goto(`/harbor/projects/${projectId}/repositories`);
    await settled(page);
    await absent('button', 'Delete');
    await page.getByRole('link', { name: /app$/ }).first().click();
    await page.getByRole('heading', { level: 1 }).filter({ hasText: 'app' }).waitFor();
    await settled(page);
    await absent('button', 'Delete');
    await page.getByRole('link', { name: /sha256:/ }).first().click();
    await page.waitForURL(/\/artifacts-tab\/artifacts\/sha256:/);
    await page.locator('main').getByText('linux/amd64').first().waitFor();
    await settled(page);
    await absent('button', 'Delete');
    await absent('button', 'Add tag');
    // Pulling is what a guest may do.
    assert.ok(await page.getByRole('button', { name: 'Copy pull command' }).count(), 'the pull command is offered');
  });

  test('labels: nothing to create or delete', async () => {
    await page.goto(`/harbor/projects/${projectId}/labels`);
    await page.getByRole('heading', { level: 2, name: 'Labels' }).waitFor();
    await page.locator('main').getByText('qa', { exact: true }).first().waitFor();
    await settled(page);
    await absent('button', 'Delete');
    await absent('button', 'New label');
  });

  test('project creation restricted to admins: no "New project"', async () => {
    await api(env.berth, 'PUT', '/configurations', { project_creation_restriction: 'adminonly' });
    await page.goto('/harbor/projects');
    await page.getByRole('link', { name: PROJECT }).waitFor();
    await settled(page);
    await absent('button', 'New project');
  });

  test('no script errors or CSP violations in the browser', () => {
    assert.deepEqual(env.browser.errors, []);
  });
});
