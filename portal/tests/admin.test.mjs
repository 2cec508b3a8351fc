// Administration pages doing their jobs: a global label, a registry endpoint
// (this same Berth, over loopback) with its connection test, and a garbage
// collection started from the Clean Up page.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, api, setup, signIn } from './harness.mjs';

async function settled(page) {
  await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'), null, { timeout: 10_000 }).catch(() => {});
}

describe('administration', () => {
  let env;
  let page;
  before(async () => {
    env = await setup();
    // The endpoint below is this Berth on 127.0.0.1: allow loopback targets.
    await api(env.berth, 'PUT', '/configurations', { webhook_allow_private: true });
    page = await env.browser.newPage();
    await signIn(page);
  });
  after(async () => {
    await env?.teardown();
  });

  test('a global label from the Labels page', async () => {
    await page.goto('/harbor/labels');
    await page.getByRole('heading', { level: 1, name: 'Labels' }).waitFor();
    await page.getByRole('button', { name: 'New label' }).click();
    const dialog = page.getByRole('dialog', { name: 'New label' });
    await dialog.getByLabel('Label name').fill('reviewed');
    await dialog.getByRole('button', { name: /^(Save|Create)$/ }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('main').getByText('reviewed', { exact: true }).first().waitFor();
    const { json } = await api(env.berth, 'GET', '/labels?scope=g');
    assert.ok(json.some((l) => l.name === 'reviewed'), 'the label exists');
  });

  test('a registry endpoint: connection test, then created', async () => {
    await page.goto('/harbor/registries');
    await page.getByRole('heading', { level: 1, name: 'Registries' }).waitFor();
    await page.getByRole('button', { name: 'New endpoint' }).click();
    const dialog = page.getByRole('dialog', { name: 'New endpoint' });
    const provider = dialog.getByLabel('Provider');
    const options = await provider.locator('option').evaluateAll((os) => os.map((o) => o.value));
    await provider.selectOption(options.includes('harbor') ? 'harbor' : options[0]);
    await dialog.getByLabel('Name', { exact: true }).fill('self');
    await dialog.getByLabel(/^Endpoint URL/).fill(env.berth.url);
    await dialog.getByLabel('Access ID').fill(ADMIN.username);
    await dialog.getByLabel('Access secret').fill(ADMIN.password);
    await dialog.getByRole('button', { name: 'Test connection' }).click();
    await dialog.getByRole('status').filter({ hasText: /succeeded/i }).waitFor();
    await dialog.getByRole('button', { name: 'Create' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('cell', { name: 'self', exact: true }).waitFor();
    const { json } = await api(env.berth, 'GET', '/registries');
    assert.equal(json.find((r) => r.name === 'self')?.url, env.berth.url);
  });

  test('garbage collection started from the Clean Up page', async () => {
    await page.goto('/harbor/clearing-job/gc');
    await page.getByRole('heading', { level: 1, name: 'Clean Up' }).waitFor();
    await settled(page);
    await page.getByRole('button', { name: 'GC now' }).click();
    // The run shows in the history, and the server has it.
    let runs = [];
    for (let i = 0; i < 50 && !runs.length; i++) {
      runs = (await api(env.berth, 'GET', '/system/gc')).json ?? [];
      if (!runs.length) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(runs.length, 'a collection was started');
    await page.getByRole('cell', { name: String(runs[0].id), exact: true }).first().waitFor();
  });

  test('no script errors or CSP violations in the browser', () => {
    assert.deepEqual(env.browser.errors, []);
  });
});
