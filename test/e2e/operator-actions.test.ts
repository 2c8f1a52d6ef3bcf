// Operator decisions on a failed step, sent with the real `temporal` CLI (as an operator would),
// plus starting an upgrade from the CLI, input validation and a history scan for secrets.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type Client, type Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { ConfigMapResource } from '../../src/api/core.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { upgradeWorkflowId } from '../../src/upgrade/input.js';
import { progressQuery } from '../../workflows/messages.js';
import { demoRegistry } from '../jobs/demo.js';
import { devEnv, uniqueName } from '../helpers/env.js';
import { devClusterConnection } from '../helpers/kube.js';
import {
  FAST_RETRY,
  demoSetup,
  startWorker,
  stepLog,
  temporalCli,
  temporalClients,
  waitForProgress,
} from '../helpers/upgrade.js';

describe('operator actions through the temporal CLI', () => {
  let conn: ClusterConnection;
  let kube: ResourceClient;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;

  before(async () => {
    conn = await devClusterConnection();
    kube = conn.client;
    ({ client, connection, native } = await temporalClients());
    ({ worker, run, taskQueue } = await startWorker(native, demoRegistry()));
  });
  after(async () => {
    worker.shutdown();
    await run;
    conn.close();
    await connection.close();
    await native.close();
  });

  const failStep = (ns: string, job: string, phase: string) =>
    kube.create(ConfigMapResource, { metadata: { name: `fail-${job}-${phase}`, namespace: ns } });
  const resolve = (workflowId: string, body: Record<string, unknown>) =>
    temporalCli([
      'workflow',
      'update',
      'execute',
      '--workflow-id',
      workflowId,
      '--name',
      'resolve',
      '--input',
      JSON.stringify(body),
    ]);
  const names = async (ns: string) =>
    (await kube.listAll(ConfigMapResource, { namespace: ns }))
      .map((c) => c.metadata.name ?? '')
      .filter((n) => n !== 'kube-root-ca.crt' && !n.startsWith('fail-'))
      .sort();

  it('skip: a failing step waits for the operator, the skip is recorded, the rest completes', async () => {
    const setup = await demoSetup(kube, { jobSettings: FAST_RETRY });
    await failStep(setup.namespace, 'beta', 'post-upgrade');
    const { handle } = await startUpgrade(client, setup.input, taskQueue);
    const waiting = await waitForProgress(handle, (p) => p.status === 'AwaitingOperator');
    const awaiting = waiting.awaiting;
    assert.ok(awaiting);
    assert.equal(awaiting.phase, 'post-upgrade');
    assert.equal(awaiting.job, 'beta');
    assert.match(awaiting.error, /injected failure/);
    assert.deepEqual(awaiting.allowed, ['retry', 'skip', 'abort']);
    const step = waiting.steps.find((s) => s.job === 'beta' && s.phase === 'post-upgrade');
    assert.equal(step?.attempts, 2, 'the retry policy ran twice before asking');

    // Visible to an operator searching the UI / CLI, with the exact commands in the details.
    const listed = await temporalCli([
      'workflow',
      'list',
      '--query',
      `UpgradeStatus="AwaitingOperator" AND WorkflowId="${handle.workflowId}"`,
      '-o',
      'json',
    ]);
    assert.equal((JSON.parse(listed.stdout || '[]') as unknown[]).length, 1);
    const metadata = await temporalCli(['workflow', 'metadata', '--workflow-id', handle.workflowId]);
    assert.match(metadata.stdout, /injected failure/);
    assert.match(metadata.stdout, /workflow update execute -w .* --name resolve/);

    // The validator rejects a decision without a reason; nothing is recorded.
    const bad = await resolve(handle.workflowId, { action: 'skip' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr + bad.stdout, /a reason is required/);

    const ok = await resolve(handle.workflowId, {
      action: 'skip',
      reason: 'known issue, fixed by hand',
      by: 'alice',
    });
    assert.equal(ok.code, 0, ok.stderr);
    const result = await handle.result();
    assert.equal(result.status, 'Succeeded');
    assert.deepEqual(
      result.decisions.map((d) => [d.action, d.by, d.reason, d.phase, d.job]),
      [['skip', 'alice', 'known issue, fixed by hand', 'post-upgrade', 'beta']],
    );
    assert.equal(result.steps.find((s) => s.job === 'beta' && s.phase === 'post-upgrade')?.state, 'skipped');
    assert.deepEqual(await names(setup.namespace), [
      'alpha-prepared',
      'alpha-v4',
      'beta-prepared',
      'gamma-prepared',
      'gamma-v4',
    ]);

    // Once nothing is awaited, resolve is rejected.
    const late = await resolve(handle.workflowId, { action: 'retry', reason: 'too late' });
    assert.notEqual(late.code, 0);
  });

  it('retry: after the cause is fixed, the same step runs again and the upgrade completes', async () => {
    const setup = await demoSetup(kube, { jobSettings: FAST_RETRY });
    await failStep(setup.namespace, 'gamma', 'pre-upgrade');
    const { handle } = await startUpgrade(client, setup.input, taskQueue);
    await waitForProgress(handle, (p) => p.status === 'AwaitingOperator');
    await kube.delete(ConfigMapResource, 'fail-gamma-pre-upgrade', setup.namespace);
    const res = await resolve(handle.workflowId, {
      action: 'retry',
      reason: 'removed the blocker',
      by: 'bob',
    });
    assert.equal(res.code, 0, res.stderr);
    const result = await handle.result();
    const step = result.steps.find((s) => s.job === 'gamma' && s.phase === 'pre-upgrade');
    assert.ok(step);
    assert.equal(step.state, 'succeeded');
    assert.equal(step.runs, 2);
    assert.equal(step.attempts, 3, '2 failed attempts, then 1 that succeeded');
    assert.ok((await names(setup.namespace)).includes('gamma-v4'));
  });

  it('abort: jobs that ran are rolled back in reverse order and the workflow fails as UpgradeAborted', async () => {
    const setup = await demoSetup(kube, { jobSettings: FAST_RETRY });
    await failStep(setup.namespace, 'gamma', 'post-upgrade');
    const { handle } = await startUpgrade(client, setup.input, taskQueue);
    await waitForProgress(handle, (p) => p.status === 'AwaitingOperator');
    const res = await resolve(handle.workflowId, {
      action: 'abort',
      reason: 'maintenance window over',
      by: 'carol',
    });
    assert.equal(res.code, 0, res.stderr);
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      const cause = err.cause as { type?: string; message?: string };
      assert.equal(cause.type, 'UpgradeAborted');
      assert.match(cause.message ?? '', /aborted by carol: maintenance window over/);
      return true;
    });
    // The v3 state is back; nothing of the upgrade is left.
    assert.deepEqual(await names(setup.namespace), ['alpha-v3', 'beta-v3', 'gamma-v3']);
    const rollbackOrder = (await stepLog(setup.log)).filter((l) => l.endsWith('rollback start'));
    assert.deepEqual(rollbackOrder, ['gamma rollback start', 'beta rollback start', 'alpha rollback start']);
    const progress = await handle.query(progressQuery);
    assert.equal(progress.status, 'Aborted');
    assert.deepEqual(
      progress.steps.filter((s) => s.phase === 'rollback').map((s) => [s.job, s.state]),
      [
        ['gamma', 'rolled-back'],
        ['beta', 'rolled-back'],
        ['alpha', 'rolled-back'],
      ],
    );
  });

  it('starts from `temporal workflow start --type upgradeCluster` with plain JSON input', async () => {
    const setup = await demoSetup(kube);
    const workflowId = upgradeWorkflowId(setup.cluster);
    const started = await temporalCli([
      'workflow',
      'start',
      '--type',
      'upgradeCluster',
      '--task-queue',
      taskQueue,
      '--workflow-id',
      workflowId,
      '--input',
      JSON.stringify(setup.input),
    ]);
    assert.equal(started.code, 0, started.stderr);
    const result = await temporalCli(['workflow', 'result', '--workflow-id', workflowId, '-o', 'json']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /"status":\s*"Succeeded"/);
    assert.deepEqual(await names(setup.namespace), [
      'alpha-prepared',
      'alpha-v4',
      'beta-prepared',
      'beta-v4',
      'gamma-prepared',
      'gamma-v4',
    ]);
  });

  it('rejects input carrying credentials with a clear, non-retryable failure', async () => {
    const workflowId = uniqueName('bad-input');
    const input = {
      cluster: 'host',
      configFiles: ['/etc/ks/config.yaml'],
      overrides: { jobs: { devops: { dynamicOptions: { password: 'hunter2' } } } },
    };
    const started = await temporalCli([
      'workflow',
      'start',
      '--type',
      'upgradeCluster',
      '--task-queue',
      taskQueue,
      '--workflow-id',
      workflowId,
      '--input',
      JSON.stringify(input),
    ]);
    assert.equal(started.code, 0, started.stderr);
    await assert.rejects(client.workflow.getHandle(workflowId).result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      const cause = err.cause as { type?: string; message?: string; nonRetryable?: boolean };
      assert.equal(cause.type, 'InvalidInput');
      assert.equal(cause.nonRetryable, true);
      assert.match(
        cause.message ?? '',
        /overrides\.jobs\.devops\.dynamicOptions\.password: credentials are not accepted/,
      );
      return true;
    });
    // Our own client refuses before starting, so the secret never reaches history.
    await assert.rejects(startUpgrade(client, input, taskQueue), /credentials are not accepted/);
  });

  it('keeps every configured secret out of workflow history', async () => {
    const env = devEnv();
    const key = randomBytes(32).toString('base64');
    process.env.KS_UPGRADE_TEST_BACKUP_KEY = key;
    const prefix = `${uniqueName('hist')}/`;
    const setup = await demoSetup(kube, {
      storage: {
        s3: {
          endpoint: env.s3Endpoint,
          bucket: env.s3Bucket,
          region: env.s3Region,
          forcePathStyle: true,
          prefix,
          accessKeyID: env.s3AccessKeyId,
          secretAccessKey: env.s3SecretAccessKey,
        },
        encryption: { keyEnv: 'KS_UPGRADE_TEST_BACKUP_KEY' },
      },
      jobSettings: FAST_RETRY,
    });
    await failStep(setup.namespace, 'alpha', 'pre-upgrade');
    const { handle } = await startUpgrade(client, setup.input, taskQueue);
    await waitForProgress(handle, (p) => p.status === 'AwaitingOperator');
    await kube.delete(ConfigMapResource, 'fail-alpha-pre-upgrade', setup.namespace);
    assert.equal((await resolve(handle.workflowId, { action: 'retry', reason: 'fixed' })).code, 0);
    await handle.result();

    // Every string and every payload byte of the history, decoded as text.
    const history = await handle.fetchHistory();
    const texts: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') texts.push(v);
      else if (v instanceof Uint8Array) texts.push(Buffer.from(v).toString('utf8'));
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(history);
    const corpus = texts.join('\n');
    assert.ok(corpus.includes(setup.configFile), 'the scan sees payload contents (the config path is there)');
    const { readFileSync } = await import('node:fs');
    const token = /token: (\S+)/.exec(readFileSync(env.kubeconfig, 'utf8'))?.[1] ?? '';
    // The dev S3 server's access key ID equals its bucket name, which history names on purpose (the
    // preflight's store check reports the location): only a distinct key ID can be looked for.
    const accessKey =
      env.s3AccessKeyId === env.s3Bucket ? [] : [['S3 access key', env.s3AccessKeyId] as const];
    for (const [what, secret] of [
      ...accessKey,
      ['S3 secret key', env.s3SecretAccessKey],
      ['encryption key', key],
      ['kubeconfig token', token],
    ] as const) {
      assert.ok(secret.length > 8, `${what} is a real value`);
      assert.ok(!corpus.includes(secret), `${what} appears in workflow history`);
    }
  });
});
