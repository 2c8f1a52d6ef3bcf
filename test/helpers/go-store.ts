// A backup store as the original Go ks-upgrade leaves it, written from the behaviour reference
// (§2 store layout, §4 per job, Appendix A), not from src/gostore: flat keys, bare bytes, no
// header, Go's encoding/json (compact, `<>&` escaped, TypeMeta cleared by typed clients,
// zero-valued fields), iam's base64 snapshots, YAML, `time.String()` markers, raw chart archives.
// Two ways to fill one: `syntheticGoStore` (every key family, small values) and `goStoreFromOurs`
// (the values our jobs backed up on a fixture cluster, turned into the Go tool's form).
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import * as yaml from 'js-yaml';
import type { ResourceStore } from '../../src/store/index.js';
import { devS3Client } from './s3.js';

type Json = Record<string, unknown>;

/** Go's `json.Marshal`: compact, and `<`, `>`, `&` escaped as \u003c, \u003e, \u0026. */
export function goJson(value: unknown): Buffer {
  const text = JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026');
  return Buffer.from(text, 'utf8');
}

/** Kinds whose Go type has no `status` field (everything else marshals a zero `"status":{}`). */
const NO_STATUS = new Set([
  'ConfigMap',
  'Secret',
  'ServiceAccount',
  'Role',
  'RoleBinding',
  'ClusterRole',
  'ClusterRoleBinding',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
  'Endpoints',
]);
const POD_TEMPLATE_KINDS = new Set(['Deployment', 'DaemonSet', 'StatefulSet', 'Job', 'ReplicaSet']);

/**
 * One object as a typed controller-runtime client hands it to `json.Marshal`: `typeMeta: false`
 * clears apiVersion/kind (a typed Get or a built-in List item), and the zero values of fields
 * without `omitempty` appear: `creationTimestamp: null`, `status: {}`, pod templates'
 * `metadata.creationTimestamp: null`, a deployment's `strategy: {}`.
 */
export function goObject(obj: Json, typeMeta: boolean): Json {
  const kind = typeof obj.kind === 'string' ? obj.kind : undefined;
  const { apiVersion, kind: _kind, metadata, ...rest } = structuredClone(obj);
  const meta = { ...(metadata as Json | undefined) };
  meta.creationTimestamp ??= null;
  const out: Json = typeMeta ? { kind, apiVersion, metadata: meta, ...rest } : { metadata: meta, ...rest };
  if (kind && POD_TEMPLATE_KINDS.has(kind)) {
    const spec = (out.spec ?? {}) as Json;
    const template = (spec.template ?? {}) as Json;
    template.metadata = { creationTimestamp: null, ...(template.metadata as Json | undefined) };
    spec.template = template;
    if (kind === 'Deployment') spec.strategy ??= {};
    out.spec = spec;
  }
  if (!kind || !NO_STATUS.has(kind)) out.status ??= {};
  return out;
}

/** A typed List as the Go tool marshals it: the list's TypeMeta cleared; items per `itemTypeMeta`. */
export function goList(list: Json, itemTypeMeta: boolean): Json {
  const items = (list.items as Json[] | null | undefined) ?? [];
  return {
    metadata: list.metadata ?? {},
    items: items.map((i) => goObject(i, itemTypeMeta)),
  };
}

/** Go's `time.String()` of a UTC time: `2025-04-23 08:00:00.1 +0000 UTC`. */
export function goTimeString(date: Date): string {
  const iso = date.toISOString();
  const frac = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? `.${frac}` : ''} +0000 UTC`;
}

/** iam's snapshot record: `[{"list": base64(json list), "timestamp": unix seconds}]`. */
export function goSnapshots(lists: { list: Json; at: number }[]): Buffer {
  return goJson(lists.map((l) => ({ list: goJson(l.list).toString('base64'), timestamp: l.at })));
}

/** A Go store: key → bytes, written flat into a directory or an S3 prefix. */
export type GoStore = Map<string, Buffer>;

export async function writeGoStoreDir(dir: string, store: GoStore): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [key, bytes] of store) await writeFile(path.join(dir, key), bytes, { mode: 0o666 });
}

export async function writeGoStoreS3(bucket: string, prefix: string, store: GoStore): Promise<void> {
  const s3 = devS3Client();
  try {
    for (const [key, bytes] of store) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: prefix + key, Body: bytes }));
    }
  } finally {
    s3.destroy();
  }
}

/** sha256 of every file of a directory (what "the source is unchanged" compares). */
export async function dirDigest(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const d of await readdir(dir, { withFileTypes: true })) {
    if (d.isFile()) {
      out.set(
        d.name,
        createHash('sha256')
          .update(await readFile(path.join(dir, d.name)))
          .digest('hex'),
      );
    } else out.set(`${d.name}/`, d.isDirectory() ? 'dir' : 'other');
  }
  return out;
}

/** sha256, size and ETag of every object under an S3 prefix. */
export async function s3Digest(bucket: string, prefix: string): Promise<Map<string, string>> {
  const s3 = devS3Client();
  const out = new Map<string, string>();
  try {
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key }));
        const bytes = await got.Body?.transformToByteArray();
        const sha = createHash('sha256')
          .update(bytes ?? new Uint8Array())
          .digest('hex');
        out.set(o.Key ?? '', `${sha} ${o.Size ?? 0} ${o.ETag ?? ''} ${o.LastModified?.toISOString() ?? ''}`);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    s3.destroy();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The Go tool's keys, per job, as the reference lists them. `form` says how the Go code marshals
// the value: a List whose items are CRs (they keep apiVersion/kind) or built-ins (they do not),
// one object read with a typed Get (TypeMeta cleared) or with its GVK set by the job.

type Form =
  | { t: 'list'; items: 'cr' | 'builtin' }
  | { t: 'object'; typeMeta: boolean }
  | { t: 'snapshots'; items: 'cr' | 'builtin' }
  | { t: 'json' }
  | { t: 'values' }
  | { t: 'yaml' }
  | { t: 'text' }
  | { t: 'raw' };

const CR_LIST: Form = { t: 'list', items: 'cr' };
const BUILTIN_LIST: Form = { t: 'list', items: 'builtin' };
const GET: Form = { t: 'object', typeMeta: false };
const STAMPED: Form = { t: 'object', typeMeta: true };

interface KeySpec {
  job: string;
  /** Exact key, or a test on the key. */
  key: string | ((k: string) => boolean);
  form: Form;
  shared?: boolean;
}

const iamBuiltin = new Set([
  'iam-roles.rbac.authorization.kubernetes.io',
  'iam-rolebindings.rbac.authorization.kubernetes.io',
  'iam-clusterrolebindings.rbac.authorization.kubernetes.io',
]);
const IAM_SNAPSHOT_KEYS = [
  'users.iam.kubesphere.io',
  'rolebases.iam.kubesphere.io',
  'globalroles.iam.kubesphere.io',
  'globalrolebindings.iam.kubesphere.io',
  'workspaceroles.iam.kubesphere.io',
  'workspacerolebindings.iam.kubesphere.io',
  'roles.rbac.authorization.kubernetes.io',
  'rolebindings.rbac.authorization.kubernetes.io',
  'clusterrolebindings.rbac.authorization.kubernetes.io',
  'loginrecords.iam.kubesphere.io',
  'groups.iam.kubesphere.io',
  'groupbindings.iam.kubesphere.io',
  'workspaces.tenant.kubesphere.io',
  'workspacetemplates.tenant.kubesphere.io',
].map((r) => `iam-${r}`);
const MARKER_JOBS = [
  'whizard-alerting',
  'whizard-events',
  'whizard-logging',
  'whizard-monitoring',
  'whizard-notification',
  'whizard-telemetry',
  'gateway',
  'network',
  'vector',
  'opensearch',
  'metrics-server',
  'servicemesh',
  'storage-utils',
  'kubeedge',
];
const DEVOPS_LISTS = [
  ['-kubesphere-devops-system-deployments', BUILTIN_LIST],
  ['-kubesphere-devops-system-configmaps', BUILTIN_LIST],
  ['-kubesphere-devops-worker-configmaps', BUILTIN_LIST],
  ['-argocd-configmaps', BUILTIN_LIST],
  ['-devops-jenkins-pvc', BUILTIN_LIST],
  ['-devops-secrets', BUILTIN_LIST],
  ['-devops-projects', CR_LIST],
  ['-devops-pipelines', CR_LIST],
  ['-devops-pipelineruns', CR_LIST],
  ['-devops-gitrepos', CR_LIST],
  ['-devops-jenkins-pv', GET],
  ['-secret-devops-jenkins', GET],
  ['-kubesphere-devops-system-devops-release', { t: 'json' }],
  ['-argocd-devops-release', { t: 'json' }],
  ['-kubesphere-devops-system-devops-values', { t: 'values' }],
  ['-argocd-devops-values', { t: 'values' }],
] as const;

/** The Go tool's key index (reference Appendix A, §4), job by job; the done markers first. */
export const GO_KEYS: readonly KeySpec[] = [
  ...MARKER_JOBS.map((j): KeySpec => ({ job: j, key: `${j}-done`, form: { t: 'text' } })),
  { job: 'core', key: 'kubesphere-config', form: { t: 'yaml' }, shared: true },
  {
    job: 'core',
    key: 'core.validatingwebhookconfigurations.admissionregistration.k8s.io',
    form: BUILTIN_LIST,
  },
  { job: 'core', key: 'core.mutatingwebhookconfigurations.admissionregistration.k8s.io', form: BUILTIN_LIST },
  { job: 'core', key: 'core.cluster.kubeconfig', form: CR_LIST },
  { job: 'core', key: 'core.resource.kubesphere.system', form: BUILTIN_LIST },
  { job: 'core', key: 'core-workspacetemplates.tenant.kubesphere.io.v1alpha2', form: CR_LIST },
  { job: 'core', key: 'core-workspace.tenant.kubesphere.io.v1alpha1', form: CR_LIST },
  ...['prepare-upgrade', 'pre-upgrade', 'post-upgrade'].map((p): KeySpec => ({
    job: 'iam',
    key: `iam-upgrade-status-${p}`,
    form: { t: 'json' },
  })),
  ...IAM_SNAPSHOT_KEYS.map((k): KeySpec => ({
    job: 'iam',
    key: k,
    form: { t: 'snapshots', items: iamBuiltin.has(k) ? 'builtin' : 'cr' },
  })),
  ...['helmcategories', 'helmapplications', 'helmapplicationversions', 'helmrepos', 'helmreleases'].map(
    (r): KeySpec => ({
      job: 'application',
      key: `application-${r}.application.kubesphere.io.v1alpha1`,
      form: CR_LIST,
    }),
  ),
  { job: 'application', key: (k) => /^appv-/.test(k), form: { t: 'raw' } },
  ...DEVOPS_LISTS.map(([suffix, form]): KeySpec => ({ job: 'devops', key: (k) => k.endsWith(suffix), form })),
  { job: 'devops', key: 'ks-devops-agent', form: GET },
  { job: 'devops', key: 'jenkins-casc-config', form: GET },
  { job: 'devops', key: 'upgrade-devops-done', form: { t: 'yaml' } },
  {
    job: 'whizard-monitoring',
    key: (k) => k.startsWith('whizard-monitoring.helm.release-'),
    form: { t: 'json' },
  },
  // apps kinds were looked up as core-group resources: no REST mapping, so no GVK stamped.
  {
    job: 'whizard-monitoring',
    key: (k) => /^whizard-monitoring-\.v1\.(daemonsets|deployments)-/.test(k),
    form: GET,
  },
  { job: 'whizard-monitoring', key: (k) => k.startsWith('whizard-monitoring-'), form: STAMPED },
  {
    job: 'whizard-alerting',
    key: (k) => k.startsWith('whizard-alerting-alerting.kubesphere.io.'),
    form: CR_LIST,
  },
  {
    job: 'whizard-alerting',
    key: (k) => k.startsWith('whizard-alerting-'),
    form: STAMPED,
  },
  ...['gateway-ingress-list'].map((k): KeySpec => ({ job: 'gateway', key: k, form: BUILTIN_LIST })),
  ...['gateway-gateway-cr-list', 'gateway-nginx-cr-list'].map((k): KeySpec => ({
    job: 'gateway',
    key: k,
    form: CR_LIST,
  })),
  ...[
    'gateway-gateways.gateway.kubesphere.io',
    'gateway-nginxes.gateway.kubesphere.io',
    'gateway-prometheus-ingress-rules',
  ].map((k): KeySpec => ({ job: 'gateway', key: k, form: GET })),
  {
    job: 'network',
    key: (k) => k.startsWith('network-') && k.includes('.admissionregistration.'),
    form: GET,
  },
  {
    job: 'network',
    key: (k) => k.startsWith('network-') && k.endsWith('-crd.apiextensions.k8s.io.v1'),
    form: GET,
  },
  { job: 'network', key: 'network-networkpolicies.networking.k8s.io.v1', form: BUILTIN_LIST },
  { job: 'network', key: (k) => k.startsWith('network-'), form: CR_LIST },
  ...[
    'notificationConfigResource',
    'notificationReceiverResource',
    'notificationRouterResource',
    'notificationSilenceResource',
  ].map((k): KeySpec => ({ job: 'whizard-notification', key: k, form: CR_LIST })),
  { job: 'whizard-notification', key: 'notification-adapter', form: GET },
  ...['events-Rules', 'events-Rulers', 'events-Exporters'].map((k): KeySpec => ({
    job: 'whizard-events',
    key: k,
    form: CR_LIST,
  })),
  { job: 'whizard-logging', key: 'logging_logsidecar_enabled', form: { t: 'text' } },
  ...['filter', 'parser', 'input', 'output', 'fluentbit', 'fluentbitconfig'].map((r): KeySpec => ({
    job: 'vector',
    key: `logging-${r}`,
    form: CR_LIST,
  })),
  ...['opensearch_enabled', 'opensearch_curator_enabled', 'opensearch_dashboards_enabled'].map(
    (k): KeySpec => ({ job: 'opensearch', key: k, form: { t: 'text' } }),
  ),
  { job: 'metrics-server', key: (k) => /^metrics-server-.*\.json$/.test(k), form: STAMPED },
  { job: 'servicemesh', key: (k) => k === 'servicemesh-jaeger' || k === 'servicemesh-kiali', form: STAMPED },
  { job: 'servicemesh', key: (k) => k.startsWith('servicemesh-'), form: GET },
  { job: 'storage-utils', key: 'old-snapshot-controller', form: GET },
  { job: 'kubeedge', key: 'kubeedge-configmap-list', form: BUILTIN_LIST },
  { job: 'kubeedge', key: 'kubeedge-secret-list', form: BUILTIN_LIST },
];

function specFor(job: string, key: string): KeySpec | undefined {
  return GO_KEYS.find((s) => s.job === job && (typeof s.key === 'string' ? s.key === key : s.key(key)));
}

/** Go's bytes for one of our stored values. */
function goBytes(form: Form, payload: Uint8Array): Buffer {
  const text = (): string => Buffer.from(payload).toString('utf8');
  const json = (): Json => JSON.parse(text()) as Json;
  switch (form.t) {
    case 'list':
      return goJson(goList(json(), form.items === 'cr'));
    case 'object':
      return goJson(goObject(json(), form.typeMeta));
    case 'snapshots': {
      const entries = JSON.parse(text()) as { list: string; timestamp: number }[];
      return goSnapshots(
        entries.map((e) => ({
          list: goList(
            JSON.parse(Buffer.from(e.list, 'base64').toString('utf8')) as Json,
            form.items === 'cr',
          ),
          at: e.timestamp,
        })),
      );
    }
    case 'json':
      return goJson(json());
    case 'values': {
      // A release installed without user values has a nil Config: Go writes `null`.
      const v = json();
      return Object.keys(v).length === 0 ? Buffer.from('null') : goJson(v);
    }
    case 'yaml':
      // Go re-serialises the map: keys sorted.
      return Buffer.from(yaml.dump(yaml.load(text()), { sortKeys: true, lineWidth: -1 }), 'utf8');
    case 'text':
    case 'raw':
      return Buffer.from(payload);
  }
}

/**
 * The Go store the original tool would have left, from what our jobs stored for `cluster` (every
 * key of the reference's index that our store has; our own extra keys are left out). The Go tool
 * saved NotificationManagers under the Configs' key when there were no Configs.
 */
export async function goStoreFromOurs(ours: ResourceStore, cluster: string): Promise<GoStore> {
  const store: GoStore = new Map();
  for (const full of await ours.list(`${cluster}/`)) {
    const [, scope = '', ...rest] = full.split('/');
    const key = rest.join('/');
    const job = scope === '_shared' ? 'core' : scope;
    const spec = specFor(job, key);
    if (!spec || (scope === '_shared') !== (spec.shared === true)) continue;
    const scoped = scope === '_shared' ? ours.scope(cluster, 'core').shared() : ours.scope(cluster, job);
    store.set(key, goBytes(spec.form, await scoped.loadRaw(key)));
  }
  if (!store.has('notificationConfigResource')) {
    const managers = await ours
      .scope(cluster, 'whizard-notification')
      .loadRaw('notificationManagerResource')
      .catch(() => undefined);
    if (managers) store.set('notificationConfigResource', goBytes(CR_LIST, managers));
  }
  return store;
}

// ---------------------------------------------------------------------------------------------
// A small store with every key family of the reference.

const meta = (name: string, namespace?: string, extra: Json = {}): Json => ({
  name,
  ...(namespace ? { namespace } : {}),
  uid: `uid-${name}`,
  resourceVersion: '1',
  creationTimestamp: '2024-01-02T03:04:05Z',
  ...extra,
});
const cm = (name: string, ns: string): Json => ({
  kind: 'ConfigMap',
  metadata: meta(name, ns),
  data: { 'config.yaml': `name: ${name}\n` },
});
const secret = (name: string, ns: string): Json => ({
  kind: 'Secret',
  metadata: meta(name, ns),
  type: 'Opaque',
  data: { token: Buffer.from(`${name}-do-not-leak`).toString('base64') },
});
const deployment = (name: string, ns: string): Json => ({
  kind: 'Deployment',
  metadata: meta(name, ns),
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image: `${name}:v1` }] } },
  },
});
const cr = (apiVersion: string, kind: string, name: string, spec: Json = {}, ns?: string): Json => ({
  apiVersion,
  kind,
  metadata: meta(name, ns),
  spec,
});
const crd = (name: string): Json => ({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: meta(name),
  spec: { group: name.slice(name.indexOf('.') + 1), names: { plural: name.slice(0, name.indexOf('.')) } },
});
const list = (items: Json[]): Json => ({ metadata: { resourceVersion: '42' }, items });

/** A chart archive (`.tgz`): gzip of a tiny tar is enough for a format check. */
export function tinyChart(name: string): Buffer {
  return gzipSync(Buffer.from(`${name}/Chart.yaml\0apiVersion: v2\nname: ${name}\nversion: 1.0.0\n`));
}

/**
 * Every key family the Go tool writes (core, iam and each extension job; prepare, pre and post),
 * with small values in the Go tool's format. `at`: the time markers and snapshots carry.
 */
export function syntheticGoStore(at = new Date('2025-04-23T08:00:00.1Z')): GoStore {
  const s: GoStore = new Map();
  const unix = Math.floor(at.getTime() / 1000);
  const put = (key: string, value: unknown): void => {
    s.set(key, Buffer.isBuffer(value) ? value : goJson(value));
  };
  // core
  s.set(
    'kubesphere-config',
    Buffer.from(
      yaml.dump(
        {
          authentication: { jwtSecret: 'jwt-do-not-leak' },
          gateway: {
            namespace: 'kubesphere-controls-system',
            repository: 'kubesphere/nginx-ingress-controller',
          },
          multicluster: { clusterRole: 'host' },
        },
        { sortKeys: true },
      ),
    ),
  );
  const ksWebhook = {
    kind: 'ValidatingWebhookConfiguration',
    metadata: meta('users.iam.kubesphere.io'),
    webhooks: [
      {
        name: 'users.iam.kubesphere.io',
        clientConfig: { service: { namespace: 'kubesphere-system', name: 'ks-controller-manager' } },
      },
    ],
  };
  put('core.validatingwebhookconfigurations.admissionregistration.k8s.io', goList(list([ksWebhook]), false));
  // The Go code appended the matches to the wrong list: always empty (reference §7.2 #10).
  put('core.mutatingwebhookconfigurations.admissionregistration.k8s.io', { metadata: {}, items: [] });
  put(
    'core.cluster.kubeconfig',
    goList(
      list([
        cr('cluster.kubesphere.io/v1alpha1', 'Cluster', 'member1', {
          connection: {
            type: 'direct',
            kubeconfig: Buffer.from('apiVersion: v1\nkind: Config\n').toString('base64'),
          },
        }),
      ]),
      true,
    ),
  );
  put(
    'core.resource.kubesphere.system',
    goList(list([deployment('ks-installer', 'kubesphere-system')]), false),
  );
  put(
    'core-workspacetemplates.tenant.kubesphere.io.v1alpha2',
    goList(list([cr('tenant.kubesphere.io/v1alpha2', 'WorkspaceTemplate', 'demo-ws')]), true),
  );
  put(
    'core-workspace.tenant.kubesphere.io.v1alpha1',
    goList(list([cr('tenant.kubesphere.io/v1alpha1', 'Workspace', 'demo-ws')]), true),
  );
  // iam: status markers (Go time.Time → RFC3339Nano) and the snapshots
  for (const p of ['prepare-upgrade', 'pre-upgrade', 'post-upgrade']) {
    put(`iam-upgrade-status-${p}`, { status: 'success', time: '2025-04-23T16:00:00.123456789+08:00' });
  }
  for (const k of IAM_SNAPSHOT_KEYS) {
    const builtin = iamBuiltin.has(k);
    const item = builtin
      ? {
          kind: 'Role',
          metadata: meta('custom', 'demo-ns', { annotations: { 'kubesphere.io/creator': 'admin' } }),
          rules: [],
        }
      : cr('iam.kubesphere.io/v1alpha2', 'User', 'alice', { encryptedPassword: '$2a$10$do-not-leak' });
    s.set(
      k,
      goSnapshots([
        { list: goList(list([item]), !builtin), at: unix - 60 },
        { list: goList(list([item]), !builtin), at: unix },
      ]),
    );
  }
  // application: lists, and the chart of each HelmApplicationVersion under its name
  for (const [r, kind] of [
    ['helmcategories', 'HelmCategory'],
    ['helmapplications', 'HelmApplication'],
    ['helmrepos', 'HelmRepo'],
    ['helmreleases', 'HelmRelease'],
  ] as const) {
    put(
      `application-${r}.application.kubesphere.io.v1alpha1`,
      goList(list([cr('application.kubesphere.io/v1alpha1', kind, `${kind.toLowerCase()}-1`)]), true),
    );
  }
  put(
    'application-helmapplicationversions.application.kubesphere.io.v1alpha1',
    goList(list([cr('application.kubesphere.io/v1alpha1', 'HelmApplicationVersion', 'appv-nginx-1')]), true),
  );
  s.set('appv-nginx-1', tinyChart('nginx'));
  // devops: <C> = host, member1; `current` for this cluster's Jenkins volume
  for (const c of ['host', 'member1']) {
    put(`${c}-kubesphere-devops-system-devops-release`, {
      name: 'devops',
      namespace: 'kubesphere-devops-system',
      version: 1,
      info: { status: 'deployed' },
      config: { jenkins: { Master: { ServiceType: 'NodePort' } } },
    });
    s.set(
      `${c}-kubesphere-devops-system-devops-values`,
      goJson({ jenkins: { Master: { ServiceType: 'NodePort' } } }),
    );
    put(
      `${c}-kubesphere-devops-system-deployments`,
      goList(list([deployment('devops-apiserver', 'kubesphere-devops-system')]), false),
    );
    put(
      `${c}-kubesphere-devops-system-configmaps`,
      goList(list([cm('devops-config', 'kubesphere-devops-system')]), false),
    );
    put(
      `${c}-kubesphere-devops-worker-configmaps`,
      goList(list([cm('ks-devops-agent', 'kubesphere-devops-worker')]), false),
    );
    put(`${c}-secret-devops-jenkins`, goObject(secret('devops-jenkins', 'kubesphere-devops-system'), false));
    for (const [r, kind] of [
      ['projects', 'DevOpsProject'],
      ['pipelines', 'Pipeline'],
      ['pipelineruns', 'PipelineRun'],
      ['gitrepos', 'GitRepository'],
    ] as const) {
      put(`${c}-devops-${r}`, goList(list([cr('devops.kubesphere.io/v1alpha3', kind, `${r}-1`)]), true));
    }
    put(`${c}-devops-secrets`, goList(list([secret('git-credentials', 'demo-devops')]), false));
    put(`${c}-argocd-devops-release`, {
      name: 'devops',
      namespace: 'argocd',
      version: 1,
      info: { status: 'deployed' },
    });
    // No user values: Go marshals the nil map as `null`.
    s.set(`${c}-argocd-devops-values`, Buffer.from('null'));
    put(`${c}-argocd-configmaps`, goList(list([cm('argocd-cm', 'argocd')]), false));
  }
  for (const c of ['host', 'member1', 'current']) {
    put(
      `${c}-devops-jenkins-pvc`,
      goList(
        list([
          {
            kind: 'PersistentVolumeClaim',
            metadata: meta('devops-jenkins', 'kubesphere-devops-system'),
            spec: { volumeName: 'pv-jenkins' },
          },
        ]),
        false,
      ),
    );
    put(
      `${c}-devops-jenkins-pv`,
      goObject(
        {
          kind: 'PersistentVolume',
          metadata: meta('pv-jenkins'),
          spec: { persistentVolumeReclaimPolicy: 'Retain' },
        },
        false,
      ),
    );
  }
  put('ks-devops-agent', goObject(cm('ks-devops-agent', 'kubesphere-devops-worker'), false));
  put('jenkins-casc-config', goObject(cm('jenkins-casc-config', 'kubesphere-devops-system'), false));
  s.set(
    'upgrade-devops-done',
    Buffer.from(
      yaml.dump({
        name: 'devops',
        version: '1.1.2',
        clusterScheduling: { overrides: { host: 'jenkins:\n  Master:\n    AdminPassword: do-not-leak\n' } },
      }),
    ),
  );
  // whizard-monitoring: helm release records, objects by GVR (apps kinds keyed as `.v1.…`)
  for (const n of ['ks-process', 'ks-calico', 'whizard']) {
    put(`whizard-monitoring.helm.release-kubesphere-monitoring-system.${n}`, {
      name: n,
      namespace: 'kubesphere-monitoring-system',
      version: 1,
      info: { status: 'deployed' },
    });
  }
  put(
    'whizard-monitoring-monitoring.coreos.com.v1.prometheuses-kubesphere-monitoring-system.k8s',
    goObject(cr('monitoring.coreos.com/v1', 'Prometheus', 'k8s', {}, 'kubesphere-monitoring-system'), true),
  );
  put(
    'whizard-monitoring-.v1.daemonsets-kubesphere-monitoring-system.node-exporter',
    goObject({ ...deployment('node-exporter', 'kubesphere-monitoring-system'), kind: 'DaemonSet' }, false),
  );
  put(
    'whizard-monitoring-.v1.deployments-kubesphere-monitoring-system.grafana',
    goObject(deployment('grafana', 'kubesphere-monitoring-system'), false),
  );
  put(
    'whizard-monitoring-.v1.secrets-kubesphere-monitoring-system.grafana-config',
    goObject({ apiVersion: 'v1', ...secret('grafana-config', 'kubesphere-monitoring-system') }, true),
  );
  put(
    'whizard-monitoring-rbac.authorization.k8s.io.v1.clusterroles-.kubesphere-node-exporter',
    goObject(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: meta('kubesphere-node-exporter'),
        rules: [],
      },
      true,
    ),
  );
  // whizard-alerting
  for (const r of ['globalrulegroups', 'clusterrulegroups', 'rulegroups']) {
    put(
      `whizard-alerting-apiextensions.k8s.io.v1.customresourcedefinitions-.${r}.alerting.kubesphere.io`,
      goObject(crd(`${r}.alerting.kubesphere.io`), true),
    );
  }
  for (const w of ['validating', 'mutating']) {
    put(
      `whizard-alerting-admissionregistration.k8s.io.v1.${w}webhookconfigurations-.rulegroups.alerting.kubesphere.io`,
      goObject(
        {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: `${w === 'validating' ? 'Validating' : 'Mutating'}WebhookConfiguration`,
          metadata: meta('rulegroups.alerting.kubesphere.io'),
          webhooks: [],
        },
        true,
      ),
    );
  }
  for (const [r, kind] of [
    ['globalrulegroups', 'GlobalRuleGroup'],
    ['clusterrulegroups', 'ClusterRuleGroup'],
    ['rulegroups', 'RuleGroup'],
  ] as const) {
    put(`whizard-alerting-alerting.kubesphere.io.v2beta1.${r}`, {
      kind: 'List',
      apiVersion: 'v1',
      ...goList(list([cr('alerting.kubesphere.io/v2beta1', kind, `${r}-1`)]), true),
    });
  }
  // gateway
  put(
    'gateway-ingress-list',
    goList(list([{ kind: 'Ingress', metadata: meta('web', 'demo-ns'), spec: {} }]), false),
  );
  put(
    'gateway-gateway-cr-list',
    goList(
      list([
        cr(
          'gateway.kubesphere.io/v1alpha1',
          'Gateway',
          'kubesphere-router-demo-ns',
          {},
          'kubesphere-controls-system',
        ),
      ]),
      true,
    ),
  );
  put('gateway-nginx-cr-list', {
    apiVersion: 'gateway.kubesphere.io/v1alpha1',
    kind: 'NginxList',
    metadata: {},
    items: [
      cr(
        'gateway.kubesphere.io/v1alpha1',
        'Nginx',
        'kubesphere-router-demo-ns',
        {},
        'kubesphere-controls-system',
      ),
    ],
  });
  put('gateway-gateways.gateway.kubesphere.io', goObject(crd('gateways.gateway.kubesphere.io'), false));
  put('gateway-nginxes.gateway.kubesphere.io', goObject(crd('nginxes.gateway.kubesphere.io'), false));
  put(
    'gateway-prometheus-ingress-rules',
    goObject(
      cr(
        'monitoring.coreos.com/v1',
        'PrometheusRule',
        'prometheus-ingress-rules',
        {},
        'kubesphere-monitoring-system',
      ),
      false,
    ),
  );
  // network
  put(
    'network-validatingwebhookconfiguration.admissionregistration.k8s.io.v1',
    goObject(
      { kind: 'ValidatingWebhookConfiguration', metadata: meta('network.kubesphere.io'), webhooks: [] },
      false,
    ),
  );
  for (const r of ['ippools', 'ipamblocks', 'ipamhandles']) {
    put(
      `network-${r}.network.kubesphere.io-crd.apiextensions.k8s.io.v1`,
      goObject(crd(`${r}.network.kubesphere.io`), false),
    );
  }
  put(
    'network-ippools.network.kubesphere.io.v1alpha1',
    goList(list([cr('network.kubesphere.io/v1alpha1', 'IPPool', 'default-ipv4-ippool')]), true),
  );
  put(
    'network-ippools.crd.projectcalico.org.v1',
    goList(list([cr('crd.projectcalico.org/v1', 'IPPool', 'default-ipv4-ippool')]), true),
  );
  put('network-networkpolicies.networking.k8s.io.v1', goList(list([]), false));
  put(
    'network-workspacetemplates.tenant.kubesphere.io.v1alpha2',
    goList(list([cr('tenant.kubesphere.io/v1alpha2', 'WorkspaceTemplate', 'demo-ws')]), true),
  );
  put(
    'network-namespacenetworkpolicies.network.kubesphere.io.v1alpha1',
    goList(
      list([cr('network.kubesphere.io/v1alpha1', 'NamespaceNetworkPolicy', 'allow', {}, 'demo-ns')]),
      true,
    ),
  );
  // whizard-notification: no Configs here, so the NotificationManagers went under the Configs' key
  put(
    'notificationConfigResource',
    goList(
      list([
        cr('notification.kubesphere.io/v2beta2', 'NotificationManager', 'notification-manager', {
          receivers: { globalReceiverSelector: {} },
        }),
      ]),
      true,
    ),
  );
  for (const [k, kind] of [
    ['notificationReceiverResource', 'Receiver'],
    ['notificationRouterResource', 'Router'],
    ['notificationSilenceResource', 'Silence'],
  ] as const) {
    put(k, goList(list([cr('notification.kubesphere.io/v2beta2', kind, `${kind.toLowerCase()}-1`)]), true));
  }
  // Deployment notification-adapter did not exist: Go saved its zero value.
  put(
    'notification-adapter',
    goObject(
      { kind: 'Deployment', spec: { selector: null, template: { spec: { containers: null } } } },
      false,
    ),
  );
  // whizard-events, whizard-logging, vector, opensearch
  for (const [k, kind] of [
    ['events-Rules', 'Rule'],
    ['events-Rulers', 'Ruler'],
    ['events-Exporters', 'Exporter'],
  ] as const) {
    put(
      k,
      goList(
        list([
          cr(
            'events.kubesphere.io/v1alpha1',
            kind,
            `${kind.toLowerCase()}-1`,
            {},
            'kubesphere-logging-system',
          ),
        ]),
        true,
      ),
    );
  }
  s.set('logging_logsidecar_enabled', Buffer.from('true'));
  for (const [r, kind] of [
    ['filter', 'Filter'],
    ['parser', 'Parser'],
    ['input', 'Input'],
    ['output', 'Output'],
    ['fluentbit', 'FluentBit'],
    ['fluentbitconfig', 'FluentBitConfig'],
  ] as const) {
    put(
      `logging-${r}`,
      goList(
        list([cr('logging.kubesphere.io/v1alpha2', kind, `${r}-1`, {}, 'kubesphere-logging-system')]),
        true,
      ),
    );
  }
  s.set('opensearch_enabled', Buffer.from('true'));
  s.set('opensearch_curator_enabled', Buffer.from('false'));
  s.set('opensearch_dashboards_enabled', Buffer.from('true'));
  // metrics-server: `metrics-server-<Kind>-<ns>-<name>.json`, GVK set by the job
  for (const [apiVersion, kind, ns, name] of [
    ['apiregistration.k8s.io/v1', 'APIService', '', 'v1beta1.metrics.k8s.io'],
    ['v1', 'ServiceAccount', 'kube-system', 'metrics-server'],
    ['rbac.authorization.k8s.io/v1', 'ClusterRole', '', 'system:aggregated-metrics-reader'],
    ['rbac.authorization.k8s.io/v1', 'ClusterRole', '', 'system:metrics-server'],
    ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', '', 'metrics-server:system:auth-delegator'],
    ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', '', 'metrics-server:system:metrics-server'],
    ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', '', 'system:metrics-server'],
    ['rbac.authorization.k8s.io/v1', 'RoleBinding', 'kube-system', 'metrics-server-auth-reader'],
    ['apps/v1', 'Deployment', 'kube-system', 'metrics-server'],
    ['v1', 'Service', 'kube-system', 'metrics-server'],
  ] as const) {
    const obj =
      kind === 'Deployment' ? deployment(name, ns) : { kind, metadata: meta(name, ns || undefined) };
    put(`metrics-server-${kind}-${ns}-${name}.json`, goObject({ ...obj, apiVersion }, true));
  }
  // servicemesh (written in post): `servicemesh-<name>-<Go type>` (typed Get), the CRs and CRDs
  for (const name of [
    'jaeger-query',
    'jaeger-collector',
    'jaeger-operator',
    'kiali-operator',
    'istiod-1-14-6',
    'kiali',
    'istio-ingressgateway',
  ]) {
    put(`servicemesh-${name}-Deployment`, goObject(deployment(name, 'istio-system'), false));
  }
  for (const name of [
    'istio-reader-clusterrole-1-14-6-istio-system',
    'istio-reader-istio-system',
    'istiod-clusterrole-1-14-6-istio-system',
    'istiod-gateway-controller-1-14-6-istio-system',
    'istiod-istio-system',
    'kiali',
    'kiali-operator',
  ]) {
    for (const kind of ['ClusterRole', 'ClusterRoleBinding']) {
      put(`servicemesh-${name}-${kind}`, goObject({ kind, metadata: meta(name) }, false));
    }
  }
  for (const [name, kind] of [
    ['istio-validator-1-14-6-istio-system', 'ValidatingWebhookConfiguration'],
    ['istiod-default-validator', 'ValidatingWebhookConfiguration'],
    ['istio-revision-tag-default', 'MutatingWebhookConfiguration'],
    ['istio-sidecar-injector-1-14-6', 'MutatingWebhookConfiguration'],
  ] as const) {
    put(`servicemesh-${name}-${kind}`, goObject({ kind, metadata: meta(name), webhooks: [] }, false));
  }
  // Read with the dynamic client: unstructured, apiVersion/kind kept.
  put('servicemesh-jaeger', cr('jaegertracing.io/v1', 'Jaeger', 'jaeger', {}, 'istio-system'));
  put('servicemesh-kiali', cr('kiali.io/v1alpha1', 'Kiali', 'kiali', {}, 'istio-system'));
  for (const name of ['kialis.kiali.io', 'jaegers.jaegertracing.io']) {
    put(`servicemesh-${name}-CustomResourceDefinition`, goObject(crd(name), false));
  }
  // storage-utils, kubeedge
  put(
    'old-snapshot-controller',
    goObject(
      {
        kind: 'StatefulSet',
        metadata: meta('snapshot-controller', 'kube-system'),
        spec: { template: { spec: { containers: [] } } },
      },
      false,
    ),
  );
  put('kubeedge-configmap-list', goList(list([cm('cloudcore', 'kubeedge')]), false));
  put('kubeedge-secret-list', goList(list([secret('casecret', 'kubeedge')]), false));
  // completion markers
  for (const j of MARKER_JOBS) s.set(`${j}-done`, Buffer.from(goTimeString(at)));
  return s;
}
