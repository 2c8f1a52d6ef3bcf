// The `ks-upgrade` CLI as users run it (a child process), with the demo jobs loaded as a plugin:
// plan, single phases, run against a Temporal service and on the embedded default (including a
// resume after the CLI process itself is killed), status and resolve.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigMapResource } from '../../src/api/core.js';
import { BUILTIN_JOB_FACTORIES } from '../../src/jobs/builtin.js';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { startChildWorker, type ChildWorker } from '../helpers/child-worker.js';
import { cli, demoRunArgs, processesUsing, type CliResult } from '../helpers/cli.js';
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
