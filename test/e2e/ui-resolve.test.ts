// The operator's path through the Temporal UI (2.42.1, embedded in the dev server), in headless
// Chromium: find the upgrade waiting for an operator, send `resolve` from the "Send an Update"
// dialog, and see the upgrade complete. Screenshots go to test-results/ as artifacts.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { Browser } from 'playwright-core';
import { ConfigMapResource } from '../../src/api/core.js';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { demoRegistry } from '../jobs/demo.js';
import { CHROMIUM, launchChromium } from '../helpers/browser.js';
import { devEnv, repoRoot } from '../helpers/env.js';
import { devClusterConnection } from '../helpers/kube.js';
import { FAST_RETRY, demoSetup, startWorker, temporalClients, waitForProgress } from '../helpers/upgrade.js';

const ARTIFACTS = path.join(repoRoot, 'test-results');

describe('operator in the Temporal UI', () => {
  let conn: ClusterConnection;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  let browser: Browser;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`);
    mkdirSync(ARTIFACTS, { recursive: true });
    conn = await devClusterConnection();
    ({ client, connection, native } = await temporalClients());
    ({ worker, run, taskQueue } = await startWorker(native, demoRegistry()));
    browser = await launchChromium();
  });
  after(async () => {
    await browser.close();
    worker.shutdown();
    await run;
    conn.close();
    await connection.close();
    await native.close();
  });

  it('finds the upgrade awaiting an operator and resolves it with an Update from the UI', async () => {
    const s = await demoSetup(conn.client, { jobSettings: FAST_RETRY });
    await conn.client.create(ConfigMapResource, {
      metadata: { name: 'fail-beta-post-upgrade', namespace: s.namespace },
    });
    const { handle } = await startUpgrade(client, s.input, taskQueue);
    await waitForProgress(handle, (p) => p.status === 'AwaitingOperator');

    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const ui = devEnv().temporalUiUrl;
    try {
      // The operator searches the list for upgrades waiting for them.
      const query = `UpgradeStatus="AwaitingOperator" AND WorkflowId="${handle.workflowId}"`;
      await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
      const row = page.getByRole('link', { name: handle.workflowId });
      await row.first().waitFor({ timeout: 30_000 });
      await page.screenshot({ path: path.join(ARTIFACTS, 'ui-1-awaiting-operator-list.png') });
      await row.first().click();
      await page.getByRole('button', { name: 'More Actions' }).waitFor();

      await page.getByRole('button', { name: 'More Actions' }).click();
      await page.getByRole('menuitem', { name: 'Send an Update' }).click();
      const dialog = page.locator('dialog[open]');
      await dialog.locator('[data-testid=update-select-button]').click();
      // The handler's description (from the workflow's metadata query) tells the operator what to send.
      const option = dialog.locator('[role=option]').filter({ hasText: 'resolve' });
      assert.match((await option.textContent()) ?? '', /Decide a failed step/);
      await option.click();
      await dialog.locator('[contenteditable=true][data-language=json]').click();
      await page.keyboard.type(
        '{"action":"skip","reason":"skipped from the Temporal UI","by":"ui-operator"}',
      );
      // The editor commits its value on blur.
      await dialog.locator('#update-id').click();
      await page.screenshot({ path: path.join(ARTIFACTS, 'ui-2-send-update.png') });
      await dialog.locator('[data-testid=confirm-modal-button]').click();
      await page.locator('dialog[open]').waitFor({ state: 'detached', timeout: 30_000 });

      const result = await handle.result();
      assert.equal(result.status, 'Succeeded');
      assert.deepEqual(
        result.decisions.map((d) => [d.action, d.by, d.reason, d.job]),
        [['skip', 'ui-operator', 'skipped from the Temporal UI', 'beta']],
      );
      await page.reload();
      await page.getByText('Completed').first().waitFor({ timeout: 30_000 });
      await page.screenshot({ path: path.join(ARTIFACTS, 'ui-3-completed.png') });
    } finally {
      await page.close();
    }
  });
});
