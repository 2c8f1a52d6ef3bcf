// The iam job (reference §4.2) on API servers of its own, with the KubeSphere v3 fixture
// (test/fixtures/kubesphere-v3/objects/iam.yaml): every step of prepare / pre / post checked field
// by field against the mapping tables, each phase run twice (same cluster, same store), a re-run
// without the status marker (no resourceVersion churn, one more snapshot), a crash between each
// backup and its action, a concurrent writer between snapshot and migration, the original's store
// formats, rollback after prepare+pre and after post, and the plan.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  DeploymentResource,
  NamespaceResource,
  RbacClusterRoleBindingResource,
  RbacClusterRoleResource,
  RbacRoleBindingResource,
  RbacRoleResource,
  SecretResource,
} from '../../src/api/core.js';
import * as v3 from '../../src/api/v3/index.js';
import * as v4 from '../../src/api/v4/index.js';
import type { UpgradeConfig } from '../../src/config/types.js';
import { ValidationError } from '../../src/errors.js';
import { decodeRelease } from '../../src/helm/release.js';
import { IAM_STORE_KEYS, iamJobFactory, parseIamOptions } from '../../src/jobs/iam/index.js';
import { loadUnion } from '../../src/jobs/iam/util.js';
import {
  JobPhaseError,
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runJobPhase,
  type JobProgress,
  type Phase,
  type UpgradeJob,
  type InstantiatedJob,
} from '../../src/jobs/index.js';
import { ResourceClient } from '../../src/kube/client.js';
import type { KubeRequest, KubeResponse, KubeTransport } from '../../src/kube/transport.js';
import type { KubeObject, ResourceType } from '../../src/kube/types.js';
import {
  PlaintextSecretError,
  abortedAttemptName,
  createResourceStore,
  type ResourceStore,
} from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, withoutFieldsV4CannotStore } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';

const NS = 'kubesphere-system';
const PROJECT = 'demo-project';
const KUBEFED_NS = 'kube-federation-system';
const IAM = 'iam.kubesphere.io';
const RBAC = 'rbac.authorization.k8s.io';
/** Credentials of the fixture: none may appear in a log line or in the store's bytes. */
const SECRETS = [
  'fixture-client-secret-do-not-leak',
  'fixture-ldap-password-do-not-leak',
  'fixtureJwtSecretDoNotLeak0123456789',
  'HashDoNotLeak',
];
const RELEASE_SECRET = 'sh.helm.release.v1.ks-core.v1';
/** The FederatedTypeConfigs the original deletes (its names; other fixtures add more configs). */
const IAM_FTCS = [
  'clusterroles.rbac.authorization.kubernetes.io',
  'users.iam.kubesphere.io',
  'groups.iam.kubesphere.io',
  'groupbindings.iam.kubesphere.io',
  'globalroles.iam.kubesphere.io',
  'workspaces.tenant.kubesphere.io',
  'workspaceroles.iam.kubesphere.io',
  'globalrolebindings.iam.kubesphere.io',
  'workspacerolebindings.iam.kubesphere.io',
  'clusterrolebindings.rbac.authorization.kubernetes.io',
];

type AnyObj = KubeObject & Record<string, unknown>;

interface Harness {
  cluster: EphemeralCluster;
  kube: ResourceClient;
  storeDir: string;
  store: ResourceStore;
  scoped: ResourceStore;
  logger: ReturnType<typeof createMemoryLogger>;
  heartbeats: JobProgress[];
  job: UpgradeJob;
  /** Runs one phase; `kube` replaces the client (interceptors). Throws JobPhaseError on failure. */
  run(phase: Phase, kube?: ResourceClient): Promise<string>;
}

function iamConfig(dynamicOptions: Record<string, unknown>): UpgradeConfig {
  return configWithJobs({ iam: { enabled: true, priority: 999, dynamicOptions } });
}

async function setUp(prefix: string, dynamicOptions: Record<string, unknown> = {}): Promise<Harness> {
  const cluster = await startEphemeralCluster(prefix);
  const kube = cluster.connection.client;
  // Fixture files are applied in name order; some (application.yaml) put objects into
  // kubesphere-system before core.yaml creates it.
  await kube.create(NamespaceResource, { metadata: { name: NS } });
  await installKubeSphereV3(kube);
  const storeDir = await mkdtemp(path.join(tmpdir(), 'iam-store-'));
  const keyFile = path.join(await mkdtemp(path.join(tmpdir(), 'iam-key-')), 'backup.key');
  await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
  const store = await createResourceStore({ local: { path: storeDir }, encryption: { keyFile } });
  const registry = new JobRegistry();
  registry.register(iamJobFactory);
  const jobs: InstantiatedJob[] = instantiateJobs(iamConfig(dynamicOptions), registry);
  const iam = jobs[0];
  assert.ok(iam, 'the iam job is built from the config');
  const logger = createMemoryLogger();
  const heartbeats: JobProgress[] = [];
  return {
    cluster,
    kube,
    storeDir,
    store,
    scoped: store.scope('host', 'iam'),
    logger,
    heartbeats,
    job: iam.job,
    run: async (phase, client) =>
      (
        await runJobPhase(
          iam.job,
          createJobContext({
            job: 'iam',
            phase,
            cluster: { name: 'host' },
            kube: client ?? kube,
            store,
            config: iam.config,
            logger,
            heartbeat: (p) => heartbeats.push(p ?? {}),
          }),
        )
      ).outcome,
  };
}

/**
 * The same cluster through a transport whose requests pass `hook` first (it may write through the
 * real client, or throw to simulate a crash) and whose responses are reported to `onResponse`.
 */
function intercepted(
  kube: ResourceClient,
  hook: (req: KubeRequest) => Promise<void> | void,
  onResponse?: (req: KubeRequest, res: KubeResponse) => void,
): ResourceClient {
  const transport = kube.transport;
  const proxy = new Proxy(transport, {
    get(target, prop, receiver) {
      if (prop === 'request') {
        return async (req: KubeRequest) => {
          await hook(req);
          const res = await target.request(req);
          onResponse?.(req, res);
          return res;
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return new ResourceClient(proxy);
}

/**
 * A client whose process "dies" at the `nth` request matching `pattern` (`METHOD path`): that
 * request and every later one fail without reaching the server, as after a real crash.
 */
function crashingOn(
  kube: ResourceClient,
  pattern: RegExp,
  nth = 1,
): { client: ResourceClient; crashed: () => boolean } {
  let crashed = false;
  let seen = 0;
  const client = intercepted(kube, (req) => {
    if (!crashed && pattern.test(`${req.method} ${req.path}`) && ++seen === nth) crashed = true;
    if (crashed) throw new Error(`simulated crash (at ${req.method} ${req.path})`);
  });
  return { client, crashed: () => crashed };
}

const TRACKED: { rt: ResourceType; namespace?: string }[] = [
  { rt: v4.UserResource },
  { rt: v4.GlobalRoleResource },
  { rt: v4.GlobalRoleBindingResource },
  { rt: v4.WorkspaceRoleResource },
  { rt: v4.WorkspaceRoleBindingResource },
  { rt: v4.LoginRecordResource },
  { rt: v4.GroupResource },
  { rt: v4.GroupBindingResource },
  { rt: v4.WorkspaceResource },
  { rt: v4.WorkspaceTemplateResource },
  { rt: v4.RoleResource },
  { rt: v4.RoleBindingResource },
  { rt: v4.ClusterRoleBindingResource },
  { rt: v3.RoleBaseResource },
  { rt: RbacRoleResource, namespace: PROJECT },
  { rt: RbacRoleBindingResource, namespace: PROJECT },
  { rt: RbacClusterRoleResource },
  { rt: RbacClusterRoleBindingResource },
  { rt: SecretResource, namespace: NS },
  { rt: ConfigMapResource, namespace: NS },
  { rt: DeploymentResource, namespace: KUBEFED_NS },
  { rt: v3.FederatedTypeConfigResource, namespace: KUBEFED_NS },
  { rt: CustomResourceDefinitionResource },
];

/** resourceVersion of every object the iam job could touch, by `Kind namespace/name`. */
async function resourceVersions(kube: ResourceClient): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const { rt, namespace } of TRACKED) {
    for (const o of await kube.listIfServed(rt, namespace ? { namespace } : {})) {
      out[`${rt.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`] = o.metadata.resourceVersion;
    }
  }
  return out;
}

/** Every key of the job's store with its decrypted payload. */
async function storeContents(scoped: ResourceStore): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of await scoped.list()) out[key] = Buffer.from(await scoped.loadRaw(key)).toString('utf8');
  return out;
}

/** sha256 and createdAt of every backup of the job's store (phase markers excluded). */
async function backupFingerprints(scoped: ResourceStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await scoped.list()) {
    if (key.startsWith('iam-upgrade-status-')) continue;
    const info = await scoped.stat(key);
    out.set(key, `${info.sha256} ${info.createdAt}`);
  }
  return out;
}

/** Every backup in `before` is still there, byte for byte, with its first createdAt. */
async function assertBackupsUnchanged(
  scoped: ResourceStore,
  before: Map<string, string>,
  what: string,
): Promise<void> {
  const now = await backupFingerprints(scoped);
  const changed = [...before].filter(([key, fp]) => now.get(key) !== fp).map(([key]) => key);
  assert.deepEqual(changed, [], `${what} rewrote backup(s) an earlier run wrote`);
}

interface Entry {
  list: string;
  timestamp: number;
}
async function snapshotEntries(scoped: ResourceStore, resource: string): Promise<Entry[]> {
  return JSON.parse(Buffer.from(await scoped.loadRaw(`iam-${resource}`)).toString('utf8')) as Entry[];
}
function decodeList(e: Entry): { apiVersion: string; kind: string; items: AnyObj[] } {
  return JSON.parse(Buffer.from(e.list, 'base64').toString('utf8')) as {
    apiVersion: string;
    kind: string;
    items: AnyObj[];
  };
}
const names = (objs: KubeObject[]): string[] => objs.map((o) => o.metadata.name ?? '').sort();

async function storedVersions(kube: ResourceClient, crd: string): Promise<string[] | undefined> {
  return (await kube.get(CustomResourceDefinitionResource, crd)).status?.storedVersions;
}

/** No credential of the fixture in any log line or in the bytes the store wrote. */
async function assertNoSecretLeaked(h: Harness): Promise<void> {
  const logs = JSON.stringify(h.logger.entries);
  for (const s of SECRETS) assert.ok(!logs.includes(s), `a log line contains ${s}`);
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else files.push(p);
    }
  };
  await walk(h.storeDir);
  assert.ok(files.length > 0);
  for (const f of files) {
    const bytes = (await readFile(f)).toString('latin1');
    for (const s of SECRETS) assert.ok(!bytes.includes(s), `${f} holds ${s} in plaintext`);
  }
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

async function assertStatus(scoped: ResourceStore, phase: string): Promise<void> {
  const status = JSON.parse(
    Buffer.from(await scoped.loadRaw(`iam-upgrade-status-${phase}`)).toString('utf8'),
  ) as {
    status: string;
    time: string;
  };
  assert.deepEqual(Object.keys(status).sort(), ['status', 'time']);
  assert.equal(status.status, 'success');
  assert.match(status.time, RFC3339);
}

describe('iam job: options', () => {
  it('defaults, and refuses unknown or malformed options with the setting to fix', () => {
    assert.deepEqual(parseIamOptions({}), {
      concurrency: 8,
      groupSubjects: 'migrate',
      customRoleRules: 'reset',
    });
    assert.deepEqual(parseIamOptions({ concurrency: '4', groupSubjects: 'drop', customRoleRules: 'keep' }), {
      concurrency: 4,
      groupSubjects: 'drop',
      customRoleRules: 'keep',
    });
    assert.throws(() => parseIamOptions({ concurency: 4 }), ValidationError);
    assert.throws(() => parseIamOptions({ concurrency: 0 }), /from 1 to 64/);
    assert.throws(() => parseIamOptions({ groupSubjects: 'keep' }), /migrate, drop/);
    assert.equal(iamJobFactory.requiresEncryption, true);
  });

  it('refuses a store without an encryption key before touching the cluster', async () => {
    const store = await createResourceStore({
      local: { path: await mkdtemp(path.join(tmpdir(), 'iam-plain-')) },
    });
    let requests = 0;
    const unreachable = new ResourceClient(
      new Proxy({} as KubeTransport, {
        get: () => () => {
          requests++;
          throw new Error('no cluster in this test');
        },
      }),
    );
    for (const phase of ['prepare-upgrade', 'pre-upgrade', 'post-upgrade'] as const) {
      const err = await runJobPhase(
        iamJobFactory.create({}, undefined),
        createJobContext({
          job: 'iam',
          phase,
          cluster: { name: 'host' },
          kube: unreachable,
          store,
          config: { enabled: true, priority: 999, dynamicOptions: {} },
          logger: createMemoryLogger(),
        }),
      ).catch((e: unknown) => e);
      assert.ok(err instanceof JobPhaseError && err.cause instanceof PlaintextSecretError, String(err));
      assert.match(err.cause.hint ?? '', /storage\.encryption\.keyFile/);
    }
    assert.equal(requests, 0);
    assert.deepEqual(await store.list(), []);
  });
});

describe('iam job: an upgrade step by step', () => {
  let h: Harness;
  before(async () => {
    h = await setUp('iam-flow');
  });
  after(() => h.cluster.remove());

  it('plan: counts per kind, and changes nothing', async () => {
    const rvs = await resourceVersions(h.kube);
    const actions = await h.job.plan?.(
      createJobContext({
        job: 'iam',
        phase: 'pre-upgrade',
        cluster: { name: 'host' },
        kube: h.kube,
        store: h.store,
        config: { enabled: true, priority: 999, dynamicOptions: {} },
        logger: h.logger,
      }),
    );
    assert.ok(actions);
    const text = actions.map((a) => `${a.phase} | ${a.action} | ${a.target ?? ''}`);
    const has = (re: RegExp): void => {
      assert.ok(
        text.some((t) => re.test(t)),
        `plan lacks ${re}:\n${text.join('\n')}`,
      );
    };
    has(/prepare-upgrade \| add helm adoption metadata to 12 object/);
    has(/prepare-upgrade \| label with iam.kubesphere.io\/user-ref=admin \| GlobalRoleBinding admin/);
    has(/prepare-upgrade \| append 13 document\(s\) to the release manifest/);
    has(/pre-upgrade \| snapshot 5 and convert in place to iam.kubesphere.io\/v1beta1 User \| users.iam/);
    has(/pre-upgrade \| snapshot 4 and convert in place .* GlobalRoleBinding \| globalrolebindings/);
    has(/pre-upgrade \| snapshot 1 and create as iam.kubesphere.io\/v1beta1 Role \| roles.rbac/);
    has(/pre-upgrade \| snapshot 3 and create as .* RoleBinding \| rolebindings.rbac/);
    has(/pre-upgrade \| snapshot 2 and snapshot only \| rolebases/);
    has(
      /pre-upgrade \| set storedVersions \[v1alpha2, v1beta1\] → \[v1beta1\].*\| CRD groups.iam.kubesphere.io/,
    );
    has(/pre-upgrade \| back up and delete 1 role template\(s\) \| ClusterRole/);
    has(/pre-upgrade \| back up and delete 4 legacy rbac Role\(s\) \(3 built-in\)/);
    const ftcs = (await h.kube.listAll(v3.FederatedTypeConfigResource, { namespace: KUBEFED_NS })).filter(
      (f) => IAM_FTCS.includes(f.metadata.name ?? ''),
    );
    assert.ok(ftcs.length >= 2);
    has(new RegExp(`pre-upgrade \\| back up and delete ${ftcs.length} FederatedTypeConfig`));
    has(/pre-upgrade \| back up and delete the CRD and its objects \| CRD federatedusers.types.kubefed.io/);
    has(
      /pre-upgrade \| create or update identity provider Secret \| Secret kubesphere-system\/kubesphere-identityprovider.github/,
    );
    has(/post-upgrade \| back up and empty the rules of about 3 custom role/);
    has(/post-upgrade \| back up and delete 2 RoleBase/);
    assert.deepEqual(await resourceVersions(h.kube), rvs, 'plan wrote nothing');
    assert.deepEqual(await h.scoped.list(), [], 'plan stored nothing');
  });

  it('prepare-upgrade: helm adoption metadata, the admin binding label, the release manifest', async () => {
    assert.equal(await h.run('prepare-upgrade'), 'succeeded');
    const adopted: [ResourceType, string, string?][] = [
      [ConfigMapResource, 'kubesphere-config', NS],
      ...[
        'anonymous',
        'authenticated',
        'platform-admin',
        'platform-regular',
        'platform-self-provisioner',
        'pre-registration',
      ].map((n): [ResourceType, string] => [v3.GlobalRoleResource, n]),
      ...['admin', 'anonymous', 'authenticated', 'pre-registration'].map((n): [ResourceType, string] => [
        v3.GlobalRoleBindingResource,
        n,
      ]),
      [v3.WorkspaceTemplateResource, 'system-workspace'],
    ];
    for (const [rt, name, ns] of adopted) {
      const o = await h.kube.get(rt, name, ns);
      const annotations = o.metadata.annotations ?? {};
      assert.equal(annotations['meta.helm.sh/release-name'], 'ks-core', `${rt.kind} ${name}`);
      assert.equal(annotations['meta.helm.sh/release-namespace'], NS);
      assert.equal(o.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm');
    }
    // Not on the list: untouched.
    assert.equal((await h.kube.get(v3.GlobalRoleResource, 'ks-console')).metadata.labels, undefined);
    const admin = await h.kube.get(v3.GlobalRoleBindingResource, 'admin');
    assert.equal(admin.metadata.labels?.['iam.kubesphere.io/user-ref'], 'admin');
    assert.deepEqual(
      admin.subjects,
      [{ apiGroup: RBAC, kind: 'User', name: 'admin' }],
      'only the label changed',
    );

    const release = decodeRelease(await h.kube.get(SecretResource, RELEASE_SECRET, NS));
    assert.equal(release.info.status, 'deployed');
    assert.equal(release.chart.metadata.appVersion, 'v3.4.1');
    const original = '---\n# Source: ks-core/templates/kubesphere-config.yaml\n';
    assert.ok(release.manifest.startsWith(original), 'the original manifest is kept as is');
    const docs = yaml.loadAll(release.manifest) as AnyObj[];
    const appended = docs.slice(2).map((d) => {
      const m = d.metadata;
      return `${String(d.apiVersion)} ${String(d.kind)} ${m.namespace ? `${m.namespace}/` : ''}${m.name ?? ''}`;
    });
    assert.deepEqual(appended, [
      'v1 ConfigMap kubesphere-system/kubesphere-config',
      'iam.kubesphere.io/v1beta1 GlobalRole anonymous',
      'iam.kubesphere.io/v1beta1 GlobalRole authenticated',
      'iam.kubesphere.io/v1beta1 GlobalRole platform-admin',
      'iam.kubesphere.io/v1beta1 GlobalRole platform-regular',
      'iam.kubesphere.io/v1beta1 GlobalRole platform-self-provisioner',
      'iam.kubesphere.io/v1beta1 GlobalRole pre-registration',
      'iam.kubesphere.io/v1beta1 GlobalRoleBinding admin',
      'iam.kubesphere.io/v1beta1 GlobalRoleBinding anonymous',
      'iam.kubesphere.io/v1beta1 GlobalRoleBinding authenticated',
      'iam.kubesphere.io/v1beta1 GlobalRoleBinding pre-registration',
      'tenant.kubesphere.io/v1beta1 WorkspaceTemplate system-workspace',
      'kubesphere.io/v1alpha1 Repository extensions-museum',
    ]);
    await assertStatus(h.scoped, 'prepare-upgrade');
    const backup = await h.scoped.load<{ manifest: string }>(IAM_STORE_KEYS.releaseSecret(RELEASE_SECRET));
    assert.ok(backup.manifest.startsWith(original) && !backup.manifest.includes('GlobalRole'));
  });

  it('prepare-upgrade twice: the second run changes neither the cluster nor the store', async () => {
    const rvs = await resourceVersions(h.kube);
    const stored = await storeContents(h.scoped);
    assert.equal(await h.run('prepare-upgrade'), 'succeeded');
    assert.deepEqual(await resourceVersions(h.kube), rvs);
    assert.deepEqual(await storeContents(h.scoped), stored);
    // Even without the marker (a crash before it was written), a re-run writes nothing.
    await h.scoped.delete('iam-upgrade-status-prepare-upgrade');
    assert.equal(await h.run('prepare-upgrade'), 'succeeded');
    assert.deepEqual(await resourceVersions(h.kube), rvs);
  });

  it('pre-upgrade: snapshots in the original format, one per resource key', async () => {
    h.heartbeats.length = 0;
    assert.equal(await h.run('pre-upgrade'), 'succeeded');
    await assertStatus(h.scoped, 'pre-upgrade');
    const expect: Record<string, [string, string, string[]]> = {
      'users.iam.kubesphere.io': [
        'iam.kubesphere.io/v1alpha2',
        'UserList',
        ['admin', 'alice', 'bob', 'carol', 'dave'],
      ],
      'rolebases.iam.kubesphere.io': [
        'iam.kubesphere.io/v1alpha2',
        'RoleBaseList',
        ['global-role-base-platform-regular', 'workspace-role-base-viewer'],
      ],
      'globalrolebindings.iam.kubesphere.io': [
        'iam.kubesphere.io/v1alpha2',
        'GlobalRoleBindingList',
        [
          'admin',
          'alice-platform-regular',
          'bob-team-platform-regular',
          'carol-platform-regular',
          'dave-custom-auditor',
        ],
      ],
      'roles.rbac.authorization.kubernetes.io': ['rbac.authorization.k8s.io/v1', 'RoleList', ['deployer']],
      'rolebindings.rbac.authorization.kubernetes.io': [
        'rbac.authorization.k8s.io/v1',
        'RoleBindingList',
        ['alice-admin', 'bob-deployer', 'demo-team-viewer'],
      ],
      'clusterrolebindings.rbac.authorization.kubernetes.io': [
        'rbac.authorization.k8s.io/v1',
        'ClusterRoleBindingList',
        ['alice-cluster-viewer'],
      ],
      'loginrecords.iam.kubesphere.io': [
        'iam.kubesphere.io/v1alpha2',
        'LoginRecordList',
        ['dave-login-1', 'dave-login-2'],
      ],
      'groups.iam.kubesphere.io': ['iam.kubesphere.io/v1alpha2', 'GroupList', ['demo-team']],
      'groupbindings.iam.kubesphere.io': [
        'iam.kubesphere.io/v1alpha2',
        'GroupBindingList',
        ['demo-team-alice'],
      ],
      'workspaces.tenant.kubesphere.io': [
        'tenant.kubesphere.io/v1alpha1',
        'WorkspaceList',
        ['demo-ws', 'dev-ws', 'system-workspace'],
      ],
      'workspacetemplates.tenant.kubesphere.io': [
        'tenant.kubesphere.io/v1alpha2',
        'WorkspaceTemplateList',
        ['demo-ws', 'dev-ws', 'system-workspace'],
      ],
    };
    for (const [resource, [apiVersion, kind, items]] of Object.entries(expect)) {
      const entries = await snapshotEntries(h.scoped, resource);
      assert.equal(entries.length, 1, resource);
      const e = entries[0];
      assert.ok(e);
      assert.deepEqual(Object.keys(e).sort(), ['list', 'timestamp']);
      assert.ok(Number.isInteger(e.timestamp) && Math.abs(e.timestamp - Date.now() / 1000) < 600);
      const list = decodeList(e);
      assert.equal(list.apiVersion, apiVersion, resource);
      assert.equal(list.kind, kind, resource);
      assert.deepEqual(names(list.items), items, resource);
    }
    // 14 snapshot keys (all of the original's), encrypted: they hold password hashes.
    const keys = (await h.scoped.list('iam-')).filter(
      (k) => !k.startsWith('iam-upgrade-status') && !k.startsWith('iam-backup'),
    );
    assert.equal(keys.length, 14);
    const info = await h.scoped.stat('iam-users.iam.kubesphere.io');
    assert.equal(info.encrypted, true);
    const users = decodeList((await snapshotEntries(h.scoped, 'users.iam.kubesphere.io'))[0] as Entry);
    assert.match(
      String((users.items.find((u) => u.metadata.name === 'admin')?.spec as AnyObj).password),
      /^\$2a\$10\$/,
    );
    // Progress: {step, done, total} per migrated kind.
    const hb = h.heartbeats.find((p) => p.step === 'migrate users.iam.kubesphere.io' && p.done === 5);
    assert.deepEqual(hb, { step: 'migrate users.iam.kubesphere.io', done: 5, total: 5 });
  });

  it('pre-upgrade: users, login records, groups — field by field', async () => {
    const admin = (await h.kube.get(v4.UserResource, 'admin')) as AnyObj;
    assert.equal(admin.apiVersion, 'iam.kubesphere.io/v1beta1');
    assert.deepEqual(admin.spec, {
      email: 'admin@kubesphere.io',
      lang: 'en',
      description: 'platform administrator',
      password: '$2a$10$fixtureAdminHashDoNotLeak000000000000000000000000000000',
    });
    assert.deepEqual(admin.status, {
      state: 'Active',
      lastTransitionTime: '2024-03-01T10:00:00Z',
      lastLoginTime: '2024-06-01T08:00:00Z',
    });
    assert.deepEqual(admin.metadata.finalizers, ['finalizers.kubesphere.io/users']);
    assert.equal(admin.metadata.annotations?.['iam.kubesphere.io/password-encrypted'], 'true');
    const alice = (await h.kube.get(v4.UserResource, 'alice')) as AnyObj;
    assert.deepEqual(alice.spec, {
      email: 'alice@example.com',
      lang: 'zh',
      displayName: 'Alice Liddell',
      groups: ['demo-team'],
      password: '$2a$10$fixtureAliceHashDoNotLeak000000000000000000000000000000',
    });
    assert.deepEqual(alice.metadata.labels, { 'kubesphere.io/team': 'demo' });
    const carol = (await h.kube.get(v4.UserResource, 'carol')) as AnyObj;
    assert.deepEqual(carol.status, {
      state: 'Disabled',
      reason: 'disabled by admin',
      lastTransitionTime: '2024-05-01T12:00:00Z',
    });
    // The same object through the deprecated version (conversion None): v3 readers still work.
    assert.deepEqual((await h.kube.get(v3.UserResource, 'carol')).status, carol.status);

    const lr = (await h.kube.get(v4.LoginRecordResource, 'dave-login-2')) as AnyObj;
    assert.deepEqual(lr.spec, {
      type: 'Token',
      provider: 'corp-LDAP',
      sourceIP: '10.0.0.8',
      userAgent: 'kubectl/v1.26.5',
      success: false,
      reason: 'incorrect password',
    });
    assert.deepEqual(lr.metadata.labels, { 'iam.kubesphere.io/user-ref': 'dave' });

    const gb = (await h.kube.get(v4.GroupBindingResource, 'demo-team-alice')) as AnyObj;
    assert.deepEqual(gb.groupRef, { apiGroup: IAM, kind: 'Group', name: 'demo-team' });
    assert.deepEqual(gb.users, ['alice']);
    assert.equal(
      (await h.kube.get(v4.GroupResource, 'demo-team')).metadata.annotations?.['kubesphere.io/alias-name'],
      'Demo team',
    );
  });

  it('pre-upgrade: roles and bindings — the User-only subject rule, role-ref/user-ref labels, groups kept', async () => {
    const custom = await h.kube.get(v4.GlobalRoleResource, 'custom-auditor');
    assert.deepEqual(custom.rules, [
      { apiGroups: [IAM], resources: ['users', 'loginrecords'], verbs: ['get', 'list', 'watch'] },
    ]);
    assert.equal(custom.aggregationRoleTemplates, undefined);
    assert.deepEqual(custom.metadata.finalizers, ['finalizers.kubesphere.io/globalroles']);
    assert.equal(
      custom.metadata.annotations?.['iam.kubesphere.io/aggregation-roles'],
      '["role-template-view-users"]',
    );

    const grb = await h.kube.get(v4.GlobalRoleBindingResource, 'alice-platform-regular');
    assert.deepEqual(grb.subjects, [{ kind: 'User', apiGroup: IAM, name: 'alice' }]);
    assert.deepEqual(grb.roleRef, { apiGroup: IAM, kind: 'GlobalRole', name: 'platform-regular' });
    assert.deepEqual(grb.metadata.labels, {
      'iam.kubesphere.io/user-ref': 'alice',
      'iam.kubesphere.io/role-ref': 'platform-regular',
    });
    assert.deepEqual(grb.metadata.finalizers, ['finalizers.kubesphere.io/globalrolebindings']);
    // Group AND User: the Group subject is kept (groupSubjects: migrate), user-ref = the user.
    const mixed = await h.kube.get(v4.GlobalRoleBindingResource, 'bob-team-platform-regular');
    assert.deepEqual(mixed.subjects, [
      { kind: 'Group', apiGroup: IAM, name: 'demo-team' },
      { kind: 'User', apiGroup: IAM, name: 'bob' },
    ]);
    assert.equal(mixed.metadata.labels?.['iam.kubesphere.io/user-ref'], 'bob');
    assert.equal(mixed.metadata.annotations?.['kubesphere.io/creator'], 'admin');
    // admin was labelled by prepare-upgrade, so it is converted too.
    const admin = await h.kube.get(v4.GlobalRoleBindingResource, 'admin');
    assert.deepEqual(admin.roleRef, { apiGroup: IAM, kind: 'GlobalRole', name: 'platform-admin' });
    assert.equal(admin.metadata.labels?.['iam.kubesphere.io/role-ref'], 'platform-admin');
    // Without user-ref: outside the original's filter, not converted (only re-stored).
    const legacy = await h.kube.get(v4.GlobalRoleBindingResource, 'legacy-ci-binding');
    assert.deepEqual(legacy.subjects, [{ apiGroup: RBAC, kind: 'User', name: 'ci-bot' }]);
    assert.equal(legacy.metadata.labels, undefined);
    const anonymous = await h.kube.get(v4.GlobalRoleBindingResource, 'anonymous');
    assert.deepEqual(anonymous.roleRef, { apiGroup: RBAC, kind: 'GlobalRole', name: 'anonymous' });

    const wrb = await h.kube.get(v4.WorkspaceRoleBindingResource, 'alice-demo-ws-admin');
    assert.deepEqual(wrb.subjects, [{ kind: 'User', apiGroup: IAM, name: 'alice' }]);
    assert.deepEqual(wrb.roleRef, { apiGroup: IAM, kind: 'WorkspaceRole', name: 'demo-ws-admin' });
    assert.deepEqual(wrb.metadata.labels, {
      'iam.kubesphere.io/user-ref': 'alice',
      'kubesphere.io/workspace': 'demo-ws',
      'iam.kubesphere.io/role-ref': 'demo-ws-admin',
    });
    assert.deepEqual(wrb.metadata.finalizers, ['finalizers.kubesphere.io/workspacerolebindings']);
    // Group-only: the department keeps its access; no user-ref/role-ref (no User subject).
    const dept = await h.kube.get(v4.WorkspaceRoleBindingResource, 'demo-team-demo-ws-viewer');
    assert.deepEqual(dept.subjects, [{ kind: 'Group', apiGroup: IAM, name: 'demo-team' }]);
    assert.deepEqual(dept.roleRef, { apiGroup: IAM, kind: 'WorkspaceRole', name: 'demo-ws-viewer' });
    assert.deepEqual(dept.metadata.labels, {
      'iam.kubesphere.io/group-ref': 'demo-team',
      'kubesphere.io/workspace': 'demo-ws',
    });

    const deployerWs = await h.kube.get(v4.WorkspaceRoleResource, 'demo-ws-deployer');
    assert.deepEqual(deployerWs.rules, [
      { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'create'] },
    ]);
  });

  it('pre-upgrade: rbac Role / RoleBinding / ClusterRoleBinding → iam.kubesphere.io/v1beta1', async () => {
    const role = (await h.kube.get(v4.RoleResource, 'deployer', PROJECT)) as AnyObj;
    assert.deepEqual(role.metadata.labels, { 'kubesphere.io/team': 'demo' });
    assert.deepEqual(role.metadata.annotations, {
      'kubesphere.io/creator': 'alice',
      'kubesphere.io/alias-name': 'Deployer',
    });
    assert.deepEqual(role.rules, [
      {
        apiGroups: ['apps'],
        resources: ['deployments', 'replicasets'],
        verbs: ['get', 'list', 'create', 'update'],
      },
    ]);
    assert.equal(role.metadata.finalizers, undefined);
    assert.deepEqual(
      names(await h.kube.listAll(v4.RoleResource, { namespace: PROJECT })),
      ['deployer'],
      'built-ins are not converted',
    );

    const rb = await h.kube.get(v4.RoleBindingResource, 'alice-admin', PROJECT);
    assert.deepEqual(rb.subjects, [{ kind: 'User', apiGroup: IAM, name: 'alice' }]);
    assert.deepEqual(rb.roleRef, { apiGroup: IAM, kind: 'Role', name: 'admin' });
    assert.deepEqual(rb.metadata.labels, {
      'iam.kubesphere.io/user-ref': 'alice',
      'iam.kubesphere.io/role-ref': 'admin',
    });
    assert.deepEqual(
      (await h.kube.get(v4.RoleBindingResource, 'bob-deployer', PROJECT)).metadata.annotations,
      {
        'kubesphere.io/creator': 'alice',
      },
    );
    const dept = await h.kube.get(v4.RoleBindingResource, 'demo-team-viewer', PROJECT);
    assert.deepEqual(dept.subjects, [{ kind: 'Group', apiGroup: IAM, name: 'demo-team' }]);
    assert.deepEqual(dept.metadata.labels, {
      'iam.kubesphere.io/group-ref': 'demo-team',
      'iam.kubesphere.io/role-ref': 'viewer',
    });
    assert.equal(await h.kube.tryGet(v4.RoleBindingResource, 'app-reader-binding', PROJECT), undefined);

    const crb = await h.kube.get(v4.ClusterRoleBindingResource, 'alice-cluster-viewer');
    assert.deepEqual(crb.subjects, [{ kind: 'User', apiGroup: IAM, name: 'alice' }]);
    assert.deepEqual(crb.roleRef, { apiGroup: IAM, kind: 'ClusterRole', name: 'cluster-viewer' });
    assert.deepEqual(crb.metadata.labels, {
      'iam.kubesphere.io/user-ref': 'alice',
      'iam.kubesphere.io/role-ref': 'cluster-viewer',
    });
  });

  it('pre-upgrade: workspaces and templates (placement names only, overrides dropped)', async () => {
    const ws = (await h.kube.get(v4.WorkspaceResource, 'demo-ws')) as AnyObj;
    assert.deepEqual(ws.spec, { manager: 'alice' });
    assert.deepEqual(ws.status, {});
    assert.deepEqual(ws.metadata.labels, { 'kubefed.io/managed': 'false' });
    const wst = (await h.kube.get(v4.WorkspaceTemplateResource, 'demo-ws')) as AnyObj;
    // v3's template metadata is `type: object` without properties: the v3 API server keeps nothing
    // in it, so there is nothing to carry over.
    assert.deepEqual(wst.spec, {
      template: { metadata: {}, spec: { manager: 'alice' } },
      placement: { clusters: [{ name: 'host' }, { name: 'member1' }] },
    });
    assert.deepEqual(wst.metadata.annotations, { 'kubesphere.io/creator': 'alice' });
    const sys = (await h.kube.get(v4.WorkspaceTemplateResource, 'system-workspace')) as AnyObj;
    assert.deepEqual((sys.spec as AnyObj).placement, { clusterSelector: {} });
    assert.equal(sys.metadata.annotations?.['meta.helm.sh/release-name'], 'ks-core', 'prepare metadata kept');
    const dev = (await h.kube.get(v4.WorkspaceTemplateResource, 'dev-ws')) as AnyObj;
    assert.deepEqual(dev.spec, { template: { metadata: {}, spec: {} }, placement: {} });
  });

  it('pre-upgrade: storedVersions, role templates, legacy roles, kubefed, identity providers', async () => {
    for (const crd of [
      'users.iam.kubesphere.io',
      'globalroles.iam.kubesphere.io',
      'globalrolebindings.iam.kubesphere.io',
      'workspaceroles.iam.kubesphere.io',
      'workspacerolebindings.iam.kubesphere.io',
      'loginrecords.iam.kubesphere.io',
      'groups.iam.kubesphere.io',
      'groupbindings.iam.kubesphere.io',
      'workspaces.tenant.kubesphere.io',
      'workspacetemplates.tenant.kubesphere.io',
    ]) {
      assert.deepEqual(await storedVersions(h.kube, crd), ['v1beta1'], crd);
    }
    assert.deepEqual(await storedVersions(h.kube, 'rolebases.iam.kubesphere.io'), ['v1alpha2']);
    const backup = await loadUnion<{ crd: string; storedVersions: string[] }>(
      h.scoped,
      IAM_STORE_KEYS.storedVersions,
    );
    assert.equal(backup.length, 10);
    for (const b of backup) {
      // The v3 storage version: v1alpha1 for workspaces, v1alpha2 for the rest.
      const v3Storage = b.crd === 'workspaces.tenant.kubesphere.io' ? 'v1alpha1' : 'v1alpha2';
      assert.deepEqual(b.storedVersions, [v3Storage, 'v1beta1'], b.crd);
    }

    // Role templates of all four kinds are gone; the rest stays.
    assert.equal(await h.kube.tryGet(v3.GlobalRoleResource, 'role-template-view-users'), undefined);
    assert.equal(await h.kube.tryGet(v3.WorkspaceRoleResource, 'role-template-view-projects'), undefined);
    assert.equal(await h.kube.tryGet(RbacClusterRoleResource, 'role-template-view-nodes'), undefined);
    assert.ok(await h.kube.tryGet(RbacClusterRoleResource, 'cluster-viewer'));
    // Every rbac Role with a creator (built-ins included) is gone; app-reader stays.
    assert.deepEqual(names(await h.kube.listAll(RbacRoleResource, { namespace: PROJECT })), ['app-reader']);
    const legacy = await loadUnion<KubeObject>(h.scoped, IAM_STORE_KEYS.legacyRoles);
    assert.deepEqual(names(legacy), ['admin', 'deployer', 'operator', 'viewer']);
    const templates = await loadUnion<KubeObject>(h.scoped, IAM_STORE_KEYS.roleTemplates);
    assert.deepEqual(templates.map((t) => `${t.kind ?? ''} ${t.metadata.name ?? ''}`).sort(), [
      'ClusterRole role-template-view-nodes',
      'GlobalRole role-template-view-users',
      'Role role-template-view-pods',
      'WorkspaceRole role-template-view-projects',
    ]);

    // kubefed: controller stopped, IAM type configs and the federated CRD gone, namespaces kept.
    assert.equal(
      (await h.kube.get(DeploymentResource, 'kubefed-controller-manager', KUBEFED_NS)).spec?.replicas,
      0,
    );
    await assertOnlyNonIamFtcsLeft(h.kube);
    assert.equal(
      await h.kube.tryGet(CustomResourceDefinitionResource, 'federatedusers.types.kubefed.io'),
      undefined,
    );
    const fed = await h.scoped.load<{ items: KubeObject[] }>(
      IAM_STORE_KEYS.kubefedCrd('federatedusers.types.kubefed.io'),
    );
    assert.deepEqual(names(fed.items), ['alice', 'bob']);

    // Identity providers → one Secret each.
    for (const [name, idp] of [
      ['github', { name: 'GitHub', mappingMethod: 'auto', type: 'GitHubIdentityProvider' }],
      ['corp-ldap', { name: 'corp-LDAP', mappingMethod: 'lookup', type: 'LDAPIdentityProvider' }],
    ] as const) {
      const s = await h.kube.get(SecretResource, `kubesphere-identityprovider.${name}`, NS);
      assert.equal(s.type, 'config.kubesphere.io/identityprovider');
      assert.deepEqual(s.metadata.labels, { 'config.kubesphere.io/type': 'identityprovider' });
      assert.deepEqual(Object.keys(s.data ?? {}), ['configuration.yaml']);
      const conf = yaml.load(
        Buffer.from(s.data?.['configuration.yaml'] ?? '', 'base64').toString('utf8'),
      ) as AnyObj;
      assert.deepEqual(
        Object.keys(conf),
        ['mappingMethod', 'name', 'provider', 'type'],
        'keys sorted as the original',
      );
      assert.equal(conf.name, idp.name);
      assert.equal(conf.mappingMethod, idp.mappingMethod);
      assert.equal(conf.type, idp.type);
      assert.ok(conf.provider && typeof conf.provider === 'object');
    }
    const github = await h.kube.get(SecretResource, 'kubesphere-identityprovider.github', NS);
    const conf = yaml.load(
      Buffer.from(github.data?.['configuration.yaml'] ?? '', 'base64').toString('utf8'),
    ) as AnyObj;
    assert.deepEqual(conf.provider, {
      clientID: 'fixture-client-id',
      clientSecret: 'fixture-client-secret-do-not-leak',
      redirectURL: 'https://console.example.internal/oauth/redirect/github',
    });
    await assertNoSecretLeaked(h);
  });

  it('pre-upgrade twice: skipped by its marker; without the marker no resourceVersion changes and no backup rewritten', async () => {
    const rvs = await resourceVersions(h.kube);
    const stored = await storeContents(h.scoped);
    assert.equal(await h.run('pre-upgrade'), 'succeeded');
    assert.deepEqual(await resourceVersions(h.kube), rvs);
    assert.deepEqual(await storeContents(h.scoped), stored, 'a skipped phase appends no snapshot');
    assert.ok(h.logger.entries.some((e) => e.message === 'iam has been upgraded successfully, skip job'));

    // Without the marker (a crash right before it was written) the re-run is a retry of the same
    // attempt: it keeps the attempt's snapshot instead of appending a second one.
    await h.scoped.delete('iam-upgrade-status-pre-upgrade');
    const backups = await backupFingerprints(h.scoped);
    const writes: string[] = [];
    const watched = intercepted(
      h.kube,
      () => undefined,
      (req, res) => {
        // Applied creates and deletes; a create refused as AlreadyExists (409) changes nothing.
        if ((req.method === 'POST' || req.method === 'DELETE') && res.status < 300)
          writes.push(`${req.method} ${req.path} ${res.status}`);
      },
    );
    assert.equal(await h.run('pre-upgrade', watched), 'succeeded');
    assert.deepEqual(await resourceVersions(h.kube), rvs, 'every write of the re-run was a no-op');
    // The role templates the first run deleted stay deleted: not re-created only to be deleted again.
    assert.deepEqual(
      writes.filter((w) => !w.includes('/selfsubjectaccessreviews')),
      [],
      'the re-run creates and deletes nothing',
    );
    await assertBackupsUnchanged(h.scoped, backups, 'the re-run without the marker');
    const entries = await snapshotEntries(h.scoped, 'users.iam.kubesphere.io');
    assert.equal(entries.length, 1, 'one snapshot per attempt');
    // One-shot backups keep the first attempt's state.
    assert.equal((await loadUnion<KubeObject>(h.scoped, IAM_STORE_KEYS.legacyRoles)).length, 4);
    assert.equal((await loadUnion<unknown>(h.scoped, IAM_STORE_KEYS.storedVersions)).length, 10);
  });

  it('post-upgrade: custom roles emptied (backed up, logged), globalrole annotation, rolebases CRD deleted', async () => {
    h.logger.entries.length = 0;
    assert.equal(await h.run('post-upgrade'), 'succeeded');
    await assertStatus(h.scoped, 'post-upgrade');
    assert.deepEqual((await h.kube.get(v4.GlobalRoleResource, 'custom-auditor')).rules, []);
    assert.deepEqual((await h.kube.get(v4.WorkspaceRoleResource, 'demo-ws-deployer')).rules, []);
    assert.deepEqual((await h.kube.get(v4.RoleResource, 'deployer', PROJECT)).rules, []);
    // Built-ins keep their rules.
    assert.deepEqual((await h.kube.get(v4.GlobalRoleResource, 'platform-admin')).rules?.length, 2);
    assert.deepEqual((await h.kube.get(v4.GlobalRoleResource, 'ks-console')).rules?.length, 1);
    assert.equal((await h.kube.get(v4.WorkspaceRoleResource, 'demo-ws-viewer')).rules?.length, 1);
    const saved = await loadUnion<KubeObject & { rules?: unknown[] }>(h.scoped, IAM_STORE_KEYS.customRoles);
    assert.deepEqual(
      saved.map((r) => `${r.kind ?? ''} ${r.metadata.name ?? ''} ${r.rules?.length ?? 0}`).sort(),
      ['GlobalRole custom-auditor 1', 'Role deployer 1', 'WorkspaceRole demo-ws-deployer 1'],
    );
    const warnings = h.logger.entries.filter((e) => e.level === 'warn').map((e) => e.message);
    for (const n of ['custom-auditor', 'demo-ws-deployer', 'demo-project/deployer']) {
      assert.ok(
        warnings.some((w) => w.includes(n) && w.includes('rules emptied')),
        `no warning for ${n}`,
      );
    }
    assert.ok(
      warnings.some((w) => w.includes('role-template-view-users')),
      'the v3 templates are named',
    );

    const annotation = async (u: string): Promise<string | undefined> =>
      (await h.kube.get(v4.UserResource, u)).metadata.annotations?.['iam.kubesphere.io/globalrole'];
    assert.equal(await annotation('admin'), 'platform-admin');
    assert.equal(await annotation('alice'), 'platform-regular');
    assert.equal(await annotation('bob'), 'platform-regular');
    assert.equal(await annotation('dave'), 'custom-auditor');

    assert.equal(
      await h.kube.tryGet(CustomResourceDefinitionResource, 'rolebases.iam.kubesphere.io'),
      undefined,
    );
    const bases = await h.scoped.load<{ items: KubeObject[] }>(IAM_STORE_KEYS.roleBases);
    assert.deepEqual(names(bases.items), ['global-role-base-platform-regular', 'workspace-role-base-viewer']);
    await assertNoSecretLeaked(h);
  });

  it('post-upgrade twice: nothing changes', async () => {
    const rvs = await resourceVersions(h.kube);
    assert.equal(await h.run('post-upgrade'), 'succeeded');
    await h.scoped.delete('iam-upgrade-status-post-upgrade');
    assert.equal(await h.run('post-upgrade'), 'succeeded');
    assert.deepEqual(await resourceVersions(h.kube), rvs);
  });
});

/** The IAM FederatedTypeConfigs are gone; `namespaces` (not IAM) is still there. */
async function assertOnlyNonIamFtcsLeft(kube: ResourceClient): Promise<void> {
  const left = names(await kube.listAll(v3.FederatedTypeConfigResource, { namespace: KUBEFED_NS }));
  assert.ok(left.includes('namespaces'), left.join(', '));
  assert.deepEqual(
    left.filter((n) => IAM_FTCS.includes(n)),
    [],
  );
}

/** The v3 objects rollback must bring back, as the fixture installed them (server fields dropped). */
async function v3State(kube: ResourceClient): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const types: { rt: ResourceType; namespace?: string }[] = [
    { rt: v3.UserResource },
    { rt: v3.GlobalRoleResource },
    { rt: v3.GlobalRoleBindingResource },
    { rt: v3.WorkspaceRoleResource },
    { rt: v3.WorkspaceRoleBindingResource },
    { rt: v3.LoginRecordResource },
    { rt: v3.GroupResource },
    { rt: v3.GroupBindingResource },
    { rt: v3.WorkspaceResource },
    { rt: v3.WorkspaceTemplateResource },
    { rt: v3.RoleBaseResource },
    { rt: v3.FederatedUserResource },
    { rt: v3.FederatedTypeConfigResource, namespace: KUBEFED_NS },
    { rt: RbacRoleResource, namespace: PROJECT },
    { rt: RbacClusterRoleResource },
    { rt: ConfigMapResource, namespace: NS },
  ];
  for (const { rt, namespace } of types) {
    for (const o of await kube.listIfServed(rt, namespace ? { namespace } : {})) {
      if (
        rt === RbacClusterRoleResource &&
        !['cluster-viewer', 'role-template-view-nodes'].includes(o.metadata.name ?? '')
      )
        continue;
      const {
        resourceVersion: _rv,
        uid: _uid,
        creationTimestamp: _ct,
        managedFields: _mf,
        generation: _g,
        ...metadata
      } = o.metadata;
      // Workspace networkIsolation excepted: v4's storage version cannot hold it (see the helper).
      out[`${rt.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`] = withoutFieldsV4CannotStore({
        ...o,
        metadata,
      });
    }
  }
  return out;
}

describe('iam job: crashes between backup and action, then rollback', () => {
  let h: Harness;
  let original: Record<string, unknown>;
  let originalManifest: string;
  let originalCrds: string[];
  let iamFtcsAtStart: string[];
  before(async () => {
    h = await setUp('iam-crash');
    original = await v3State(h.kube);
    originalCrds = names(await h.kube.listAll(CustomResourceDefinitionResource));
    iamFtcsAtStart = names(
      (await h.kube.listAll(v3.FederatedTypeConfigResource, { namespace: KUBEFED_NS })).filter((f) =>
        IAM_FTCS.includes(f.metadata.name ?? ''),
      ),
    );
    originalManifest = decodeRelease(await h.kube.get(SecretResource, RELEASE_SECRET, NS)).manifest;
  });
  after(() => h.cluster.remove());

  /**
   * Runs `phase` crashing at `pattern`: the run fails, the crash point was reached. Every backup
   * an earlier run wrote is still byte-identical to its first write: a retry never appends to or
   * rewrites a backup (only the phase markers may come and go).
   */
  async function crashAt(phase: Phase, pattern: RegExp, nth = 1): Promise<void> {
    const before = await backupFingerprints(h.scoped);
    const { client, crashed } = crashingOn(h.kube, pattern, nth);
    await assert.rejects(h.run(phase, client), JobPhaseError, `the ${phase} run should crash at ${pattern}`);
    assert.ok(crashed(), `the run reached ${pattern}`);
    await assertBackupsUnchanged(h.scoped, before, `${phase} crashing at ${pattern}`);
  }

  /** A successful retry after crashes: it too leaves every earlier backup as it was. */
  async function retry(phase: Phase): Promise<void> {
    const before = await backupFingerprints(h.scoped);
    assert.equal(await h.run(phase), 'succeeded');
    await assertBackupsUnchanged(h.scoped, before, `the ${phase} retry`);
  }

  it('prepare-upgrade: a crash after each backup still does the action on retry', async () => {
    await crashAt(
      'prepare-upgrade',
      /^PUT \/api\/v1\/namespaces\/kubesphere-system\/configmaps\/kubesphere-config$/,
    );
    assert.ok(await h.scoped.exists(IAM_STORE_KEYS.helmAdoption), 'backed up before the crash');
    // GlobalRoleBinding admin is written twice: adoption metadata (step 1), then its label (step 2).
    // The crash is at the second write (step 2): step 1 of this run labelled it for helm.
    await crashAt(
      'prepare-upgrade',
      /^PUT \/apis\/iam.kubesphere.io\/v1alpha2\/globalrolebindings\/admin$/,
      2,
    );
    assert.ok(await h.scoped.exists(IAM_STORE_KEYS.adminBinding));
    assert.equal(
      (await h.kube.get(v3.GlobalRoleBindingResource, 'admin')).metadata.labels?.[
        'iam.kubesphere.io/user-ref'
      ],
      undefined,
    );
    await crashAt(
      'prepare-upgrade',
      /^PUT \/api\/v1\/namespaces\/kubesphere-system\/secrets\/sh\.helm\.release/,
    );
    assert.ok(await h.scoped.exists(IAM_STORE_KEYS.releaseSecret(RELEASE_SECRET)));
    assert.equal(
      decodeRelease(await h.kube.get(SecretResource, RELEASE_SECRET, NS)).manifest,
      originalManifest,
    );

    await retry('prepare-upgrade');
    const cm = await h.kube.get(ConfigMapResource, 'kubesphere-config', NS);
    assert.equal(cm.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm');
    assert.ok(
      decodeRelease(await h.kube.get(SecretResource, RELEASE_SECRET, NS)).manifest.length >
        originalManifest.length,
    );
    // The backups hold the state before the first attempt, not the one a retry saw.
    const adoption = await loadUnion<{ kind: string; name: string; labels: Record<string, string | null> }>(
      h.scoped,
      IAM_STORE_KEYS.helmAdoption,
    );
    assert.deepEqual(adoption.find((a) => a.kind === 'ConfigMap')?.labels, {
      'app.kubernetes.io/managed-by': null,
    });
    assert.equal(
      (await h.scoped.load<{ manifest: string }>(IAM_STORE_KEYS.releaseSecret(RELEASE_SECRET))).manifest,
      originalManifest,
    );
  });

  it('pre-upgrade: a crash after each backup (snapshot included) still does the action on retry', async () => {
    const points = [
      /^PUT \/apis\/iam.kubesphere.io\/v1beta1\/users\/alice$/, // after the snapshot, in the migration
      /^DELETE \/apis\/rbac.authorization.k8s.io\/v1\/clusterroles\/role-template-view-nodes$/,
      /^DELETE \/apis\/rbac.authorization.k8s.io\/v1\/namespaces\/demo-project\/roles\/admin$/,
      /^DELETE \/apis\/core.kubefed.io\/v1beta1\/namespaces\/kube-federation-system\/federatedtypeconfigs\/users/,
      /^DELETE \/apis\/types.kubefed.io\/v1beta1\/federatedusers\/alice$/,
      /^POST \/api\/v1\/namespaces\/kubesphere-system\/secrets$/,
    ];
    for (const p of points) await crashAt('pre-upgrade', p);
    await retry('pre-upgrade');
    // Every action happened.
    assert.equal(await h.kube.tryGet(RbacClusterRoleResource, 'role-template-view-nodes'), undefined);
    assert.deepEqual(names(await h.kube.listAll(RbacRoleResource, { namespace: PROJECT })), ['app-reader']);
    await assertOnlyNonIamFtcsLeft(h.kube);
    assert.equal(
      await h.kube.tryGet(CustomResourceDefinitionResource, 'federatedusers.types.kubefed.io'),
      undefined,
    );
    assert.ok(await h.kube.tryGet(SecretResource, 'kubesphere-identityprovider.github', NS));
    assert.deepEqual(
      (await h.kube.get(v4.GlobalRoleBindingResource, 'alice-platform-regular')).roleRef.apiGroup,
      IAM,
    );
    // The backups still hold everything as it was before the first attempt.
    assert.deepEqual(names(await loadUnion<KubeObject>(h.scoped, IAM_STORE_KEYS.legacyRoles)), [
      'admin',
      'deployer',
      'operator',
      'viewer',
    ]);
    assert.equal((await loadUnion<KubeObject>(h.scoped, IAM_STORE_KEYS.roleTemplates)).length, 4);
    assert.deepEqual(
      names(await loadUnion<KubeObject>(h.scoped, IAM_STORE_KEYS.kubefedTypeConfigs)),
      iamFtcsAtStart,
    );
    const fed = await h.scoped.load<{ items: KubeObject[] }>(
      IAM_STORE_KEYS.kubefedCrd('federatedusers.types.kubefed.io'),
    );
    assert.deepEqual(names(fed.items), ['alice', 'bob']);
    assert.deepEqual(
      (await loadUnion<{ name: string; existed: boolean }>(h.scoped, IAM_STORE_KEYS.identityProviders)).map(
        (b) => [b.name, b.existed],
      ),
      [
        ['kubesphere-identityprovider.github', false],
        ['kubesphere-identityprovider.corp-ldap', false],
      ],
    );
    // One snapshot for the whole attempt, however many runs it took: the untouched v3 state.
    const entries = await snapshotEntries(h.scoped, 'globalrolebindings.iam.kubesphere.io');
    assert.equal(entries.length, 1);
    const oldest = decodeList(entries[0] as Entry).items.find(
      (b) => b.metadata.name === 'alice-platform-regular',
    );
    assert.equal((oldest?.roleRef as { apiGroup: string }).apiGroup, RBAC);
  });

  it('rollback after prepare + pre: the v3 IAM objects are back', async () => {
    assert.equal(await h.run('rollback'), 'succeeded');
    const now = await v3State(h.kube);
    assert.deepEqual(Object.keys(now).sort(), Object.keys(original).sort(), 'the same objects exist');
    assert.deepEqual(
      names(await h.kube.listAll(CustomResourceDefinitionResource)),
      originalCrds,
      'the same CRDs',
    );
    for (const [id, obj] of Object.entries(original)) assert.deepEqual(now[id], obj, id);

    // What v3 never had is gone: migrated iam Roles/bindings, identity-provider Secrets.
    assert.deepEqual(await h.kube.listAll(v4.RoleResource), []);
    assert.deepEqual(await h.kube.listAll(v4.RoleBindingResource), []);
    assert.deepEqual(await h.kube.listAll(v4.ClusterRoleBindingResource), []);
    assert.equal(await h.kube.tryGet(SecretResource, 'kubesphere-identityprovider.github', NS), undefined);
    assert.equal(
      (await h.kube.get(DeploymentResource, 'kubefed-controller-manager', KUBEFED_NS)).spec?.replicas,
      2,
    );
    assert.equal(
      decodeRelease(await h.kube.get(SecretResource, RELEASE_SECRET, NS)).manifest,
      originalManifest,
    );
    assert.deepEqual(await storedVersions(h.kube, 'users.iam.kubesphere.io'), ['v1alpha2', 'v1beta1']);
    // Safe to run again: the same state, from the same backups.
    assert.equal(await h.run('rollback'), 'succeeded', 'rollback again');
    assert.deepEqual(await v3State(h.kube), now, 'a second rollback changes nothing');
    // Then the upgrade moves the attempt aside (every job alike): snapshots, backups and markers.
    const attempt = abortedAttemptName(new Date(), 'iamtest1');
    const { moved } = await h.store.moveAttemptAside('host', ['iam'], attempt);
    assert.deepEqual(await h.scoped.list(), [], 'the next attempt starts from an empty scope');
    assert.ok(moved.includes('host/iam/iam-users.iam.kubesphere.io'), moved.join(', '));
    assert.ok(moved.includes('host/iam/iam-upgrade-status-prepare-upgrade'), 'the markers go too');
    assert.equal(await h.run('rollback'), 'succeeded', 'rollback without backups is a no-op');
    assert.deepEqual(await v3State(h.kube), now);
  });

  it('a second attempt after rollback starts afresh and completes; rollback after post restores rules and annotations', async () => {
    for (const phase of ['prepare-upgrade', 'pre-upgrade', 'post-upgrade'] as const) {
      assert.equal(await h.run(phase), 'succeeded', phase);
    }
    assert.equal(
      (await snapshotEntries(h.scoped, 'users.iam.kubesphere.io')).length,
      1,
      'a fresh snapshot history',
    );
    assert.deepEqual((await h.kube.get(v4.GlobalRoleResource, 'custom-auditor')).rules, []);
    assert.equal(await h.run('rollback'), 'succeeded');
    const now = await v3State(h.kube);
    for (const [id, obj] of Object.entries(original)) assert.deepEqual(now[id], obj, id);
    assert.equal(
      (await h.kube.get(v3.UserResource, 'alice')).metadata.annotations?.['iam.kubesphere.io/globalrole'],
      undefined,
    );
    assert.ok(await h.kube.tryGet(CustomResourceDefinitionResource, 'rolebases.iam.kubesphere.io'));
    await assertNoSecretLeaked(h);
  });
});

describe("iam job: concurrent writer, groupSubjects: drop, the Go tool's store", () => {
  let h: Harness;
  before(async () => {
    h = await setUp('iam-conc', { groupSubjects: 'drop', concurrency: 1 });
  });
  after(() => h.cluster.remove());

  it('an upgrade whose prepare-upgrade the Go tool ran: its marker and snapshots are honoured', async () => {
    // What the Go tool leaves: a plain JSON marker and a snapshot array (SaveRaw, no content type).
    await h.scoped.saveRaw(
      'iam-upgrade-status-prepare-upgrade',
      '{"status":"success","time":"2025-04-23T08:00:00.123456789+08:00"}',
    );
    const goList = { kind: 'UserList', apiVersion: 'iam.kubesphere.io/v1alpha2', metadata: {}, items: [] };
    const goEntry = {
      list: Buffer.from(JSON.stringify(goList)).toString('base64'),
      timestamp: 1_700_000_000,
    };
    await h.scoped.saveRaw('iam-users.iam.kubesphere.io', JSON.stringify([goEntry]), { sensitive: true });
    const rvs = await resourceVersions(h.kube);
    assert.equal(await h.run('prepare-upgrade'), 'succeeded');
    assert.deepEqual(await resourceVersions(h.kube), rvs, 'prepare-upgrade was skipped');
  });

  it('an object changed between snapshot and migration is still migrated (no 409 failure)', async () => {
    let conflicts = 0;
    const done = new Set<string>();
    const client = intercepted(
      h.kube,
      async (req) => {
        // Right before the job writes alice (and her binding), someone else writes them first.
        if (req.method !== 'PUT' || done.has(req.path)) return;
        if (req.path === '/apis/iam.kubesphere.io/v1beta1/users/alice') {
          done.add(req.path);
          await h.kube.patch(v3.UserResource, 'alice', undefined, {
            metadata: { labels: { 'edited-by': 'admin-console' } },
            spec: { displayName: 'Alice L.' },
          });
        }
        if (req.path === '/apis/iam.kubesphere.io/v1beta1/globalrolebindings/alice-platform-regular') {
          done.add(req.path);
          await h.kube.patch(
            v3.GlobalRoleBindingResource,
            'alice-platform-regular',
            undefined,
            [{ op: 'add', path: '/subjects/-', value: { apiGroup: RBAC, kind: 'User', name: 'alice-bot' } }],
            'json',
          );
        }
      },
      (_req, res) => {
        if (res.status === 409) conflicts++;
      },
    );
    assert.equal(await h.run('pre-upgrade', client), 'succeeded');
    assert.ok(conflicts >= 2, `the job met the concurrent writes (${conflicts} conflicts) and retried`);
    const alice = await h.kube.get(v4.UserResource, 'alice');
    assert.equal(alice.spec?.displayName, 'Alice L.', 'the concurrent change is kept');
    assert.equal(alice.metadata.labels?.['edited-by'], 'admin-console');
    assert.equal(alice.spec.email, 'alice@example.com');
    const grb = await h.kube.get(v4.GlobalRoleBindingResource, 'alice-platform-regular');
    assert.deepEqual(grb.subjects, [
      { kind: 'User', apiGroup: IAM, name: 'alice' },
      { kind: 'User', apiGroup: IAM, name: 'alice-bot' },
    ]);
    assert.equal(
      grb.metadata.labels?.['iam.kubesphere.io/user-ref'],
      'alice-bot',
      'the last User subject, as the original',
    );
    // The Go tool's snapshot is kept; ours is appended after it and is the one used.
    const entries = await snapshotEntries(h.scoped, 'users.iam.kubesphere.io');
    assert.equal(entries.length, 2);
    assert.equal(entries[0]?.timestamp, 1_700_000_000);
    assert.equal(decodeList(entries[1] as Entry).items.length, 5);
  });

  it('groupSubjects: drop keeps the original behaviour: Group subjects dropped, department bindings not migrated', async () => {
    const mixed = await h.kube.get(v4.GlobalRoleBindingResource, 'bob-team-platform-regular');
    assert.deepEqual(mixed.subjects, [{ kind: 'User', apiGroup: IAM, name: 'bob' }]);
    const dept = await h.kube.get(v4.WorkspaceRoleBindingResource, 'demo-team-demo-ws-viewer');
    assert.deepEqual(dept.subjects, []);
    assert.equal(await h.kube.tryGet(v4.RoleBindingResource, 'demo-team-viewer', PROJECT), undefined);
    const rbs = decodeList(
      (await snapshotEntries(h.scoped, 'rolebindings.rbac.authorization.kubernetes.io'))[0] as Entry,
    );
    assert.deepEqual(names(rbs.items), ['alice-admin', 'bob-deployer'], "the original's filter");
  });

  it('customRoleRules: keep leaves the rules and still logs and backs up each custom role', async () => {
    const registry = new JobRegistry();
    registry.register(iamJobFactory);
    const [keep] = instantiateJobs(iamConfig({ customRoleRules: 'keep' }), registry);
    assert.ok(keep);
    const logger = createMemoryLogger();
    await runJobPhase(
      keep.job,
      createJobContext({
        job: 'iam',
        phase: 'post-upgrade',
        cluster: { name: 'host' },
        kube: h.kube,
        store: h.store,
        config: keep.config,
        logger,
      }),
    );
    assert.equal((await h.kube.get(v4.GlobalRoleResource, 'custom-auditor')).rules?.length, 1);
    assert.ok(logger.entries.some((e) => e.level === 'warn' && e.message.includes('keeps its v3 rules')));
    assert.equal((await loadUnion<unknown>(h.scoped, IAM_STORE_KEYS.customRoles)).length, 3);
  });
});
