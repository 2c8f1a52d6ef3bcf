// Rollback on real servers (kube-apiserver + etcd, the Temporal dev server, a real worker):
//  - cancelling the upgrade while core's prepare-upgrade waits for the control plane to go away
//    rolls core back: ks-apiserver gets its replicas again (the step was running, so core counts
//    as touched);
//  - abort, start again, abort again: the second rollback restores the objects as they were before
//    the SECOND attempt (a fresh backup, not the first attempt's), and `backups list` shows both
//    aborted attempts apart.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type Client, type Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import { ConfigMapResource, DeploymentResource, NamespaceResource } from '../../src/api/core.js';
import { resolveSoon } from '../../src/cli/operate.js';
import { coreJobFactory } from '../../src/jobs/core/index.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { createResourceStore } from '../../src/store/index.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { progressQuery } from '../../workflows/messages.js';
import { demoRegistry } from '../jobs/demo.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { cli as runCli, type CliResult } from '../helpers/cli.js';
import { uniqueName } from '../helpers/env.js';
import { devClusterConnection } from '../helpers/kube.js';
import { installKubeSphereV3 } from '../helpers/kubesphere.js';
import { FAST_RETRY, demoSetup, startWorker, temporalClients, waitForProgress } from '../helpers/upgrade.js';

const NS = 'kubesphere-system';

const backupsCli = (...args: string[]): Promise<CliResult> => runCli(['backups', ...args]);

describe('rollback paths on real servers', () => {
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;

  before(async () => {
    ({ client, connection, native } = await temporalClients());
  });
  after(async () => {
    await connection.close();
    await native.close();
  });

  describe("cancel during core's prepare-upgrade", () => {
    let cluster: EphemeralCluster;
    let worker: Worker;
    let run: Promise<void>;
    let taskQueue: string;

    before(async () => {
      cluster = await startEphemeralCluster('cancel-core');
      const registry = new JobRegistry();
      registry.register(coreJobFactory);
      ({ worker, run, taskQueue } = await startWorker(native, registry));
    });
    after(async () => {
      worker.shutdown();
      await run;
      await cluster.remove();
    });

    it("restores ks-apiserver's replicas: the running step counts as touched", async () => {
      const kube = cluster.connection.client;
      await kube.create(NamespaceResource, { metadata: { name: NS } });
      await installKubeSphereV3(kube);
      // No controller runs here: the status says ks-apiserver still serves, so prepare-upgrade
      // scales it to 0 and then waits (heartbeating) for it to go away — where we cancel.
      await kube.patch(
        DeploymentResource,
        'ks-apiserver',
        NS,
        { status: { replicas: 2, readyReplicas: 2, availableReplicas: 2 } },
        'merge',
        'status',
      );
      assert.equal((await kube.get(DeploymentResource, 'ks-apiserver', NS)).spec?.replicas, 2);
      const dir = await mkdtemp(path.join(tmpdir(), 'ks-upgrade-cancel-core-'));
      const keyFile = path.join(dir, 'backup.key');
      await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
      const configFile = path.join(dir, 'config.yaml');
      const storeDir = path.join(dir, 'backups');
      await writeFile(
        configFile,
        yaml.dump({
          storage: { local: { path: storeDir }, encryption: { keyFile } },
          validator: { ksVersion: { enabled: false }, extensionsMuseum: { enabled: false } },
          jobs: { core: { enabled: true, priority: 10000 } },
        }),
      );
      const name = uniqueName('cancel-core').slice(0, 40);
      const { handle } = await startUpgrade(
        client,
        {
          cluster: name,
          kube: { kubeconfig: cluster.kubeconfig },
          configFiles: [configFile],
          useDefaults: false,
          gate: 'none',
          phases: ['prepare-upgrade'],
          tuning: { heartbeatTimeout: '5s' },
        },
        taskQueue,
      );
      await waitForProgress(handle, (p) => p.job === 'core' && p.phase === 'prepare-upgrade', 120_000);
      const deadline = Date.now() + 120_000;
      while ((await kube.get(DeploymentResource, 'ks-apiserver', NS)).spec?.replicas !== 0) {
        assert.ok(Date.now() < deadline, 'prepare-upgrade did not scale ks-apiserver down');
        await new Promise((r) => setTimeout(r, 200));
      }
      await handle.cancel();
      await assert.rejects(handle.result(), (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError);
        assert.match(String((err.cause as { name?: string } | undefined)?.name), /CancelledFailure/);
        return true;
      });
      assert.equal(
        (await kube.get(DeploymentResource, 'ks-apiserver', NS)).spec?.replicas,
        2,
        "ks-apiserver's replicas are back",
      );
      const p = await handle.query(progressQuery);
      assert.deepEqual(
        p.steps.map((s) => `${s.phase} ${s.job} ${s.state}`),
        ['prepare-upgrade core cancelled', 'rollback core rolled-back'],
      );
      assert.ok(p.rollback);
      assert.deepEqual(p.rollback.notRestored, []);
      // The attempt's backups (the replica counts among them) are kept apart for the next one.
      const store = await createResourceStore({ local: { path: storeDir }, encryption: { keyFile } });
      assert.deepEqual(await store.list(`${name}/core/`), []);
      const archived = await store.list(`${name}/_attempts/`);
      assert.ok(
        archived.some((k) => k.endsWith('/core/core.rollback.deployment-replicas')),
        archived.join(', '),
      );
      assert.equal(p.rollback.backups?.moved, archived.length);
    });
  });

  describe('abort, start again, abort again', () => {
    let conn: ClusterConnection;
    let worker: Worker;
    let run: Promise<void>;
    let taskQueue: string;

    before(async () => {
      conn = await devClusterConnection();
      ({ worker, run, taskQueue } = await startWorker(native, demoRegistry()));
    });
    after(async () => {
      worker.shutdown();
      await run;
      conn.close();
    });

    it('the second rollback restores the objects as they were before the second attempt', async () => {
      const s = await demoSetup(conn.client, { jobSettings: FAST_RETRY });
      await conn.client.create(ConfigMapResource, {
        metadata: { name: 'fail-alpha-post-upgrade', namespace: s.namespace },
      });
      const attempt = async (): Promise<string> => {
        const { handle } = await startUpgrade(client, s.input, taskQueue);
        await waitForProgress(handle, (p) => p.status === 'AwaitingOperator', 120_000);
        await resolveSoon(handle, { action: 'abort', reason: 'test', by: 'e2e' });
        await assert.rejects(handle.result(), (err: unknown) => {
          assert.ok(err instanceof WorkflowFailedError);
          assert.match(String(err.cause?.message), /aborted by e2e: test/);
          return true;
        });
        return (await handle.describe()).runId;
      };
      const data = async (job: string): Promise<Record<string, string> | undefined> =>
        (await conn.client.get(ConfigMapResource, `${job}-v3`, s.namespace)).data;

      const run1 = await attempt();
      assert.deepEqual(await data('alpha'), { owner: 'alpha' }, 'the first rollback restored alpha-v3');
      // Between the attempts someone changes the v3 object: that is the state to come back to now.
      await conn.client.patch(
        ConfigMapResource,
        'alpha-v3',
        s.namespace,
        { data: { owner: 'alpha', edited: 'between attempts' } },
        'merge',
      );
      const run2 = await attempt();
      assert.notEqual(run1, run2);
      assert.deepEqual(await data('alpha'), { owner: 'alpha', edited: 'between attempts' });
      assert.deepEqual(await data('beta'), { owner: 'beta' });

      const listed = await backupsCli('list', '--local-path', s.storeDir, '--prefix', `${s.cluster}/`);
      assert.equal(listed.code, 0, listed.stderr);
      const headings = listed.stdout.split('\n').filter((l) => l.startsWith('older attempt '));
      assert.deepEqual(
        headings.map((l) => l.replace(/aborted-\d{8}T\d{6}Z-/, 'aborted-<time>-').split(' (')[0]).sort(),
        [
          `older attempt ${s.cluster}/aborted-<time>-${run1.replace(/-/g, '').slice(0, 8)}`,
          `older attempt ${s.cluster}/aborted-<time>-${run2.replace(/-/g, '').slice(0, 8)}`,
        ].sort(),
      );
      assert.ok(
        !new RegExp(`^${s.cluster}/(alpha|beta|gamma)/`, 'm').test(listed.stdout),
        'no current backup remains',
      );
      const verified = await backupsCli('verify', `${s.cluster}/`, '--local-path', s.storeDir);
      assert.equal(verified.code, 0, verified.stdout);
      // Both attempts' three backups, and the cluster's identity binding, which is never archived.
      assert.match(verified.stdout, new RegExp(`^OK +${s.cluster}/_cluster/identity\\.json$`, 'm'));
      assert.match(verified.stdout, /7 object\(s\): 7 OK, 0 FAILED/);
    });
  });
});
