// Installs the KubeSphere v3 fixture on a (test's own) API server, and plays the v4 core upgrade.
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import * as yaml from 'js-yaml';
import '../../src/api/v3/index.js';
import '../../src/api/v4/index.js';
import {
  ConfigMapResource,
  DeploymentResource,
  NamespaceResource,
  SecretResource,
} from '../../src/api/core.js';
import { ClusterConfigurationResource, ClusterResource } from '../../src/api/v3/index.js';
import { ExtensionVersionResource, RepositoryResource } from '../../src/api/v4/index.js';
import { decodeRelease, encodeRelease, releaseSecretName, type HelmRelease } from '../../src/helm/release.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { KubeObject } from '../../src/kube/types.js';
import { isHostClusterObject } from '../../src/kubesphere/clusters.js';
import { devEnv, repoRoot } from './env.js';
import { applyObjects, readYamlDocuments } from './fixtures.js';
import { devClusterConnection } from './kube.js';

const V3 = path.join(repoRoot, 'test/fixtures/kubesphere-v3');
const V4 = path.join(repoRoot, 'test/fixtures/kubesphere-v4');

const yamlFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => path.join(dir, f));

/**
 * The KubeSphere v4.1.3 CRD files that replace v3 CRDs of the same name (iam, tenant, cluster):
 * `helm show crds | kubectl apply` puts them over the v3 ones before the upgrade starts. The other
 * kubesphere-v4/crds files arrive with the core upgrade itself ({@link playCoreUpgrade}).
 */
const V4_CRDS_BEFORE_UPGRADE = new Set([
  'cluster.kubesphere.io.yaml',
  'iam.kubesphere.io.yaml',
  'tenant.kubesphere.io.yaml',
]);

/** The CRDs `helm show crds | kubectl apply` of ks-core v4.1.3 puts over the v3 ones. */
export function v4CrdsBeforeUpgrade(): KubeObject[] {
  return yamlFiles(path.join(V4, 'crds'))
    .filter((f) => V4_CRDS_BEFORE_UPGRADE.has(path.basename(f)))
    .flatMap(readYamlDocuments);
}

export interface V3InstallOptions {
  /** More object files (e.g. a generated scale fixture), applied after the fixture's own. */
  extraObjects?: KubeObject[];
  /**
   * Kubeconfig files of the API servers the fixture's member Cluster objects point at, by Cluster
   * name. A member not named here points at the dev server of the same name (`.dev/env`), made a
   * bare KubeSphere v3 member first ({@link prepareDevMember}).
   */
  members?: Record<string, string>;
}

/**
 * Installs the v3 fixture: the v3.4.1 CRDs, the objects of every kubesphere-v3/objects file, the
 * member Clusters' kubeconfigs (real API servers), then the v4 CRDs that
 * `helm show crds | kubectl apply` puts over the v3 ones — the state in which the upgrade starts:
 * objects stored in the old versions, which v4 still serves, deprecated.
 */
export async function installKubeSphereV3(
  kube: ResourceClient,
  options: V3InstallOptions = {},
): Promise<void> {
  await applyObjects(kube, yamlFiles(path.join(V3, 'crds')).flatMap(readYamlDocuments));
  // Per-job files may put objects into each other's namespaces: all Namespaces go first.
  const objects = yamlFiles(path.join(V3, 'objects')).flatMap(readYamlDocuments);
  await applyObjects(
    kube,
    objects.filter((o) => o.kind === 'Namespace'),
  );
  await applyObjects(
    kube,
    objects.filter((o) => o.kind !== 'Namespace'),
  );
  if (options.extraObjects) await applyObjects(kube, options.extraObjects);
  await connectFixtureMembers(kube, options.members);
  await applyObjects(kube, v4CrdsBeforeUpgrade());
}

/** The helm release record of ks-core at `appVersion`. */
export async function putKsCoreRelease(
  kube: ResourceClient,
  version: number,
  appVersion: string,
  status: string,
): Promise<void> {
  // A record that exists (the v3 one, possibly rewritten by the iam job) keeps its content: helm
  // only changes the status of a superseded revision.
  const existing = await kube.tryGet(
    SecretResource,
    releaseSecretName('ks-core', version),
    'kubesphere-system',
  );
  if (existing) {
    await kube.mutate(
      SecretResource,
      releaseSecretName('ks-core', version),
      'kubesphere-system',
      (secret) => {
        const old = decodeRelease(secret);
        secret.data = { ...secret.data, release: encodeRelease({ ...old, info: { ...old.info, status } }) };
        secret.metadata.labels = { ...secret.metadata.labels, status };
      },
    );
    return;
  }
  const release: HelmRelease = {
    name: 'ks-core',
    namespace: 'kubesphere-system',
    version,
    info: { status },
    chart: { metadata: { name: 'ks-core', version: appVersion.replace(/^v/, ''), appVersion } },
    manifest: '',
  };
  await kube.apply(SecretResource, {
    metadata: {
      name: releaseSecretName('ks-core', version),
      namespace: 'kubesphere-system',
      labels: { owner: 'helm', name: 'ks-core', status, version: String(version) },
    },
    type: 'helm.sh/release.v1',
    data: { release: encodeRelease(release) },
  });
}

/**
 * What `helm upgrade ks-core` (v4.1.3) does, as far as ks-upgrade can see: the v4 CRDs, the
 * extensions-museum Repository and its ExtensionVersions, a v4 ks-apiserver, and a deployed v4
 * release record superseding the v3 one. The stand-in controller then plays the v4 controllers.
 */
export async function playCoreUpgrade(
  kube: ResourceClient,
  extensions: [string, string][] = [],
  options: { skipCrds?: string[] } = {},
): Promise<void> {
  // skipCrds: e.g. the v2alpha1 Gateway CRD, on a cluster that still serves v1alpha1 Gateways (the
  // gateway job swaps them in post-upgrade).
  for (const file of yamlFiles(path.join(V4, 'crds'))) {
    if (V4_CRDS_BEFORE_UPGRADE.has(path.basename(file))) continue;
    const docs = readYamlDocuments(file).filter((o) => !options.skipCrds?.includes(o.metadata.name ?? ''));
    await applyObjects(kube, docs);
  }
  await kube.apply(RepositoryResource, {
    metadata: { name: 'extensions-museum' },
    spec: { url: 'https://extensions-museum.kubesphere-system.svc' },
  });
  for (const [name, version] of extensions) {
    await kube.apply(ExtensionVersionResource, {
      metadata: { name: `${name}-${version}`, labels: { 'kubesphere.io/extension-ref': name } },
      spec: { version, displayName: { en: name } },
    });
  }
  // helm upgrade rolls the control plane onto the v4 images (and back up from core's scale-down).
  for (const name of ['ks-apiserver', 'ks-console', 'ks-controller-manager']) {
    if (!(await kube.tryGet(DeploymentResource, name, 'kubesphere-system'))) continue;
    await kube.mutate(DeploymentResource, name, 'kubesphere-system', (d) => {
      const c = d.spec?.template?.spec?.containers?.[0];
      if (c) c.image = `kubesphere/${name}:v4.1.3`;
      if (d.spec) d.spec.replicas = 1;
    });
  }
  await putKsCoreRelease(kube, 1, 'v3.4.1', 'superseded');
  await putKsCoreRelease(kube, 2, 'v4.1.3', 'deployed');
}

/**
 * Every optional component of KubeSphere v3.4 switched on in the ClusterConfiguration, so that each
 * extension job of the original finds its component (the full upgrade of issue #6).
 */
export const ALL_COMPONENTS_SPEC = {
  devops: { enabled: true },
  openpitrix: { store: { enabled: true } },
  network: { networkpolicy: { enabled: true }, ippool: { type: 'calico' } },
  servicemesh: { enabled: true },
  edgeruntime: {
    enabled: true,
    kubeedge: {
      enabled: true,
      cloudCore: {
        cloudHub: { advertiseAddress: ['172.18.0.2'] },
        service: {
          cloudhubNodePort: '30000',
          cloudhubQuicNodePort: '30001',
          cloudhubHttpsNodePort: '30002',
          cloudstreamNodePort: '30003',
          tunnelNodePort: '30004',
        },
      },
    },
  },
  metrics_server: { enabled: true },
  logging: { enabled: true, logsidecar: { enabled: true } },
  events: { enabled: true },
  alerting: { enabled: true },
  auditing: { enabled: true },
  notification: { history: { enabled: true } },
  monitoring: { whizard: { enabled: true }, process_exporter: { enabled: true } },
} as const;

/**
 * A host and a member1 cluster, each with the v3 fixture and every component on (and OpenSearch
 * releases on the host): the host's
 * Cluster `member1` points at the member's real API server, the member knows itself as a member.
 */
export async function installFixtureFleet(
  host: { client: ResourceClient; kubeconfig: string },
  member: { client: ResourceClient; kubeconfig: string },
): Promise<void> {
  const members = { member1: member.kubeconfig };
  await Promise.all([
    installKubeSphereV3(host.client, { members }),
    installKubeSphereV3(member.client, { members }),
  ]);
  for (const kube of [host.client, member.client]) {
    await kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: ALL_COMPONENTS_SPEC,
    });
  }
  const mk = member.client;
  await mk.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
    spec: { multicluster: { clusterRole: 'member' } },
  });
  await mk.mutate(ConfigMapResource, 'kubesphere-config', 'kubesphere-system', (cm) => {
    const text = cm.data?.['kubesphere.yaml'] ?? '';
    cm.data = { ...cm.data, 'kubesphere.yaml': text.replace('clusterRole: host', 'clusterRole: member') };
  });
  // A member has no Cluster objects of its own.
  for (const c of await mk.listAll(ClusterResource)) await mk.delete(ClusterResource, c.metadata.name ?? '');
  // OpenSearch of the v3 logging stack: helm releases (records only), each owning a ConfigMap.
  const ns = 'kubesphere-logging-system';
  for (const name of ['opensearch-master', 'opensearch-data', 'opensearch-dashboard']) {
    await host.client.apply(ConfigMapResource, {
      metadata: { name: `${name}-config`, namespace: ns },
      data: { 'opensearch.yml': 'cluster.name: opensearch-cluster\n' },
    });
    const release: HelmRelease = {
      name,
      namespace: ns,
      version: 1,
      info: { status: 'deployed' },
      chart: { metadata: { name: 'opensearch', version: '2.6.0', appVersion: '2.6.0' } },
      manifest: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}-config\n  namespace: ${ns}\n`,
    };
    await host.client.apply(SecretResource, {
      metadata: {
        name: releaseSecretName(name, 1),
        namespace: ns,
        labels: { owner: 'helm', name, status: 'deployed', version: '1' },
      },
      type: 'helm.sh/release.v1',
      data: { release: encodeRelease(release) },
    });
  }
}

/**
 * A self-contained kubeconfig for one context of a kubeconfig file: the CA embedded (as in the
 * kubeconfigs KubeSphere keeps in Cluster objects), the server and the credentials. Holds a
 * credential: never log it.
 */
export async function standaloneKubeconfig(kubeconfigFile: string, context?: string): Promise<string> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigFile);
  if (context) kc.setCurrentContext(context);
  const name = kc.getCurrentContext();
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user) throw new Error(`${kubeconfigFile}: context '${name}' has no cluster or user`);
  const ca =
    cluster.caData ?? (cluster.caFile ? (await readFile(cluster.caFile)).toString('base64') : undefined);
  return yaml.dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name, cluster: { server: cluster.server, ...(ca ? { 'certificate-authority-data': ca } : {}) } },
    ],
    users: [
      {
        name: user.name,
        user: {
          ...(user.token ? { token: user.token } : {}),
          ...(user.certData ? { 'client-certificate-data': user.certData } : {}),
          ...(user.keyData ? { 'client-key-data': user.keyData } : {}),
        },
      },
    ],
    contexts: [{ name, context: { cluster: name, user: user.name } }],
    'current-context': name,
  });
}

/**
 * Points the host's Cluster `name` at a real API server: a self-contained kubeconfig of
 * `kubeconfigFile` (its current context, or `context`), base64 as KubeSphere keeps it.
 */
export async function connectMemberCluster(
  hostKube: ResourceClient,
  name: string,
  kubeconfigFile: string,
  context?: string,
): Promise<void> {
  const text = await standaloneKubeconfig(kubeconfigFile, context);
  await hostKube.patch(ClusterResource, name, undefined, {
    spec: { connection: { kubeconfig: Buffer.from(text, 'utf8').toString('base64') } },
  });
}

const preparedDevMembers = new Map<string, Promise<void>>();

/**
 * Makes the dev API server `name` (`.dev/env`) a bare KubeSphere v3 member, once per test process:
 * the installer CRD, a ClusterConfiguration `ks-installer` with the member role and every component
 * off, and a kubesphere-config saying the same. Server-side apply of fixed content, so test files
 * doing this at the same time agree. A test that changes a member's state brings its own member
 * cluster ({@link V3InstallOptions.members}).
 */
export function prepareDevMember(name: string): Promise<void> {
  let done = preparedDevMembers.get(name);
  if (!done) {
    done = (async () => {
      const conn = await devClusterConnection(name);
      try {
        const kube = conn.client;
        await applyObjects(kube, readYamlDocuments(path.join(V3, 'crds/installer.kubesphere.io.yaml')));
        await kube.apply(NamespaceResource, { metadata: { name: 'kubesphere-system' } });
        await kube.apply(ClusterConfigurationResource, {
          metadata: { name: 'ks-installer', namespace: 'kubesphere-system', labels: { version: 'v3.4.1' } },
          spec: { multicluster: { clusterRole: 'member' } },
        });
        await kube.apply(ConfigMapResource, {
          metadata: { name: 'kubesphere-config', namespace: 'kubesphere-system' },
          data: { 'kubesphere.yaml': 'multicluster:\n  clusterRole: member\n' },
        });
      } finally {
        conn.close();
      }
    })();
    done.catch(() => preparedDevMembers.delete(name));
    preparedDevMembers.set(name, done);
  }
  return done;
}

/**
 * Writes each member Cluster's `spec.connection.kubeconfig` (every Cluster without the host label):
 * the kubeconfig file named in `members`, else that of the dev server of the same name, made a bare
 * v3 member first. A member with neither is an error saying what to pass.
 */
export async function connectFixtureMembers(
  kube: ResourceClient,
  members: Record<string, string> = {},
): Promise<void> {
  for (const c of await kube.listIfServed(ClusterResource)) {
    const name = c.metadata.name ?? '';
    if (isHostClusterObject(c)) continue;
    const file = members[name];
    if (file) {
      await connectMemberCluster(kube, name, file);
      continue;
    }
    const env = devEnv();
    if (!env.clusters.includes(name)) {
      throw new Error(
        `fixture Cluster ${name} has no API server: pass installKubeSphereV3(kube, { members: { ${name}: <kubeconfig file> } }), ` +
          `or start the dev servers with ${name} in KS_DEV_CLUSTERS`,
      );
    }
    await prepareDevMember(name);
    await connectMemberCluster(kube, name, env.kubeconfig, name);
  }
}

/**
 * A v3 object without the fields KubeSphere v4.1.3's CRDs can no longer store: Workspace
 * `spec.networkIsolation`, WorkspaceTemplate `spec.template.spec.networkIsolation` and
 * `spec.overrides` (tenant v1beta1, the storage version once the v4 CRDs are applied, has none of
 * them). Any write through the v3
 * version after that — core's network-isolate annotation, the iam migration, a rollback — drops
 * them, on a real cluster as here; rollback cannot bring them back while the v4 CRDs are installed.
 */
export function withoutFieldsV4CannotStore<T extends KubeObject>(obj: T): T {
  const copy = structuredClone(obj) as T & { spec?: Record<string, unknown> };
  if (copy.kind === 'Workspace' && copy.spec) delete copy.spec.networkIsolation;
  if (copy.kind === 'WorkspaceTemplate') {
    const spec = (copy.spec?.template as { spec?: Record<string, unknown> } | undefined)?.spec;
    if (spec) delete spec.networkIsolation;
    if (copy.spec) delete copy.spec.overrides;
  }
  return copy;
}
