// Installs the KubeSphere v3 fixture on a (test's own) API server, and plays the v4 core upgrade.
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import '../../src/api/v3/index.js';
import '../../src/api/v4/index.js';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  DeploymentResource,
  SecretResource,
  type CustomResourceDefinition,
} from '../../src/api/core.js';
import { ClusterConfigurationResource, ClusterResource } from '../../src/api/v3/index.js';
import { ExtensionVersionResource, RepositoryResource } from '../../src/api/v4/index.js';
import { decodeRelease, encodeRelease, releaseSecretName, type HelmRelease } from '../../src/helm/release.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { waitForCrdEstablished } from '../../src/kube/crd.js';
import type { KubeObject } from '../../src/kube/types.js';
import { repoRoot } from './env.js';
import { applyObjects, readYamlDocuments } from './fixtures.js';

const V3 = path.join(repoRoot, 'test/fixtures/kubesphere-v3');
const V4 = path.join(repoRoot, 'test/fixtures/kubesphere-v4');

const yamlFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => path.join(dir, f));

/**
 * The CRD as a KubeSphere v3 cluster had it: only the old version(s), the first one stored. The
 * fixture files hold the CRDs as they are once the v4 CRDs were applied on top (multi-version,
 * old versions deprecated); installing the v3 form first gives objects stored in the old version
 * and `status.storedVersions` listing it — exactly what the IAM migration meets in production.
 */
function v3Form(crd: CustomResourceDefinition): CustomResourceDefinition {
  const old = crd.spec.versions.filter((v) => v.deprecated);
  if (old.length === 0) return crd;
  const versions = old.map((v, i) => {
    const { deprecated: _d, deprecationWarning: _w, ...rest } = v;
    return { ...rest, served: true, storage: i === 0 };
  });
  return { ...crd, spec: { ...crd.spec, versions } };
}

export interface V3InstallOptions {
  /** More object files (e.g. a generated scale fixture), applied after the fixture's own. */
  extraObjects?: KubeObject[];
}

/**
 * Installs the v3 fixture: the v3 CRDs, the objects of every kubesphere-v3/objects file, then the CRDs as the
 * v4 `helm show crds | kubectl apply` leaves them (the state in which the upgrade starts).
 */
export async function installKubeSphereV3(
  kube: ResourceClient,
  options: V3InstallOptions = {},
): Promise<void> {
  const crds = yamlFiles(path.join(V3, 'crds')).flatMap(readYamlDocuments) as CustomResourceDefinition[];
  await applyObjects(kube, crds.map(v3Form));
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
  for (const crd of crds) await kube.apply(CustomResourceDefinitionResource, crd, { force: true });
  for (const crd of crds) await waitForCrdEstablished(kube, crd.metadata.name ?? '');
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
  await kube.mutate(DeploymentResource, 'ks-apiserver', 'kubesphere-system', (d) => {
    const c = d.spec?.template?.spec?.containers?.[0];
    if (c) c.image = 'kubesphere/ks-apiserver:v4.1.3';
    if (d.spec) d.spec.replicas = 1;
  });
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
  await Promise.all([installKubeSphereV3(host.client), installKubeSphereV3(member.client)]);
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
  await connectMemberCluster(host.client, 'member1', member.kubeconfig);
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

/** Points the host's Cluster `name` at a real API server: its kubeconfig file, base64 as KubeSphere keeps it. */
export async function connectMemberCluster(
  hostKube: ResourceClient,
  name: string,
  kubeconfigFile: string,
): Promise<void> {
  await hostKube.patch(ClusterResource, name, undefined, {
    spec: { connection: { kubeconfig: (await readFile(kubeconfigFile)).toString('base64') } },
  });
}
