// The preflight as the first step of `upgradeCluster`, on a KubeSphere v3 fixture cluster with the
// built-in jobs: it refuses — before any object changes (every resourceVersion compared) — for a
// missing image in the registry, a missing chart, an unwritable backup store and a second upgrade
// of the same cluster; each failure names what is wrong and waits for the operator. With
// everything in place it passes, and `ks-upgrade plan` shows it (and refuses a cluster whose
// upgrade is running).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type Client, type Connection, type WorkflowHandle } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import { resolveSoon } from '../../src/cli/operate.js';
import { registerBuiltinJobs } from '../../src/jobs/builtin.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import { startUpgrade } from '../../src/temporal/client.js';
import type { UpgradeClusterInput } from '../../src/upgrade/input.js';
import { preflightUpgrade } from '../../src/upgrade/verification.js';
import { progressQuery, type UpgradeProgress } from '../../workflows/messages.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { devEnv, repoRoot, uniqueName } from '../helpers/env.js';
import { installKubeSphereV3 } from '../helpers/kubesphere.js';
import { ksCoreChart, ksCoreImages } from '../helpers/preflight.js';
import { pushChart, pushImage, startOpenRegistry, type TestRegistry } from '../helpers/registry.js';
import { clusterSnapshot, diff } from '../helpers/snapshot.js';
import { startWorker, temporalClients, waitForProgress } from '../helpers/upgrade.js';

/** The image the air-gapped registry lacks. */
const MISSING = 'kubesphere/ks-console';

describe('preflight: the first step of an upgrade refuses before anything changes', () => {
  let cluster: EphemeralCluster;
  let reg: TestRegistry;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  let registry: JobRegistry;
  let dir: string;
  let keyFile: string;

  before(async () => {
    [cluster, reg] = await Promise.all([startEphemeralCluster('preflight'), startOpenRegistry('preflight')]);
    await installKubeSphereV3(cluster.connection.client);
    await pushChart(reg, 'charts/ks-core', '1.1.4', await ksCoreChart());
    // The mirror holds every image of the chart but one.
    for (const ref of ksCoreImages(reg.host)) {
      const [repo = '', tag = ''] = ref.slice(reg.host.length + 1).split(':');
      if (repo !== MISSING) await pushImage(reg, repo, tag);
    }
    dir = await mkdtemp(path.join(tmpdir(), 'ks-preflight-'));
    keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    registry = new JobRegistry();
    registerBuiltinJobs(registry);
    ({ client, connection, native } = await temporalClients());
    ({ worker, run, taskQueue } = await startWorker(native, registry));
  });
  after(async () => {
    worker.shutdown();
    await run;
    await connection.close();
    await native.close();
    await Promise.all([cluster.remove(), reg.remove()]);
  });

  /** A config (the built-in defaults: core and iam) with these checks and storage. */
  const config = async (name: string, extra: Record<string, unknown>): Promise<string> => {
    const file = path.join(dir, `${name}.yaml`);
    const backups = path.join(dir, `backups-${name}`);
    await writeFile(
      file,
      yaml.dump({ storage: { local: { path: backups }, encryption: { keyFile } }, ...extra }),
    );
    return file;
  };
  const input = (name: string, configFile: string): UpgradeClusterInput => ({
    cluster: name,
    kube: { kubeconfig: cluster.kubeconfig },
    configFiles: [configFile],
    gate: 'signal',
    tuning: { heartbeatTimeout: '20s' },
  });
  const checks = (tag = '1.1.4') => ({
    checks: { coreChart: `oci://${reg.host}/charts/ks-core:${tag}`, imageRegistry: reg.host },
  });

  /** Starts an upgrade and waits until its preflight waits for the operator; the cluster must not change. */
  async function refused(
    i: UpgradeClusterInput,
    workflowId?: string,
  ): Promise<{ handle: WorkflowHandle; progress: UpgradeProgress }> {
    const before = await clusterSnapshot(cluster.connection.client);
    const { handle } = await startUpgrade(client, i, taskQueue, workflowId);
    const progress = await waitForProgress(handle, (p) => p.awaiting !== undefined, 120_000);
    assert.equal(progress.awaiting?.phase, 'preflight', JSON.stringify(progress.awaiting));
    assert.deepEqual(progress.awaiting.allowed, ['retry', 'abort']);
    assert.deepEqual(progress.steps, [], 'no job step ran');
    assert.deepEqual(diff(before, await clusterSnapshot(cluster.connection.client)), [], 'nothing changed');
    return { handle, progress };
  }

  async function abort(handle: WorkflowHandle): Promise<void> {
    await resolveSoon(handle, { action: 'abort', reason: 'test done', by: 'test' });
    await assert.rejects(handle.result(), (err: unknown) => err instanceof WorkflowFailedError);
  }

  const failed = (p: UpgradeProgress) =>
    (p.preflight?.checks ?? []).filter((c) => !c.ok && !c.skipped).map((c) => c.name);

  it('passes when the chart, every image, the store and the access are there (library and `ks-upgrade plan`)', async () => {
    const name = uniqueName('pf-ok');
    const file = await config(name, checks());
    // Everything present for this test: the image the other tests miss is pushed, then removed.
    await pushImage(reg, MISSING, 'v4.1.3');
    try {
      const report = await preflightUpgrade(input(name, file), { registry });
      assert.deepEqual(
        report.checks.map((c) => [c.name, c.ok]),
        [
          ['api-server', true],
          ['kubesphere-version', true],
          ['access', true],
          ['charts', true],
          ['images', true],
          ['store', true],
          ['concurrent-upgrade', true],
        ],
        JSON.stringify(report, null, 2),
      );
      const evidence = Object.fromEntries(report.checks.map((c) => [c.name, c.evidence]));
      assert.match(evidence['kubesphere-version'] ?? '', /KubeSphere v3\.4\.1 .*a supported v3 release/);
      assert.match(evidence.charts ?? '', /ks-core \(ks-core-1\.1\.4\)/);
      assert.match(
        evidence.images ?? '',
        /all 5 images are present in 127\.0\.0\.1:\d+ \(pull credentials for no registry\)/,
      );
      assert.match(
        evidence.store ?? '',
        /wrote, read back and deleted a probe at local:.*encrypted \(key [0-9a-f]{16}\).*objects ≈/,
      );
      assert.match(evidence.access ?? '', /^all \d+ permissions of _framework, core, iam .*are allowed/);

      const r = await cli(['plan', '--kubeconfig', cluster.kubeconfig, '--cluster', name, '--config', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Preflight of cluster \S+: passed/);
      assert.match(r.stdout, /✔ images\s+all 5 images are present/);
      // Each job's own plan (a dry run), in the CLI's plan and in a dry-run upgrade alike.
      const userRef = /label with iam\.kubesphere\.io\/user-ref=admin/;
      assert.match(
        r.stdout,
        /^\s+- prepare-upgrade: label with iam\.kubesphere\.io\/user-ref=admin GlobalRoleBinding admin$/m,
      );
      const { handle } = await startUpgrade(client, { ...input(name, file), dryRun: true }, taskQueue);
      const dry = await handle.result();
      const iam = dry.plan.jobs.find((j) => j.name === 'iam');
      assert.ok(
        iam?.actions?.some((a) => a.phase === 'prepare-upgrade' && userRef.test(a.action)),
        JSON.stringify(iam?.actions),
      );
    } finally {
      await deleteImage(reg, MISSING, 'v4.1.3');
    }
  });

  it('refuses an air-gapped registry that lacks one image, naming it', async () => {
    const name = uniqueName('pf-image');
    const { handle, progress } = await refused(input(name, await config(name, checks())));
    assert.deepEqual(failed(progress), ['images']);
    assert.match(
      progress.awaiting?.error ?? '',
      new RegExp(`missing: ${reg.host.replace('.', '\\.')}/${MISSING}:v4\\.1\\.3`),
    );
    assert.match(progress.awaiting?.hint ?? '', /crane copy/);
    await abort(handle);
  });

  it('refuses a chart that is not in the configured source', async () => {
    const name = uniqueName('pf-chart');
    const { handle, progress } = await refused(input(name, await config(name, checks('1.1.9'))));
    assert.deepEqual(failed(progress), ['charts']);
    assert.match(
      progress.awaiting?.error ?? '',
      /charts: 1 of 1 charts unavailable: ks-core from oci:\/\/.*ks-core:1\.1\.9: .*HTTP 404/,
    );
    await abort(handle);
  });

  it('refuses a backup store it cannot write', async () => {
    const name = uniqueName('pf-store');
    // The backup directory exists (the config check passes), but a file stands where the store
    // must create its folders: nothing can be written under it.
    const backups = path.join(dir, `${name}-dir`);
    await mkdir(backups);
    await writeFile(path.join(backups, 'ks-upgrade-preflight'), 'not a directory');
    const file = path.join(dir, `${name}.yaml`);
    await writeFile(file, yaml.dump({ storage: { local: { path: backups }, encryption: { keyFile } } }));
    const { handle, progress } = await refused(input(name, file));
    assert.deepEqual(failed(progress), ['store']);
    assert.match(progress.awaiting?.error ?? '', /store: the backup store local:.*-dir is not writable/);
    await abort(handle);
  });

  it('refuses a second upgrade of a cluster whose upgrade is running', async () => {
    const name = uniqueName('pf-twice');
    // The first upgrade waits for its operator (an image is missing): it is running.
    const first = await refused(input(name, await config(`${name}-a`, checks())));
    // The second, started under another workflow ID for the same cluster, passes every other check.
    const second = await refused(input(name, await config(`${name}-b`, {})), `${name}-second`);
    assert.deepEqual(failed(second.progress), ['concurrent-upgrade']);
    assert.match(
      second.progress.awaiting?.error ?? '',
      new RegExp(`another upgrade of cluster ${name} is running .*ks-upgrade-${name}`),
    );
    // `ks-upgrade plan` sees it too, and exits non-zero.
    const env = devEnv();
    const r = await cli([
      'plan',
      '--kubeconfig',
      cluster.kubeconfig,
      '--cluster',
      name,
      '--config',
      await config(`${name}-c`, {}),
      '--temporal-address',
      env.temporalAddress,
    ]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`✖ concurrent-upgrade\\s+another upgrade of cluster ${name} is running`),
    );
    await abort(second.handle);
    await abort(first.handle);
    const progress = await first.handle.query(progressQuery);
    assert.equal(progress.status, 'Aborted');
  });
});

/** The `ks-upgrade` CLI as users run it. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/ks-upgrade.js'), ...args], {
      env: { ...process.env, KS_UPGRADE_STATE_DIR: path.join(tmpdir(), uniqueName('ks-state')) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** Removes a tag from the registry (the distribution API's manifest DELETE, by digest). */
async function deleteImage(reg: TestRegistry, repository: string, tag: string): Promise<void> {
  const head = await fetch(`http://${reg.host}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  const digest = head.headers.get('docker-content-digest');
  if (!digest) throw new Error(`no digest for ${repository}:${tag}`);
  const res = await fetch(`http://${reg.host}/v2/${repository}/manifests/${digest}`, { method: 'DELETE' });
  assert.equal(res.status, 202);
}
