// The Temporal UI with encrypted payloads, in headless Chromium: the embedded default starts a
// codec server beside its dev server and points the UI at it (`--ui-codec-endpoint`), so the UI
// shows the decoded workflow input; a UI without the codec endpoint shows ciphertext only.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { Browser } from 'playwright-core';
import { startUpgrade } from '../../src/temporal/client.js';
import {
  ENCRYPTED_ENCODING,
  dataConverterOf,
  ensureLocalKeyFile,
  loadKeyring,
} from '../../src/temporal/codec.js';
import { ensureEmbeddedServer, type EmbeddedServerLease } from '../../src/temporal/dev-server.js';
import type { UpgradeClusterInput } from '../../src/upgrade/input.js';
import { devEnv, repoRoot, uniqueName } from '../helpers/env.js';
import { CHROMIUM, launchChromium } from '../helpers/browser.js';

const ARTIFACTS = path.join(repoRoot, 'test-results');
const ENCRYPTED_B64 = Buffer.from(ENCRYPTED_ENCODING).toString('base64');

describe('Temporal UI with the codec server', () => {
  let stateDir: string;
  let lease: EmbeddedServerLease;
  let browser: Browser;
  const connections: Connection[] = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`);
    mkdirSync(ARTIFACTS, { recursive: true });
    stateDir = await mkdtemp(path.join(tmpdir(), 'ks-upgrade-ui-codec-'));
    // The embedded default exactly as `ks-upgrade run` starts it.
    lease = await ensureEmbeddedServer(stateDir, devEnv().temporalCliPath, 'ui-codec test', {
      codec: { keyFile: ensureLocalKeyFile(stateDir) },
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser.close();
    for (const c of connections) await c.close();
    await lease.release();
    await rm(stateDir, { recursive: true, force: true });
  });

  /** Starts an upgrade (no worker needed: the input is in the first event) with the codec on. */
  const startEncrypted = async (
    address: string,
  ): Promise<{ workflowId: string; marker: string; client: Client }> => {
    const connection = await Connection.connect({ address });
    connections.push(connection);
    const client = new Client({
      connection,
      dataConverter: dataConverterOf(loadKeyring({ keyFile: path.join(stateDir, 'codec.key') })),
    });
    const marker = `/etc/ks-upgrade/${uniqueName('marker')}.yaml`;
    const input: UpgradeClusterInput = {
      cluster: uniqueName('ui-codec').slice(0, 40),
      kube: { kubeconfig: '/nonexistent/kubeconfig' },
      configFiles: [marker],
    };
    const { handle } = await startUpgrade(client, input, uniqueName('no-worker'));
    return { workflowId: handle.workflowId, marker, client };
  };

  /**
   * The text of the workflow's "Input and Results" section once it shows `expected` (decoding is
   * a round trip from the browser to the codec server), or whatever it shows after a minute.
   */
  const inputSection = async (
    uiUrl: string,
    workflowId: string,
    expected: string,
    shot: string,
  ): Promise<string> => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
    try {
      await page.goto(`${uiUrl}/namespaces/default/workflows/${workflowId}`);
      const section = page.getByTestId('input-and-result');
      await section.waitFor({ timeout: 60_000 });
      await section.click();
      let text = '';
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        text = await section.innerText();
        if (text.includes(expected)) break;
        await page.waitForTimeout(500);
      }
      await page.screenshot({ path: path.join(ARTIFACTS, shot), fullPage: true });
      return text;
    } finally {
      await page.close();
    }
  };

  it('the embedded UI shows the decoded input through the codec server', async () => {
    assert.ok(lease.codecUrl, 'the embedded default started a codec server');
    const { workflowId, marker, client } = await startEncrypted(lease.server.address);
    try {
      const text = await inputSection(lease.server.uiUrl ?? '', workflowId, marker, 'ui-codec-decoded.png');
      assert.ok(text.includes(marker), `the UI shows the decoded input (${marker}); it shows:\n${text}`);
      assert.ok(!text.includes(ENCRYPTED_B64), 'no encrypted payload left');
    } finally {
      await client.workflow.getHandle(workflowId).terminate('test done');
    }
  });

  it('a UI without the codec endpoint shows the payload as ciphertext', async () => {
    const env = devEnv();
    const { workflowId, marker, client } = await startEncrypted(env.temporalAddress);
    try {
      const text = await inputSection(
        env.temporalUiUrl,
        workflowId,
        ENCRYPTED_B64,
        'ui-codec-ciphertext.png',
      );
      // The UI shows the payload as it is: metadata and data in base64, `encoding` binary/encrypted.
      assert.ok(text.includes(ENCRYPTED_B64), `the UI shows the encrypted payload; it shows:\n${text}`);
      assert.ok(!text.includes(marker), 'the input is not readable');
    } finally {
      await client.workflow.getHandle(workflowId).terminate('test done');
    }
  });
});
