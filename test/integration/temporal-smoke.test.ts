// Proves the dev Temporal server is real: a worker runs a workflow that calls an activity, the
// result comes back, and the run (with its search attribute) is visible through the built CLI.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { devEnv, uniqueName } from '../helpers/env.js';
import { installTestRuntime } from '../helpers/temporal.js';
import { smokeWorkflow } from '../workflows/smoke.js';

const run = promisify(execFile);
const UpgradeStatus = defineSearchAttributeKey('UpgradeStatus', SearchAttributeType.KEYWORD);

describe('Temporal dev server smoke', () => {
  const env = devEnv();
  let connection: Connection;
  let nativeConnection: NativeConnection;
  let client: Client;

  before(async () => {
    installTestRuntime();
    connection = await Connection.connect({ address: env.temporalAddress });
    nativeConnection = await NativeConnection.connect({ address: env.temporalAddress });
    client = new Client({ connection, namespace: env.temporalNamespace });
  });
  after(async () => {
    await connection.close();
    await nativeConnection.close();
  });

  it('runs a workflow whose activity result is read back, and lists it with the temporal CLI', async () => {
    const taskQueue = uniqueName('smoke');
    const workflowId = uniqueName('smoke-wf');
    const status = uniqueName('smoke-status');
    const worker = await Worker.create({
      connection: nativeConnection,
      namespace: env.temporalNamespace,
      taskQueue,
      workflowsPath: fileURLToPath(new URL('../workflows/smoke.ts', import.meta.url)),
      activities: { greet: (name: string) => Promise.resolve(`hello ${name} from pid ${process.pid}`) },
    });
    const result = await worker.runUntil(
      client.workflow.execute(smokeWorkflow, {
        taskQueue,
        workflowId,
        args: ['ks'],
        typedSearchAttributes: [{ key: UpgradeStatus, value: status }],
      }),
    );
    assert.equal(result, `workflow saw: hello ks from pid ${process.pid}`);

    // Visibility is eventually consistent: poll the CLI until the closed run shows up.
    const query = `WorkflowId="${workflowId}" AND UpgradeStatus="${status}"`;
    let listed: { execution?: { workflowId?: string }; status?: string }[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const { stdout } = await run(env.temporalCliPath, [
        'workflow',
        'list',
        '--address',
        env.temporalAddress,
        '--namespace',
        env.temporalNamespace,
        '--query',
        query,
        '--output',
        'json',
      ]);
      listed = JSON.parse(stdout || '[]') as typeof listed;
      if (listed.length > 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(listed.length, 1, `temporal workflow list --query '${query}' did not show the run`);
    const [run0] = listed;
    assert.ok(run0);
    assert.equal(run0.execution?.workflowId, workflowId);
    assert.match(String(run0.status), /COMPLETED/);
  });
});
