// The core upgrade of gate `helm` as a library, with the real helm binary, a real API server, the
// real OCI registry and the ks-core fixture charts: the v3 chart installed as a real release, the
// iam job's prepare-upgrade adopting kubesphere-config into it (as in production), then the v4 CRDs
// and `helm upgrade` from the registry, at most once per attempt, and the rollback back to v3.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  DeploymentResource,
  ServiceResource,
} from '../../src/api/core.js';
import { ClusterConfigurationResource } from '../../src/api/v3/index.js';
import { GlobalRoleResource, RepositoryResource, WorkspaceTemplateResource } from '../../src/api/v4/index.js';
import type { HelmUpgradeConfig } from '../../src/config/types.js';
import { buildHelmUpgrade } from '../../src/config/load.js';
import { HELM_INSTALL_HINT, HelmNotFoundError, HelmSession, findHelmBinary } from '../../src/helm/cli.js';
import {
  CORE_STORE_SCOPE,
  KS_CORE,
  applyCrds,
  chartCrds,
  coreValues,
  fetchChart,
  releaseRevisions,
  releaseValues,
  rollbackCore,
  showChart,
  upgradeCore,
  type CoreUpgradeDeps,
} from '../../src/helm/core-upgrade.js';
import { lastDeployedRelease } from '../../src/helm/release.js';
import { iamJobFactory } from '../../src/jobs/iam/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { ResourceStore } from '../../src/store/index.js';
import { checkKsVersion, detectCoreUpgrade } from '../../src/upgrade/checks.js';
import {
  KS_CORE_V3,
  KS_CORE_V4,
  V3_INSTALLER_VALUES,
  buildKsCoreCharts,
  installKsCoreV3Release,
  pushChart,
} from '../fixtures/ks-core-charts.js';
import { startStandInController } from '../fixtures/kubesphere-v4/controller.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { helmTools } from '../helpers/env.js';
import { runSingleJob } from '../helpers/jobs.js';
import { installKubeSphereV3 } from '../helpers/kubesphere.js';
import { encryptedTempStore } from '../helpers/storage.js';

const run = promisify(execFile);
const NS = 'kubesphere-system';

/**
 * What prepare-upgrade does before any core upgrade: the iam job adopts kubesphere-config (and
 * more) into the ks-core release, so that the v4 chart may take it over.
 */
async function adoptIntoRelease(kube: ResourceClient, store: ResourceStore): Promise<void> {
  const prepare = await runSingleJob('prepare-upgrade', {
    factory: iamJobFactory,
    config: { enabled: true, priority: 999, dynamicOptions: {} },
    kube,
    store,
  });
  assert.deepEqual(prepare.outcomes, ['succeeded']);
}

describe('core upgrade with the real helm (library)', () => {
  const tools = helmTools();
  let cluster: EphemeralCluster;
  let charts: { v3: string; v4: string; dir: string };
  let ociChart: string;
  let store: ResourceStore;
  let rootStore: ResourceStore;
  let session: HelmSession;
  const cleanup: (() => Promise<void>)[] = [];
  let kubeconfigBefore: string;
  let kubeconfigUid: string | undefined;
  /** What the upgrade takes over from the v3 release, as it was before (content, not metadata). */
  let adoptedBefore: unknown;
  const adopted = async (): Promise<unknown> => {
    const kube = cluster.connection.client;
    const role = await kube.get(GlobalRoleResource, 'platform-admin');
    const ws = await kube.get(WorkspaceTemplateResource, 'system-workspace');
    return { rules: role.rules, spec: ws.spec, labels: ws.metadata.labels };
  };

  const config = (extra: Partial<HelmUpgradeConfig> = {}): HelmUpgradeConfig => ({
    ...buildHelmUpgrade({}),
    chart: ociChart,
    version: KS_CORE_V4.version,
    plainHttp: true,
    binary: tools.helm,
    timeout: 120_000,
    ...extra,
  });
  const deps = (cfg: HelmUpgradeConfig = config()): CoreUpgradeDeps => ({
    helm: session,
    kube: cluster.connection.client,
    store,
    config: cfg,
    pollMs: 200,
  });

  before(async () => {
    cluster = await startEphemeralCluster('helm-core');
    cleanup.push(() => cluster.remove());
    const kube = cluster.connection.client;
    await installKubeSphereV3(kube);
    charts = await buildKsCoreCharts(tools.helm);
    await installKsCoreV3Release(kube, {
      helm: tools.helm,
      kubeconfig: cluster.kubeconfig,
      chart: charts.v3,
    });
    ociChart = await pushChart(tools.helm, charts.v4, tools.registry);
    ({ store: rootStore } = await encryptedTempStore('helm-core-'));
    store = rootStore.scope('host', CORE_STORE_SCOPE);
    await adoptIntoRelease(kube, rootStore);
    session = await HelmSession.open({ binary: tools.helm, kube: { kubeconfig: cluster.kubeconfig } });
    cleanup.push(() => session.close());
    kubeconfigBefore =
      (await kube.get(ConfigMapResource, 'kubesphere-config', NS)).data?.['kubesphere.yaml'] ?? '';
    kubeconfigUid = (await kube.get(ConfigMapResource, 'kubesphere-config', NS)).metadata.uid;
    adoptedBefore = await adopted();
  });
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it('the v3 chart installs as a real release that the ksVersion validator and the jobs read', async () => {
    const kube = cluster.connection.client;
    assert.deepEqual(await checkKsVersion(kube), {
      ok: true,
      reason: `deployed ks-core is ${KS_CORE_V3.appVersion}`,
    });
    // src/helm/release.ts decodes what helm itself wrote (and the iam job rewrote).
    const release = await lastDeployedRelease(kube, NS, 'ks-core');
    assert.equal(release?.version, 1);
    assert.equal(release.chart.metadata.version, KS_CORE_V3.version);
    assert.match(release.manifest, /kind: Deployment\n[\s\S]*name: ks-apiserver/);
    assert.match(release.manifest, /name: kubesphere-config/, 'the iam job appended the adopted ConfigMap');
    assert.deepEqual(await releaseValues(session), V3_INSTALLER_VALUES);
  });

  it('helm gets the target cluster only, in a 0600 file of a 0700 dir, never on its command line', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'helm-shim-'));
    const log = path.join(dir, 'calls.log');
    const shim = path.join(dir, 'helm');
    // A helm that records how it was called, then runs the real one.
    await writeFile(
      shim,
      `#!/bin/sh\n{ echo "ARGS $*"; stat -c "FILE %a" "$KUBECONFIG"; stat -c "DIR %a" "$(dirname "$KUBECONFIG")"; ` +
        `echo "CTX $HELM_KUBECONTEXT"; cat "$KUBECONFIG"; echo; } >> ${log}\nexec ${tools.helm} "$@"\n`,
    );
    await chmod(shim, 0o755);
    const env = { ...process.env, HELM_KUBECONTEXT: 'some-other-cluster', HELM_DRIVER: 'configmap' };
    const s = await HelmSession.open({ binary: shim, kube: { kubeconfig: cluster.kubeconfig }, env });
    const revs = await releaseRevisions(s);
    await s.close();
    assert.ok(
      revs.length >= 1,
      'helm read the release of the target (HELM_KUBECONTEXT and HELM_DRIVER ignored)',
    );
    const calls = await readFile(log, 'utf8');
    const token = (await readFile(cluster.kubeconfig, 'utf8')).match(/token: (\S+)/)?.[1] ?? '';
    assert.ok(token.length > 10);
    for (const line of calls.split('\n').filter((l) => l.startsWith('ARGS '))) {
      assert.ok(!line.includes(token), `no credential on the command line: ${line}`);
      assert.ok(!line.includes('--kubeconfig'), line);
    }
    assert.match(calls, /FILE 600/);
    assert.match(calls, /DIR 700/);
    assert.match(calls, /CTX \n/, 'HELM_KUBECONTEXT is not passed on');
    assert.ok(calls.includes(token), 'the kubeconfig file carried the credential');
    const written = JSON.parse(calls.split('\n').find((l) => l.startsWith('{')) ?? '{}') as {
      clusters?: { cluster: { server: string } }[];
      contexts?: unknown[];
    };
    assert.equal(written.clusters?.length, 1, 'only the target cluster');
    assert.equal(written.contexts?.length, 1);
    assert.equal(written.clusters[0]?.cluster.server, cluster.connection.server);
    await assert.rejects(stat(s.dir), /ENOENT/, 'the work dir is gone after close');
  });

  it('without helm, the error names the three ways to get one', async () => {
    await assert.rejects(
      findHelmBinary(undefined, { PATH: '/nonexistent' }),
      (err: unknown) => err instanceof HelmNotFoundError && err.hint === HELM_INSTALL_HINT,
    );
    await assert.rejects(findHelmBinary('/no/such/helm'), /upgrade\.helm\.binary is \/no\/such\/helm/);
    assert.match(
      HELM_INSTALL_HINT,
      /PATH[\s\S]*go install helm\.sh\/helm\/v4\/cmd\/helm@v4\.3\.2[\s\S]*upgrade\.helm\.binary/,
    );
  });

  it('a chart from a Helm repository is pulled and read like the others', async () => {
    const index = path.join(charts.dir, 'v4');
    const server = http.createServer((req, res) => {
      void readFile(path.join(index, path.basename(req.url ?? '/')))
        .then((body) => {
          res.end(body);
        })
        .catch(() => {
          res.statusCode = 404;
          res.end();
        });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await run(tools.helm, ['repo', 'index', index, '--url', url]);
      const file = await fetchChart(session, config({ chart: 'ks-core', repo: url, plainHttp: false }));
      assert.deepEqual(await showChart(session, file), { name: 'ks-core', ...KS_CORE_V4 });
    } finally {
      server.close();
    }
  });

  it('the v4 CRDs of the chart (its ks-crds sub-chart too) are server-side applied and Established', async () => {
    const kube = cluster.connection.client;
    const file = await fetchChart(session, config());
    const crds = await chartCrds(session, file);
    assert.ok(crds.some((c) => c.metadata.name === 'installplans.kubesphere.io'));
    assert.ok(crds.some((c) => c.metadata.name === 'users.iam.kubesphere.io'));
    const names = await applyCrds(kube, crds);
    assert.equal(names.length, crds.length);
    const repo = await kube.get(CustomResourceDefinitionResource, 'repositories.kubesphere.io');
    const managers = (repo.metadata.managedFields ?? []) as { manager?: string; operation?: string }[];
    assert.ok(managers.some((f) => f.manager === 'ks-upgrade' && f.operation === 'Apply'));
    // Idempotent: the same apply again changes nothing.
    const rv = repo.metadata.resourceVersion;
    await applyCrds(kube, crds);
    assert.equal(
      (await kube.get(CustomResourceDefinitionResource, 'repositories.kubesphere.io')).metadata
        .resourceVersion,
      rv,
    );
  });

  it('helm upgrade runs once per attempt, with the values upgrade.sh would pass', async () => {
    const kube = cluster.connection.client;
    const cfg = config({ set: { 'global.imageRegistry': 'registry.local' } });
    const first = await upgradeCore(deps(cfg), { runId: 'run1', attempt: 1 });
    assert.equal(first.ranHelm, true);
    assert.equal(first.revision, 2);
    assert.equal(first.chart, `ks-core-${KS_CORE_V4.version}`);
    assert.deepEqual(
      (await releaseRevisions(session)).map((r) => [r.revision, r.status, r.chart]),
      [
        [1, 'superseded', `ks-core-${KS_CORE_V3.version}`],
        [2, 'deployed', `ks-core-${KS_CORE_V4.version}`],
      ],
    );
    assert.deepEqual(await releaseValues(session), {
      ...coreValues({ multicluster: { role: 'host' } }, {}),
      global: { imageRegistry: 'registry.local' },
    });
    const apiserver = await kube.get(DeploymentResource, 'ks-apiserver', NS);
    assert.equal(
      apiserver.spec?.template?.spec?.containers?.[0]?.image,
      'registry.local/kubesphere/ks-apiserver:v4.1.3',
    );
    assert.equal(
      await kube.tryGet(ConfigMapResource, 'ks-core-upgrade-config', NS),
      undefined,
      'no ks-upgrade hook ran',
    );
    assert.ok(await kube.tryGet(RepositoryResource, 'extensions-museum'));

    // The same attempt again (a retried activity after a crash): helm does not run again.
    const again = await upgradeCore(deps(cfg), { runId: 'run1', attempt: 1 });
    assert.equal(again.ranHelm, false);
    assert.match(again.reason, /already run/);
    // A new attempt finds the target deployed.
    const next = await upgradeCore(deps(cfg), { runId: 'run1', attempt: 2 });
    assert.equal(next.ranHelm, false);
    assert.match(next.reason, /already deployed/);
    assert.equal((await releaseRevisions(session)).length, 2, 'still exactly one upgrade');
  });

  it('the rollback restores the v3 release and every object the upgrade touched', async () => {
    const kube = cluster.connection.client;
    const result = await rollbackCore(deps(), 'run1');
    assert.equal(result.rolledBack, true);
    assert.equal(result.target, 1);
    const revs = await releaseRevisions(session);
    const last = revs.at(-1);
    assert.ok(last);
    assert.equal(last.revision, 3);
    assert.equal(last.status, 'deployed');
    assert.equal(last.chart, `ks-core-${KS_CORE_V3.version}`);
    assert.equal(last.app_version, KS_CORE_V3.appVersion);
    assert.deepEqual(await releaseValues(session, 3), await releaseValues(session, 1));
    assert.deepEqual(await checkKsVersion(kube), {
      ok: true,
      reason: `deployed ks-core is ${KS_CORE_V3.appVersion}`,
    });
    // Helm alone would have emptied kubesphere-config (its record in revision 1 is the adoption stub).
    assert.equal(
      (await kube.get(ConfigMapResource, 'kubesphere-config', NS)).data?.['kubesphere.yaml'],
      kubeconfigBefore,
    );
    const apiserver = await kube.get(DeploymentResource, 'ks-apiserver', NS);
    assert.equal(apiserver.spec?.template?.spec?.containers?.[0]?.image, 'kubesphere/ks-apiserver:v3.4.1');
    assert.deepEqual(
      await adopted(),
      adoptedBefore,
      'the adopted GlobalRole and WorkspaceTemplate as before',
    );
    // The built-in GlobalRoles stay valid v1beta1 objects (rules required), and the v3 release
    // does not own them again: ks-installer's next `helm upgrade` of the v3 chart would delete them.
    const anonymous = await kube.get(GlobalRoleResource, 'anonymous');
    assert.ok(Array.isArray(anonymous.rules));
    assert.equal(anonymous.metadata.annotations?.['helm.sh/resource-policy'], undefined, 'keep is gone');
    const manifest = (await lastDeployedRelease(kube, NS, 'ks-core'))?.manifest ?? '';
    assert.doesNotMatch(manifest, /kind: (GlobalRole|GlobalRoleBinding|WorkspaceTemplate)\n/);
    assert.equal(
      (await kube.tryGet(ConfigMapResource, 'kubesphere-config', NS))?.metadata.uid,
      kubeconfigUid,
      'kept, not deleted and created again',
    );
    // v3 only: deleted by the upgrade, created again (new cluster IP) and restored.
    const backend = await kube.get(ServiceResource, 'default-http-backend', 'kubesphere-controls-system');
    assert.equal(backend.metadata.labels?.component, 'kubesphere-router');
    assert.equal(
      await kube.tryGet(RepositoryResource, 'extensions-museum'),
      undefined,
      'created by v4: removed',
    );
    // Again: nothing more happens.
    const again = await rollbackCore(deps(), 'run1');
    assert.equal(again.rolledBack, true);
    assert.equal((await releaseRevisions(session)).length, 3);
    // A run that never upgraded has nothing to roll back.
    assert.equal((await rollbackCore(deps(), 'run-never')).rolledBack, false);
    assert.equal(KS_CORE.name, 'ks-core');
  });
});

describe('core upgrade of a member cluster (library)', () => {
  const tools = helmTools();
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it('a member gets role member and ks-agent instead of ks-apiserver, and v4 is detected on it', async () => {
    const cluster = await startEphemeralCluster('helm-member');
    cleanup.push(() => cluster.remove());
    const kube = cluster.connection.client;
    await installKubeSphereV3(kube);
    await kube.patch(ClusterConfigurationResource, 'ks-installer', NS, {
      spec: { multicluster: { clusterRole: 'member' } },
    });
    await kube.mutate(ConfigMapResource, 'kubesphere-config', NS, (cm) => {
      const text = cm.data?.['kubesphere.yaml'] ?? '';
      cm.data = { ...cm.data, 'kubesphere.yaml': text.replace('clusterRole: host', 'clusterRole: member') };
    });
    const charts = await buildKsCoreCharts(tools.helm);
    await installKsCoreV3Release(kube, {
      helm: tools.helm,
      kubeconfig: cluster.kubeconfig,
      chart: charts.v3,
    });
    const { store: rootStore } = await encryptedTempStore('helm-member-');
    await adoptIntoRelease(kube, rootStore);
    const session = await HelmSession.open({ binary: tools.helm, kube: { kubeconfig: cluster.kubeconfig } });
    cleanup.push(() => session.close());
    const config: HelmUpgradeConfig = {
      ...buildHelmUpgrade({}),
      chart: charts.v4,
      binary: tools.helm,
      timeout: 120_000,
    };
    await applyCrds(kube, await chartCrds(session, charts.v4));
    const done = await upgradeCore(
      { helm: session, kube, store: rootStore.scope('member', CORE_STORE_SCOPE), config, pollMs: 200 },
      { runId: 'member-run', attempt: 1 },
    );
    assert.equal(done.ranHelm, true);
    assert.deepEqual(await releaseValues(session), coreValues({ multicluster: { role: 'member' } }, {}));
    assert.ok(await kube.tryGet(DeploymentResource, 'ks-agent', NS));
    assert.equal(
      await kube.tryGet(DeploymentResource, 'ks-apiserver', NS),
      undefined,
      'v4 has none on a member',
    );

    const controller = startStandInController(kube, { intervalMs: 200 });
    cleanup.push(() => controller.stop());
    const deadline = Date.now() + 60_000;
    let last = await detectCoreUpgrade(kube);
    while (!last.ok && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      last = await detectCoreUpgrade(kube);
    }
    assert.deepEqual(last, { ok: true, reason: 'ks-core v4.1.3 deployed and ks-agent ready' });
  });
});
