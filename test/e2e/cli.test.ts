// The `ks-upgrade` CLI as users run it (a child process), with the demo jobs loaded as a plugin:
// plan, single phases, run against a Temporal service and on the embedded default (including a
// resume after the CLI process itself is killed), status and resolve.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { ConfigMapResource } from '../../src/api/core.js';
import { BUILTIN_JOB_FACTORIES } from '../../src/jobs/builtin.js';
import { createResourceStore } from '../../src/store/index.js';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { startChildWorker, type ChildWorker } from '../helpers/child-worker.js';
import { cli, demoRunArgs, processesUsing, spawnCli, type CliResult } from '../helpers/cli.js';
import { devEnv, uniqueName } from '../helpers/env.js';
import { devClusterConnection } from '../helpers/kube.js';
import { FAST_RETRY, demoSetup, stepLog, type DemoSetup } from '../helpers/upgrade.js';

describe('ks-upgrade CLI', () => {
  const env = devEnv();
  let conn: ClusterConnection;
  let worker: ChildWorker | undefined;
  const kubeArgs = ['--kubeconfig', env.kubeconfig, '--context', env.kubeContext, '--no-defaults'];
  const phaseArgs = (s: DemoSetup) => [...kubeArgs, '--cluster', s.cluster, '--config', s.configFile];
  const argsFor = demoRunArgs;
  const names = async (ns: string) =>
    (await conn.client.listAll(ConfigMapResource, { namespace: ns }))
      .map((c) => c.metadata.name ?? '')
      .filter((n) => n !== 'kube-root-ca.crt' && !n.startsWith('fail-'))
      .sort();

  before(async () => {
    conn = await devClusterConnection();
  });
  after(async () => {
    await worker?.kill();
    conn.close();
  });

  it('plan lists every job in order with why it runs or not, without changing anything', async () => {
    const s = await demoSetup(conn.client);
    const r = await cli([
      'plan',
      ...kubeArgs,
      '--cluster',
      s.cluster,
      '--config',
      s.configFile,
      '--skip-check',
      'kubesphere-version',
      '--skip-reason',
      'demo jobs on a bare API server',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Preflight of cluster \S+: passed/);
    assert.match(r.stdout, /↷ kubesphere-version/);
    const rows = r.stdout.split('\n').filter((l) => /^\s+\d+ /.test(l));
    // The demo jobs by priority, then every built-in job this config does not list (priority 0,
    // not enabled) by name: the original's order rule.
    const builtin = BUILTIN_JOB_FACTORIES.map((f) => f.name).sort();
    assert.deepEqual(
      rows.map((l) => l.trim().split(/\s+/).slice(1, 4)),
      [
        ['alpha', '300', 'yes'],
        ['beta', '200', 'yes'],
        ['gamma', '100', 'yes'],
        ...builtin.map((n) => [n, '0', 'no']),
      ],
    );
    assert.match(
      r.stdout,
      /alpha\s+300\s+yes\s+prepare-upgrade, pre-upgrade, post-upgrade, dynamic-upgrade, rollback/,
    );
    assert.deepEqual(await names(s.namespace), ['alpha-v3', 'beta-v3', 'gamma-v3'], 'plan changed nothing');
  });

  it('rejects a bad config before contacting any cluster (exit 2)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ks-cli-'));
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(bad, 'jobs:\n  alpha:\n    enabled: true\n    priorty: 3\n');
    const deadKubeconfig = path.join(dir, 'kubeconfig');
    await writeFile(
      deadKubeconfig,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    for (const cmd of ['plan', 'run', 'pre-upgrade']) {
      const r = await cli([
        cmd,
        '--no-defaults',
        '--kubeconfig',
        deadKubeconfig,
        '--cluster',
        'x',
        '--config',
        bad,
      ]);
      assert.equal(r.code, 2, `${cmd}: ${r.stderr}`);
      assert.match(r.stderr, /bad\.yaml:4: jobs\.alpha\.priorty: unknown key; did you mean 'priority'\?/);
      assert.doesNotMatch(r.stderr, /127\.0\.0\.1:1/, 'no cluster was contacted');
    }
  });

  it('single-phase commands run in process like the original tool', async () => {
    const s = await demoSetup(conn.client);
    const pre = await cli(['pre-upgrade', ...phaseArgs(s)]);
    assert.equal(pre.code, 0, pre.stderr);
    assert.match(pre.stdout, /\[Job\] alpha pre-upgrade: succeeded/);
    assert.deepEqual(await names(s.namespace), []);
    await conn.client.create(ConfigMapResource, {
      metadata: { name: 'fail-beta-post-upgrade', namespace: s.namespace },
    });
    const post = await cli(['post-upgrade', ...phaseArgs(s)]);
    assert.equal(post.code, 1);
    assert.match(post.stderr, /\[Job\] beta post-upgrade failed: injected failure/);
    // rollback restores from the backups, then moves them aside for the next attempt.
    const rollback = await cli(['rollback', ...phaseArgs(s)]);
    assert.equal(rollback.code, 0, rollback.stderr);
    assert.deepEqual(await names(s.namespace), ['alpha-v3', 'beta-v3', 'gamma-v3']);
    const folder = new RegExp(
      `\\[Rollback\\] 3 backup object\\(s\\) of this attempt moved aside to ${s.cluster}/_attempts/aborted-\\d{8}T\\d{6}Z-[0-9a-f]{8}/`,
    );
    assert.match(rollback.stdout, folder);
    const store = await createResourceStore({ local: { path: s.storeDir } });
    // The cluster's identity binding stays where it is: it is not a backup of the attempt.
    const keys = (await store.list(`${s.cluster}/`)).filter(
      (k) => k !== `${s.cluster}/_cluster/identity.json`,
    );
    assert.ok(await store.stat(`${s.cluster}/_cluster/identity.json`));
    assert.equal(keys.length, 3, keys.join(', '));
    assert.ok(keys.every((k) => k.startsWith(`${s.cluster}/_attempts/aborted-`)));
  });

  it('run against a Temporal service with its workers; status and resolve from another command', async () => {
    const s = await demoSetup(conn.client, { jobSettings: FAST_RETRY });
    const taskQueue = uniqueName('cli');
    worker = await startChildWorker(env.temporalAddress, env.temporalNamespace, taskQueue);
    const remote = ['--temporal-address', env.temporalAddress, '--task-queue', taskQueue];
    await conn.client.create(ConfigMapResource, {
      metadata: { name: 'fail-gamma-post-upgrade', namespace: s.namespace },
    });
    const started = await cli(['run', ...argsFor(s), ...remote, '--detach']);
    assert.equal(started.code, 0, started.stderr);
    assert.match(
      started.stdout,
      new RegExp(`started the upgrade of cluster ${s.cluster} \\(workflow ks-upgrade-${s.cluster}\\)`),
    );

    let status: CliResult;
    const deadline = Date.now() + 60_000;
    do {
      status = await cli(['status', s.cluster, ...remote]);
      if (status.code === 3) break;
      await new Promise((r) => setTimeout(r, 500));
    } while (Date.now() < deadline);
    assert.equal(status.code, 3, `status should report AwaitingOperator: ${status.stdout}${status.stderr}`);
    assert.match(status.stdout, /AwaitingOperator \(post-upgrade \/ gamma\)/);

    const noReason = await cli(['resolve', s.cluster, 'skip', ...remote]);
    assert.equal(noReason.code, 2);
    const resolved = await cli([
      'resolve',
      s.cluster,
      'skip',
      '--reason',
      'gamma is not installed here',
      '--by',
      'dave',
      ...remote,
    ]);
    assert.equal(resolved.code, 0, resolved.stderr);
    let final: CliResult;
    do {
      final = await cli(['status', s.cluster, ...remote, '--json']);
      if (final.stdout.includes('"status": "Succeeded"')) break;
      await new Promise((r) => setTimeout(r, 500));
    } while (Date.now() < deadline + 60_000);
    const again = await cli(['run', ...argsFor(s), ...remote]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      /already succeeded .* pass --rerun/,
      'a finished upgrade is not started again',
    );
    const progress = JSON.parse(final.stdout) as {
      status: string;
      decisions: { by: string; action: string }[];
    };
    assert.equal(progress.status, 'Succeeded');
    assert.deepEqual(
      progress.decisions.map((d) => [d.action, d.by]),
      [['skip', 'dave']],
    );
    await worker.kill();
    worker = undefined;

    // No worker polls any more: a finished upgrade is told from its result, not a query.
    const done = await cli(['status', s.cluster, ...remote]);
    assert.equal(done.code, 0, done.stdout + done.stderr);
    assert.doesNotMatch(done.stdout + done.stderr, /Failed to query|did not answer/);
    assert.match(done.stdout, new RegExp(`cluster ${s.cluster}: Succeeded`));
    assert.match(done.stdout, /skipped\s+post-upgrade\s+gamma/, 'the steps, from the result');
  });

  it('while a step fails and is retried, status and the follow output show its attempt and last failure', async () => {
    const s = await demoSetup(conn.client, {
      jobSettings: { retry: { maximumAttempts: 50, initialInterval: '1s', maximumInterval: '1s' } },
    });
    const taskQueue = uniqueName('retrying');
    const retryWorker = await startChildWorker(env.temporalAddress, env.temporalNamespace, taskQueue);
    const remote = ['--temporal-address', env.temporalAddress, '--task-queue', taskQueue];
    const failing = { name: 'fail-beta-pre-upgrade', namespace: s.namespace };
    await conn.client.create(ConfigMapResource, { metadata: failing });
    const run = spawnCli(['run', ...argsFor(s), ...remote]);
    try {
      type Step = { phase: string; job: string; state: string; currentAttempt?: number; lastError?: string };
      let step: Step | undefined;
      const deadline = Date.now() + 240_000;
      while (Date.now() < deadline) {
        const r = await cli(['status', s.cluster, ...remote, '--json']);
        if (r.code === 0 && r.stdout.startsWith('{')) {
          const p = JSON.parse(r.stdout) as { steps: Step[] | null };
          step = p.steps?.find((x) => x.phase === 'pre-upgrade' && x.job === 'beta');
          if (step?.state === 'running' && (step.currentAttempt ?? 0) >= 2) break;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
      assert.equal(step?.state, 'running', JSON.stringify(step));
      assert.ok((step.currentAttempt ?? 0) >= 2, `the current attempt is shown: ${JSON.stringify(step)}`);
      assert.match(step.lastError ?? '', /injected failure: ConfigMap fail-beta-pre-upgrade exists/);
      const text = await cli(['status', s.cluster, ...remote]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /running\s+pre-upgrade\s+beta\s+attempt \d+\s+.*injected failure/);
      assert.match(text.stdout, /retrying runJobPhase .*attempt \d+\/50, last failure: .*injected failure/);
      await run.waitFor(/↻ pre-upgrade beta: attempt \d+\/50, last failure: .*injected failure/, 120_000);
      await conn.client.delete(ConfigMapResource, failing.name, failing.namespace);
      const ended = await run.exited;
      assert.equal(ended.code, 0, ended.stdout + ended.stderr);
    } finally {
      // On a failed assertion too: no run or worker process outlives the test.
      run.child.kill('SIGKILL');
      await retryWorker.kill();
    }
  });

  it('status of an upgrade that ended without succeeding (no worker) exits 1 and says how it ended', async () => {
    const s = await demoSetup(conn.client);
    const taskQueue = uniqueName('noworker');
    const remote = ['--temporal-address', env.temporalAddress, '--task-queue', taskQueue];
    const started = await cli(['run', ...argsFor(s), ...remote, '--detach']);
    assert.equal(started.code, 0, started.stderr);
    const connection = await Connection.connect({ address: env.temporalAddress });
    try {
      const client = new Client({ connection, namespace: env.temporalNamespace });
      await client.workflow.getHandle(`ks-upgrade-${s.cluster}`).terminate('operator stopped it');
    } finally {
      await connection.close();
    }
    const r = await cli(['status', s.cluster, ...remote]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /Failed to query|did not answer/);
    assert.match(r.stdout, new RegExp(`cluster ${s.cluster}: Terminated`));
    assert.match(r.stdout, /operator stopped it/);
    const json = await cli(['status', s.cluster, ...remote, '--json']);
    assert.equal(json.code, 1, json.stderr);
    assert.equal((JSON.parse(json.stdout) as { workflowStatus: string }).workflowStatus, 'TERMINATED');
  });

  it('embedded default: starts a local Temporal server and worker, and a re-run after a crash resumes', async () => {
    const s = await demoSetup(conn.client, {
      jobOptions: { beta: { crashAt: 'post-upgrade:before-create' } },
    });
    const stateDir = await mkdtemp(path.join(tmpdir(), 'ks-state-'));
    const first = await cli(['run', ...argsFor(s), '--state-dir', stateDir]);
    assert.equal(first.signal, 'SIGKILL', 'the CLI process died at the injected point');
    assert.match(first.stderr, /started the embedded Temporal dev server/);

    const second = await cli(['run', ...argsFor(s), '--state-dir', stateDir]);
    assert.equal(second.code, 0, second.stderr + second.stdout);
    assert.match(second.stdout, new RegExp(`resuming the upgrade of cluster ${s.cluster}`));
    assert.match(second.stdout, /✔ upgrade of .* succeeded/);
    assert.deepEqual(await names(s.namespace), [
      'alpha-prepared',
      'alpha-v4',
      'beta-prepared',
      'beta-v4',
      'gamma-prepared',
      'gamma-v4',
    ]);
    const starts = (await stepLog(s.log)).filter((l) => l.endsWith(' start'));
    assert.equal(starts.length, 10, 'nine steps, one of them started twice: nothing started over');
    assert.ok(!existsSync(path.join(stateDir, 'server.json')), 'the last user stopped the embedded server');
    assert.deepEqual(
      await processesUsing(path.join(stateDir, 'temporal.db')),
      [],
      'no Temporal server left running',
    );
  });
});
