// Project policies doing their jobs, with real clients: a webhook created on
// the Webhooks page (its connection test, its secret copied) receives the
// signed PUSH_ARTIFACT of a skopeo push, and shows the delivery; a tag
// immutability rule added on the Policy page refuses a skopeo push moving a
// tag. The webhook receiver is a Node server on 127.0.0.1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { ADMIN, api, createProject, pushImage, readClipboard, recordSecret, setup, signIn } from './harness.mjs';

const PROJECT = 'hooks';

async function settled(page) {
  await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'), null, { timeout: 10_000 }).catch(() => {});
}

/** An HTTP receiver on 127.0.0.1 keeping every request. */
async function receiver() {
  const got = [];
  const waiters = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200).end('ok');
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/hook`;
  /** The first request `pred` accepts, waiting up to `ms`. */
  const waitFor = async (pred, ms = 20_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = got.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the receiver got no such request in ${ms} ms (got ${got.length}: ${got.map((g) => g.body.toString().slice(0, 120)).join(' | ')})`);
      await new Promise((r) => {
        waiters.push(r);
        setTimeout(r, Math.min(left, 500));
      });
    }
  };
  return { url, got, waitFor, close: () => new Promise((r) => server.close(r)) };
}

const eventType = (g) => {
  try {
    return JSON.parse(g.body.toString()).type;
  } catch {
    return undefined;
  }
};

describe('project policies', () => {
  let env;
  let page;
  let hook;
  let projectId;
  before(async () => {
    env = await setup();
    // The receiver is on 127.0.0.1: allow loopback targets.
    await api(env.berth, 'PUT', '/configurations', { webhook_allow_private: true });
    projectId = await createProject(env.berth, PROJECT);
    hook = await receiver();
    page = await env.browser.newPage();
    await signIn(page);
  });
  after(async () => {
    await hook?.close();
    await env?.teardown();
  });

  test('a webhook from the Webhooks page gets the signed push event', async () => {
    await page.goto(`/harbor/projects/${projectId}/webhook`);
    await page.getByRole('heading', { level: 2, name: 'Webhooks' }).waitFor();
    await page.getByRole('button', { name: 'New webhook' }).click();
    const dialog = page.getByRole('dialog', { name: 'New webhook' });
    await dialog.getByLabel('Name', { exact: true }).fill('ci-hook');
    await dialog.getByLabel(/^Endpoint URL/).fill(hook.url);
    // The connection test reaches the receiver.
    await dialog.getByRole('button', { name: 'Test endpoint' }).click();
    await dialog.getByRole('status').filter({ hasText: /delivered/i }).waitFor();
    await hook.waitFor(() => true);
    await dialog.getByRole('button', { name: 'Create' }).click();
    // The signing secret, shown once.
    const created = page.getByRole('dialog', { name: 'Webhook created' });
    await created.waitFor();
    await created.getByRole('button', { name: 'Copy secret' }).click();
    const secret = await readClipboard(page, (t) => t.length >= 16);
    assert.ok(secret.length >= 16, 'a secret was copied');
    assert.ok((await created.innerText()).includes(secret), 'the copied secret is the one shown');
    recordSecret(secret);
    await created.getByRole('button', { name: 'Done' }).click();
    await created.waitFor({ state: 'detached' });
    await page.getByRole('cell', { name: 'ci-hook', exact: true }).first().waitFor();

    // A push reaches the receiver, signed with that secret.
    // (The connection test above sent an unsigned sample event: only what
    // arrives after the push counts.)
    const seen = hook.got.length;
    await pushImage(env.berth, `${PROJECT}/app`, ADMIN, 'v1');
    const ev = await hook.waitFor((g) => hook.got.indexOf(g) >= seen && eventType(g) === 'PUSH_ARTIFACT');
    const expected = `sha256=${createHmac('sha256', secret).update(ev.body).digest('hex')}`;
    assert.equal(ev.headers['x-berth-signature'], expected, 'X-Berth-Signature is the HMAC of the body under the copied secret');
    assert.match(ev.body.toString(), /"repo_full_name":"hooks\/app"/);

    // The delivery shows on the page.
    await page.reload();
    await page.getByRole('button', { name: 'Deliveries of ci-hook' }).click();
    const deliveries = page.getByRole('dialog');
    await deliveries.getByRole('row').filter({ hasText: /push/i }).filter({ hasText: /success/i }).first().waitFor();
  });

  test('a tag immutability rule from the Policy page refuses a skopeo push moving the tag', async () => {
    await pushImage(env.berth, `${PROJECT}/app`, ADMIN, 'release-1');
    await page.goto(`/harbor/projects/${projectId}/policy`);
    await page.getByRole('heading', { name: 'Tag immutability' }).waitFor();
    await settled(page);
    await page.getByRole('region', { name: 'Tag immutability' }).getByRole('button', { name: 'Add rule' }).click();
    const dialog = page.getByRole('dialog', { name: 'New immutability rule' });
    await dialog.getByLabel(/^Repository pattern/).fill('**');
    await dialog.getByLabel(/^Tag pattern/).fill('release-*');
    await dialog.getByRole('button', { name: /^(Add|Save|Create)$/ }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('region', { name: 'Tag immutability' }).getByRole('cell', { name: 'release-*' }).first().waitFor();
    const rules = (await api(env.berth, 'GET', `/projects/${projectId}/immutabletagrules`)).json;
    assert.equal(rules.length, 1);
    await assert.rejects(pushImage(env.berth, `${PROJECT}/app`, ADMIN, 'release-1', ' moved'), /skopeo copy failed/, 'moving release-1 is refused');
    // Another tag is not held.
    await pushImage(env.berth, `${PROJECT}/app`, ADMIN, 'v2', ' moved');
  });

  test('no script errors or CSP violations in the browser', () => {
    assert.deepEqual(env.browser.errors, []);
  });
});
