// whizard-notification (reference §4.9) on a host and a member API server: the backups (the
// NotificationManager key collision fixed, inline credentials encrypted), the federated copies,
// notification-manager and its CRDs removed (bounded wait), the InstallPlan, the operator wait
// (`retryCount` as a YAML number or string), the objects re-created, re-runs and rollback.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  DeploymentResource,
  SecretResource,
  type Deployment,
} from '../../src/api/core.js';
import {
  ClusterConfigurationResource,
  ClusterResource,
  NotificationConfigResource,
  NotificationManagerResource,
  NotificationReceiverResource,
  NotificationRouterResource,
  NotificationSilenceResource,
} from '../../src/api/v3/index.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { JobConfig } from '../../src/config/types.js';
import { encodeRelease, releaseSecretName } from '../../src/helm/release.js';
import { createJobContext, createMemoryLogger, type Phase } from '../../src/jobs/index.js';
import type { JobFactory } from '../../src/jobs/types.js';
import {
  createWhizardNotificationJobFactory,
  hasInlineCredential,
  whizardNotificationJobFactory,
} from '../../src/jobs/whizard-notification/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { applyObjects, applyYamlFiles } from '../helpers/fixtures.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { runSingleJob } from '../helpers/jobs.js';
import { encryptedTempStore, withoutBackup } from '../helpers/storage.js';

const JOB = 'whizard-notification';
const NS = 'kubesphere-monitoring-system';
const FED = 'kubesphere-monitoring-federated';
const REF = { name: 'whizard-notification', version: '2.5.9' };
const CRD_FILE = path.join(repoRoot, 'test/fixtures/kubesphere-v3/crds/notification.kubesphere.io.yaml');
const FAST = createWhizardNotificationJobFactory({
  crdPollMs: 100,
  crdTimeoutMs: 30_000,
  operatorPollMs: 100,
  operatorGraceMs: 0,
});

const jobConfig = (options: Record<string, unknown> = {}, ref: object = REF): JobConfig => ({
  enabled: true,
  priority: 100,
  extensionRef: structuredClone(ref) as JobConfig['extensionRef'],
  dynamicOptions: { ...options },
});

async function runJob(
  kube: ResourceClient,
  cluster: string,
  store: ResourceStore,
  phase: Phase,
  config: JobConfig = jobConfig(),
  factory: JobFactory = FAST,
): Promise<{ outcomes: string[]; logs: string[] }> {
  return runSingleJob(phase, { factory: factory, config, kube, store, cluster: cluster });
}

async function putRelease(kube: ResourceClient, name: string, manifest: string): Promise<void> {
  await kube.create(SecretResource, {
    metadata: {
      name: releaseSecretName(name, 1),
      namespace: NS,
      labels: { owner: 'helm', name, status: 'deployed', version: '1' },
    },
    type: 'helm.sh/release.v1',
    data: {
      release: encodeRelease({
        name,
        namespace: NS,
        version: 1,
        info: { status: 'deployed' },
        chart: { metadata: { name, version: '2.3.0' } },
        manifest,
      }),
    },
  });
}

/**
 * Plays the extension once its InstallPlan exists: installs the notification CRDs again and a
 * ready notification-manager-operator Deployment.
 */
function startExtensionStandIn(kube: ResourceClient): { stop: () => Promise<void> } {
  const state = { stopped: false };
  const loop = (async () => {
    while (!state.stopped) {
      if (
        (await kube.tryGet(InstallPlanResource, REF.name)) &&
        !(await kube.tryGet(DeploymentResource, 'notification-manager-operator', NS))
      ) {
        await applyYamlFiles(kube, [CRD_FILE]);
        await kube.create(DeploymentResource, operatorDeployment());
        await kube.patch(
          DeploymentResource,
          'notification-manager-operator',
          NS,
          { status: { replicas: 1, readyReplicas: 1, availableReplicas: 1 } },
          'merge',
          'status',
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      state.stopped = true;
      await loop;
    },
  };
}

function operatorDeployment(): Deployment {
  return {
    metadata: { name: 'notification-manager-operator', namespace: NS },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'nm-operator' } },
      template: {
        metadata: { labels: { app: 'nm-operator' } },
        spec: {
          containers: [{ name: 'operator', image: 'kubesphere/notification-manager-operator:v2.5.2' }],
        },
      },
    },
  };
}

const FEDERATED_CRDS = ['silences', 'routers', 'configs', 'receivers', 'managers'].map((k) => ({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `federatednotification${k}.types.kubefed.io` },
  spec: {
    group: 'types.kubefed.io',
    scope: 'Cluster',
    names: {
      plural: `federatednotification${k}`,
      kind: `FederatedNotification${k}`,
      listKind: `FederatedNotification${k}List`,
    },
    versions: [
      {
        name: 'v1beta2',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
}));

async function storeSnapshot(store: ResourceStore, cluster: string): Promise<Record<string, string>> {
  const scoped = store.scope(cluster, JOB);
  const out: Record<string, string> = {};
  for (const key of await scoped.list())
    out[key] = Buffer.from((await scoped.loadEntry(key)).payload).toString('utf8');
  return out;
}

const names = async (kube: ResourceClient, rt: typeof NotificationConfigResource) =>
  (await kube.listIfServed(rt)).map((o) => o.metadata.name).sort();

describe('whizard-notification job', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let hk: ResourceClient;
  let mk: ResourceClient;
  let store: ResourceStore;

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('notif-host'),
      startEphemeralCluster('notif-member'),
    ]);
    hk = host.connection.client;
    mk = member.connection.client;
    await Promise.all([installKubeSphereV3(hk), installKubeSphereV3(mk)]);
    await mk.mutate(ConfigMapResource, 'kubesphere-config', 'kubesphere-system', (c) => {
      c.data = { 'kubesphere.yaml': 'multicluster:\n  clusterRole: member\n' };
    });
    for (const c of await mk.listAll(ClusterResource))
      await mk.delete(ClusterResource, c.metadata.name ?? '');
    await applyObjects(hk, FEDERATED_CRDS);
    for (const kube of [hk, mk]) {
      await putRelease(
        kube,
        'notification-manager',
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nm-template\n',
      );
      await kube.create(ConfigMapResource, { metadata: { name: 'nm-template', namespace: NS } });
    }
    // A webhook Config with its token inline: the backup holding it must be encrypted.
    await hk.create(NotificationConfigResource, {
      metadata: { name: 'ops-webhook-config', labels: { type: 'default' } },
      spec: {
        webhook: {
          service: { name: 'hook', namespace: 'ops' },
          httpConfig: { bearerToken: { value: 'fixture-webhook-token-do-not-leak' } },
        },
      },
    } as never);
    // A ServiceAccount token in the federated namespace (not copied), and an existing object of
    // the same name as a federated one in the target namespace (kept as is, not recorded).
    await hk.create(SecretResource, {
      metadata: {
        name: 'default-token-abcde',
        namespace: FED,
        annotations: { 'kubernetes.io/service-account.name': 'default' },
      },
      type: 'kubernetes.io/service-account-token',
    });
    await hk.create(ConfigMapResource, {
      metadata: { name: 'notification-manager-template', namespace: NS },
      data: { template: 'already here' },
    });
    await playCoreUpgrade(hk, [[REF.name, REF.version]]);
    store = (await encryptedTempStore('notif-store-')).store;
  });
  after(() => Promise.all([host.remove(), member.remove()]));

  it('reads retryCount as a YAML number or a string, and names a bad option', () => {
    for (const retryCount of [3, '3', 0]) {
      assert.doesNotThrow(() => whizardNotificationJobFactory.create({ retryCount }, REF));
    }
    for (const retryCount of ['abc', -1, 2.5, true]) {
      assert.throws(
        () => whizardNotificationJobFactory.create({ retryCount }, REF),
        /jobs\.whizard-notification\.dynamicOptions\.retryCount must be a whole number/,
      );
    }
    assert.throws(() => whizardNotificationJobFactory.create({}, undefined), /extensionRef needs a name/);
    assert.equal(
      hasInlineCredential({ spec: { email: { authPassword: { valueFrom: { secretKeyRef: {} } } } } }),
      false,
    );
    assert.equal(hasInlineCredential({ spec: { webhook: { token: { value: 'x' } } } }), true);
  });

  it('plan lists the backups, the copies, the removals and the InstallPlan', async () => {
    const config = jobConfig();
    const job = whizardNotificationJobFactory.create(config.dynamicOptions, config.extensionRef);
    const ctx = createJobContext({
      job: JOB,
      phase: 'pre-upgrade',
      cluster: { name: 'host' },
      kube: hk,
      store,
      config,
      logger: createMemoryLogger(),
    });
    const lines = ((await job.plan?.(ctx)) ?? []).map(
      (a) => `${a.phase} ${a.action}${a.target ? ` ${a.target}` : ''}`,
    );
    for (const line of [
      'pre-upgrade back up 1 NotificationManagers notificationManagerResource',
      'pre-upgrade back up 2 Configs notificationConfigResource',
      `pre-upgrade copy 1 Secrets and 1 ConfigMaps to ${NS} Namespace ${FED}`,
      `post-upgrade uninstall helm release ${NS}/notification-manager`,
      `post-upgrade delete Deployment ${NS}/notification-adapter`,
      'post-upgrade delete CRD configs.notification.kubesphere.io',
      'post-upgrade create InstallPlan whizard-notification',
    ]) {
      assert.ok(lines.includes(line), `${line}\n${lines.join('\n')}`);
    }
  });

  it('pre-upgrade (host): each kind under its own key, inline credentials encrypted, federated objects copied', async () => {
    assert.deepEqual((await runJob(hk, 'host', store, 'pre-upgrade')).outcomes, ['succeeded']);
    const scoped = store.scope('host', JOB);
    const crdKey = (n: string) =>
      `${JOB}-apiextensions.k8s.io.v1.customresourcedefinitions-.${n}.notification.kubesphere.io`;
    assert.deepEqual(
      (await scoped.list()).sort(),
      [
        'notification-adapter',
        'notification-copied-objects',
        'notificationConfigResource',
        'notificationManagerResource',
        'notificationReceiverResource',
        'notificationRouterResource',
        'notificationSilenceResource',
        ...['configs', 'notificationmanagers', 'receivers', 'routers', 'silences'].map(crdKey),
      ].sort(),
    );
    type List = { kind: string; items: { kind: string; metadata: { name: string } }[] };
    const items = async (key: string) => {
      const list = await scoped.load<List>(key);
      return [list.kind, ...list.items.map((i) => `${i.kind}/${i.metadata.name}`)];
    };
    // The original saved NotificationManagers under notificationConfigResource, then overwrote them.
    assert.deepEqual(await items('notificationManagerResource'), [
      'NotificationManagerList',
      'NotificationManager/notification-manager',
    ]);
    assert.deepEqual(await items('notificationConfigResource'), [
      'ConfigList',
      'Config/default-email-config',
      'Config/ops-webhook-config',
    ]);
    assert.deepEqual(await items('notificationReceiverResource'), [
      'ReceiverList',
      'Receiver/global-email-receiver',
    ]);
    assert.deepEqual(await items('notificationRouterResource'), ['RouterList', 'Router/critical-to-ops']);
    assert.deepEqual(await items('notificationSilenceResource'), [
      'SilenceList',
      'Silence/silence-test-namespace',
    ]);
    assert.equal((await scoped.stat('notificationConfigResource')).encrypted, true, 'inline token');
    assert.equal((await scoped.stat('notificationRouterResource')).sensitive, false);
    assert.equal(
      (await scoped.load<Deployment>('notification-adapter')).metadata.name,
      'notification-adapter',
    );
    // Copied: the Secret (same data) and nothing that was already there or a ServiceAccount token.
    assert.deepEqual(await scoped.load('notification-copied-objects'), {
      secrets: ['default-email-secret'],
      configmaps: [],
    });
    const copy = await hk.get(SecretResource, 'default-email-secret', NS);
    assert.deepEqual(copy.data, (await hk.get(SecretResource, 'default-email-secret', FED)).data);
    assert.equal(await hk.tryGet(SecretResource, 'default-token-abcde', NS), undefined);
    assert.equal(
      (await hk.get(ConfigMapResource, 'notification-manager-template', NS)).data?.template,
      'already here',
    );
  });

  it('pre-upgrade again keeps the first backups and the record of copies', async () => {
    const snapshot = await storeSnapshot(store, 'host');
    await hk.delete(NotificationRouterResource, 'critical-to-ops');
    assert.deepEqual((await runJob(hk, 'host', store, 'pre-upgrade')).outcomes, ['succeeded']);
    assert.deepEqual(await storeSnapshot(store, 'host'), snapshot);
  });

  it('post-upgrade (host) without a backup pre-upgrade took fails naming the key, before any change', async () => {
    await withoutBackup(store.scope('host', JOB), 'notificationRouterResource', async () => {
      await assert.rejects(
        runJob(hk, 'host', store, 'post-upgrade'),
        (err: Error & { cause?: Error & { hint?: string } }) => {
          assert.equal(err.cause?.name, 'MissingBackupError', String(err));
          assert.match(
            err.message,
            /backup 'notificationRouterResource' of job whizard-notification is missing/,
          );
          assert.match(err.cause.hint ?? '', /whizard-notification pre-upgrade takes this backup/);
          return true;
        },
      );
      assert.equal(
        (
          await hk.listAll(SecretResource, {
            namespace: NS,
            labelSelector: 'owner=helm,name=notification-manager',
          })
        ).length,
        1,
        'notification-manager is not uninstalled',
      );
      assert.ok(await hk.tryGet(DeploymentResource, 'notification-adapter', NS));
      assert.equal(await hk.tryGet(InstallPlanResource, REF.name), undefined);
    });
  });

  it('post-upgrade (host): a CRD deletion blocked by a finalizer fails after its bound, with the fix in the hint', async () => {
    await hk.patch(NotificationConfigResource, 'default-email-config', undefined, {
      metadata: { finalizers: ['example.com/block'] },
    });
    const impatient = createWhizardNotificationJobFactory({
      crdPollMs: 100,
      crdTimeoutMs: 1000,
      operatorPollMs: 100,
      operatorGraceMs: 0,
    });
    const started = Date.now();
    await assert.rejects(
      runJob(hk, 'host', store, 'post-upgrade', jobConfig(), impatient),
      (err: Error & { cause?: { hint?: string } }) =>
        /still being deleted/.test(err.message) && /finalizers/.test(err.cause?.hint ?? ''),
    );
    assert.ok(Date.now() - started < 10_000, 'bounded');
    assert.equal(await hk.tryGet(InstallPlanResource, REF.name), undefined, 'no InstallPlan yet');
    await hk.patch(NotificationConfigResource, 'default-email-config', undefined, {
      metadata: { finalizers: null },
    });
  });

  it('post-upgrade (host): removes notification-manager, installs the extension and re-creates the objects', async () => {
    const standIn = startExtensionStandIn(hk);
    try {
      // No config and history off in the cc: the original's tweak applies.
      const ref = { name: REF.name, version: REF.version };
      assert.deepEqual(
        (await runJob(hk, 'host', store, 'post-upgrade', jobConfig({ retryCount: '50' }, ref))).outcomes,
        ['succeeded'],
      );
    } finally {
      await standIn.stop();
    }
    assert.deepEqual((await hk.get(InstallPlanResource, REF.name)).spec, {
      extension: REF,
      enabled: true,
      upgradeStrategy: 'Manual',
      config: 'notification-history:\n  enabled: false\n',
    });
    assert.deepEqual(await hk.listAll(SecretResource, { namespace: NS, labelSelector: 'owner=helm' }), []);
    assert.equal(await hk.tryGet(ConfigMapResource, 'nm-template', NS), undefined);
    assert.equal(await hk.tryGet(DeploymentResource, 'notification-adapter', NS), undefined);
    for (const c of FEDERATED_CRDS)
      assert.equal(await hk.tryGet(CustomResourceDefinitionResource, c.metadata.name), undefined);
    // Re-created from the backups (the router deleted after the backup included); NotificationManagers
    // come with the extension.
    assert.deepEqual(await names(hk, NotificationConfigResource), [
      'default-email-config',
      'ops-webhook-config',
    ]);
    assert.deepEqual(await names(hk, NotificationRouterResource), ['critical-to-ops']);
    assert.deepEqual(await names(hk, NotificationSilenceResource), ['silence-test-namespace']);
    assert.deepEqual(await names(hk, NotificationReceiverResource), ['global-email-receiver']);
    assert.deepEqual(await names(hk, NotificationManagerResource), []);
    const recreated = await hk.get(NotificationConfigResource, 'default-email-config');
    assert.equal(recreated.metadata.finalizers, undefined, 'as backed up, before the finalizer was added');
    assert.ok(await store.scope('host', JOB).exists(`${JOB}-done`));
  });

  it('post-upgrade again: done; with rerun the existing InstallPlan keeps the CRDs and objects in place', async () => {
    const uid = (await hk.get(NotificationConfigResource, 'default-email-config')).metadata.uid;
    const snapshot = await storeSnapshot(store, 'host');
    assert.deepEqual((await runJob(hk, 'host', store, 'post-upgrade')).outcomes, ['succeeded']);
    assert.deepEqual(await storeSnapshot(store, 'host'), snapshot);
    // Operator gone: `retryCount` checks, then a warning, not a failure.
    await hk.delete(DeploymentResource, 'notification-manager-operator', NS);
    const { outcomes, logs } = await runJob(
      hk,
      'host',
      store,
      'post-upgrade',
      jobConfig({ rerun: true, retryCount: 2 }),
    );
    assert.deepEqual(outcomes, ['succeeded']);
    assert.ok(
      logs.some((l) => /^warn: .*not ready after 2 checks/.test(l)),
      logs.join('\n'),
    );
    assert.equal((await hk.get(NotificationConfigResource, 'default-email-config')).metadata.uid, uid);
  });

  it('on a member: backups, release and adapter removed; CRDs, copies and InstallPlan are the host’s business', async () => {
    assert.deepEqual((await runJob(mk, 'member1', store, 'pre-upgrade')).outcomes, ['succeeded']);
    const keys = await store.scope('member1', JOB).list();
    assert.ok(keys.includes('notificationConfigResource'));
    assert.ok(!keys.includes('notification-copied-objects') && !keys.includes('notification-adapter'));
    assert.equal(await mk.tryGet(SecretResource, 'default-email-secret', NS), undefined);
    assert.deepEqual((await runJob(mk, 'member1', store, 'post-upgrade')).outcomes, ['succeeded']);
    assert.deepEqual(await mk.listAll(SecretResource, { namespace: NS, labelSelector: 'owner=helm' }), []);
    assert.equal(await mk.tryGet(DeploymentResource, 'notification-adapter', NS), undefined);
    assert.ok(await mk.tryGet(CustomResourceDefinitionResource, 'configs.notification.kubesphere.io'));
    assert.deepEqual(await mk.listIfServed(InstallPlanResource), []);
  });

  it('rollback (host) restores the adapter and the NotificationManager, removes the copies it made', async () => {
    assert.deepEqual((await runJob(hk, 'host', store, 'rollback')).outcomes, ['succeeded']);
    assert.ok(await hk.tryGet(DeploymentResource, 'notification-adapter', NS));
    assert.deepEqual(await names(hk, NotificationManagerResource), ['notification-manager']);
    assert.equal(await hk.tryGet(SecretResource, 'default-email-secret', NS), undefined);
    assert.ok(await hk.tryGet(SecretResource, 'default-email-secret', FED));
    assert.equal(
      (await hk.get(ConfigMapResource, 'notification-manager-template', NS)).data?.template,
      'already here',
    );
    assert.equal(await store.scope('host', JOB).exists(`${JOB}-done`), false);
  });

  it('when the extension never comes: a clear error instead of silence, and rollback brings the CRDs back', async () => {
    // The member cluster, now a single cluster of its own, with a fresh store scope.
    await mk.mutate(ConfigMapResource, 'kubesphere-config', 'kubesphere-system', (c) => {
      c.data = { 'kubesphere.yaml': 'multicluster:\n  clusterRole: none\n' };
    });
    await patchCc(mk, { spec: { notification: { history: { enabled: true } } } });
    await playCoreUpgrade(mk, [[REF.name, REF.version]]);
    await mk.create(DeploymentResource, { ...operatorDeployment() });
    assert.deepEqual((await runJob(mk, 'single', store, 'pre-upgrade')).outcomes, ['succeeded']);
    await assert.rejects(
      runJob(mk, 'single', store, 'post-upgrade', jobConfig({ retryCount: 1 }, { ...REF, config: 'x: 1\n' })),
      /configs\.notification\.kubesphere\.io is not served/,
    );
    assert.equal((await mk.get(InstallPlanResource, REF.name)).spec.config, 'x: 1\n', 'user config kept');
    assert.equal(
      await mk.tryGet(CustomResourceDefinitionResource, 'configs.notification.kubesphere.io'),
      undefined,
    );
    assert.deepEqual((await runJob(mk, 'single', store, 'rollback')).outcomes, ['succeeded']);
    assert.ok(await mk.tryGet(CustomResourceDefinitionResource, 'configs.notification.kubesphere.io'));
    assert.deepEqual(await names(mk, NotificationConfigResource), ['default-email-config']);
    assert.deepEqual(await names(mk, NotificationManagerResource), ['notification-manager']);
    assert.equal(await mk.tryGet(SecretResource, 'default-email-secret', NS), undefined, 'copy removed');
  });
});

const patchCc = (kube: ResourceClient, body: Record<string, unknown>) =>
  kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', body);
