// Taking over an upgrade the Go ks-upgrade started. Two identical host + member fleets (the v3
// fixture, every component on, every job enabled):
//   A — prepare-, pre- and post-upgrade on our own store;
//   B — prepare- and pre-upgrade, then the store the Go tool would have left (test/helpers/
//       go-store.ts: its keys and formats, from what pre-upgrade backed up) is imported into a
//       fresh store, from a directory and from S3, and post-upgrade runs on the imported store.
// Post-upgrade on B must create the same v4 objects as on A. Then, on A, a Go store of a
// finished post-upgrade (done markers, iam status, the keys the Go tool writes in post) is
// imported: post-upgrade on it is a no-op for the cluster.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import { SecretResource } from '../../src/api/core.js';
import { loadConfig } from '../../src/config/index.js';
import type { UpgradeConfig } from '../../src/config/types.js';
import { LocalGoStore, S3GoStore, importGoStore, type ImportReport } from '../../src/gostore/index.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  registerBuiltinJobs,
  runPhase,
  type Phase,
} from '../../src/jobs/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { BUILTIN_CONFIG_PATH } from '../../src/upgrade/plan.js';
import { startStandInController } from '../fixtures/kubesphere-v4/controller.js';
import {
  startFleetStandIns,
  startV3AppStore,
  writeExtensionCharts,
} from '../fixtures/kubesphere-v4/extensions.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { devEnv, uniqueName } from '../helpers/env.js';
import {
  dirDigest,
  goStoreFromOurs,
  s3Digest,
  writeGoStoreDir,
  writeGoStoreS3,
  type GoStore,
} from '../helpers/go-store.js';
import { installFixtureFleet, playCoreUpgrade } from '../helpers/kubesphere.js';
import { listEveryObject } from '../helpers/snapshot.js';
import { purgeS3Prefix, devS3Config } from '../helpers/storage.js';

const CLUSTER = 'host';

interface Fleet {
  host: EphemeralCluster;
  member: EphemeralCluster;
  kube: ResourceClient;
  /** Stops the stand-ins for the v4 controllers (idempotent). */
  stopStandIns(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A host + member fleet with the v3 fixture, the v3 app store's Secret and the v4 stand-ins.
 * `createAppStore`: upload the app store's charts into `bucket` (one fleet does; both then read
 * the same chart bytes).
 */
async function startFleet(label: string, bucket: string, createAppStore: boolean): Promise<Fleet> {
  const [host, member] = await Promise.all([
    startEphemeralCluster(`${label}-host`),
    startEphemeralCluster(`${label}-member`),
  ]);
  await installFixtureFleet(
    { client: host.connection.client, kubeconfig: host.kubeconfig },
    { client: member.connection.client, kubeconfig: member.kubeconfig },
  );
  const kube = host.connection.client;
  if (createAppStore) {
    await startV3AppStore(kube, bucket);
  } else {
    const env = devEnv();
    await kube.apply(SecretResource, {
      metadata: { name: 'minio', namespace: 'kubesphere-system' },
      data: {
        accesskey: Buffer.from(env.s3AccessKeyId).toString('base64'),
        secretkey: Buffer.from(env.s3SecretAccessKey).toString('base64'),
      },
    });
  }
  const controller = startStandInController(kube, { intervalMs: 200 });
  const standIns = startFleetStandIns(kube, member.connection.client);
  let standInsStopped: Promise<void> | undefined;
  const stopStandIns = (): Promise<void> =>
    (standInsStopped ??= Promise.all([controller.stop(), standIns.stop()]).then(() => undefined));
  return {
    host,
    member,
    kube,
    stopStandIns,
    stop: async () => {
      await stopStandIns();
      await Promise.all([host.remove(), member.remove()]);
    },
  };
}

/** Runs phases of every enabled job in this process, as the workflow's activities would. */
async function runPhases(
  kube: ResourceClient,
  store: ResourceStore,
  config: UpgradeConfig,
  registry: JobRegistry,
  phases: Phase[],
): Promise<string[]> {
  const logger = createMemoryLogger();
  for (const phase of phases) {
    await runPhase(phase, instantiateJobs(config, registry), (j, p) =>
      createJobContext({
        job: j.name,
        phase: p,
        cluster: { name: CLUSTER },
        kube,
        store,
        config: j.config,
        logger,
      }),
    );
  }
  return logger.entries.map((e) => `${e.level}: ${e.message}`);
}

const TIME = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?( UTC)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * An object without what differs between two API servers for the same history: times, UIDs (also
 * in labels such as a Job's controller-uid), allocated IPs and ports, the order of conditions.
 */
function normalize(value: unknown, key = ''): unknown {
  if (typeof value === 'string') return TIME.test(value) ? '<time>' : UUID.test(value) ? '<uid>' : value;
  if (Array.isArray(value)) {
    const items = value.map((v) => normalize(v));
    return key === 'conditions'
      ? items.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1))
      : items;
  }
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (
      ['uid', 'resourceVersion', 'creationTimestamp', 'generation', 'managedFields', 'selfLink'].includes(k)
    )
      continue;
    // Allocated by each API server.
    if (['clusterIP', 'clusterIPs', 'nodePort'].includes(k)) continue;
    out[k] = normalize(v, k);
  }
  return out;
}

interface TakeoverObject {
  kind?: string;
  type?: string;
  metadata: { name: string; namespace?: string };
  spec?: { connection?: { kubeconfig?: unknown } };
  binaryData?: Record<string, string>;
}

/**
 * Every object of the cluster, normalized (`withVersions`: prefixed with its resourceVersion), by `<group-version>/<resource> <ns>/<name>`, except what
 * the API server or the test harness makes differently on each server: leases and events, service
 * account tokens, the root CA ConfigMaps, the member kubeconfig in Cluster objects (another
 * server address) and the chart archives the test's "helm upgrade" writes (tar timestamps).
 */
async function clusterState(kube: ResourceClient, withVersions = false): Promise<Map<string, string>> {
  // Leases and events move on their own; endpoints and IP addresses follow the API server's own
  // address and the cluster IPs it allocates.
  const skip = new Set(['leases', 'events', 'endpoints', 'endpointslices', 'ipaddresses']);
  const out = new Map<string, string>();
  for (const { base, resource, object } of await listEveryObject(kube, skip)) {
    const o = object as unknown as TakeoverObject;
    if (o.type === 'kubernetes.io/service-account-token' || o.metadata.name === 'kube-root-ca.crt') continue;
    // The API server's own Service (its port).
    if (resource === 'services' && o.metadata.namespace === 'default' && o.metadata.name === 'kubernetes')
      continue;
    const copy = structuredClone(o);
    if (copy.spec?.connection?.kubeconfig !== undefined) copy.spec.connection.kubeconfig = '<kubeconfig>';
    if (/^extension-.*-chart$/.test(copy.metadata.name) && copy.binaryData) copy.binaryData = {};
    const version = withVersions
      ? `${(o.metadata as { resourceVersion?: string }).resourceVersion ?? ''} `
      : '';
    out.set(
      `${base}/${resource} ${o.metadata.namespace ?? ''}/${o.metadata.name}`,
      version + JSON.stringify(normalize(copy)),
    );
  }
  return out;
}

function differences(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) {
    if (!b.has(k)) out.push(`only with our store: ${k}`);
    else if (b.get(k) !== v) out.push(`different: ${k}\n  ours:     ${v}\n  imported: ${b.get(k) ?? ''}`);
  }
  for (const k of b.keys()) if (!a.has(k)) out.push(`only with the imported store: ${k}`);
  return out;
}

function assertClean(r: ImportReport, expectSkipped: (key: string) => boolean = () => false): void {
  const bad = r.items.filter((i) => i.outcome === 'refused' || i.outcome === 'failed');
  assert.deepEqual(bad, [], JSON.stringify(bad, null, 2));
  const skipped = r.items.filter((i) => i.outcome === 'skipped' && !expectSkipped(i.goKey));
  assert.deepEqual(skipped, []);
}

describe('taking over from the Go tool: post-upgrade on an imported Go store', () => {
  let dir: string;
  let keyFile: string;
  let registry: JobRegistry;
  let config: UpgradeConfig;
  let extensions: [string, string][];
  let fleetA: Fleet | undefined;
  let fleetB: Fleet | undefined;
  let storeA: ResourceStore | undefined;
  let oursAfterPost: Map<string, string> | undefined;

  const newStore = async (name: string): Promise<ResourceStore> =>
    createResourceStore({ local: { path: path.join(dir, name) }, encryption: { keyFile } });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ks-upgrade-takeover-'));
    keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    registry = new JobRegistry();
    registerBuiltinJobs(registry);
    const bucket = uniqueName('takeover-app-store');
    // Both fleets at once: the machine's time goes into waits more than into CPU.
    [fleetA, fleetB] = await Promise.all([
      startFleet('takeover-a', bucket, true),
      startFleet('takeover-b', bucket, false),
    ]);
    const env = devEnv();
    const file = path.join(dir, 'all-jobs.yaml');
    await writeFile(
      file,
      yaml.dump({
        jobs: {
          ...Object.fromEntries(registry.names().map((n) => [n, { enabled: true }])),
          application: {
            enabled: true,
            dynamicOptions: {
              minioEndpoint: env.s3Endpoint,
              minioBucket: bucket,
              releaseNameConflicts: 'skip',
            },
          },
        },
      }),
    );
    config = (await loadConfig([BUILTIN_CONFIG_PATH, file])).config;
    extensions = Object.values(config.jobs).flatMap((j) =>
      j.extensionRef ? [[j.extensionRef.name, j.extensionRef.version] as [string, string]] : [],
    );
  });
  after(async () => {
    await Promise.all([fleetA?.stop(), fleetB?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  /** The v4 core "helm upgrade" between pre- and post-upgrade. */
  const coreUpgrade = async (kube: ResourceClient): Promise<void> => {
    await playCoreUpgrade(kube, extensions);
    await writeExtensionCharts(kube, new Map(extensions));
  };

  it('post-upgrade on the imported Go store creates the same objects as on our own store', async () => {
    assert.ok(fleetA && fleetB);
    const a = fleetA;
    const b = fleetB;
    const env = devEnv();
    const prefix = `${uniqueName('takeover')}/`;
    const goDir = path.join(dir, 'go-after-pre');
    try {
      // A: our own store all the way. B, meanwhile: pre-upgrade, then the store the Go tool
      // would have left, imported from a directory (twice) and from S3.
      const [, imported] = await Promise.all([
        (async () => {
          storeA = await newStore('a');
          await runPhases(a.kube, storeA, config, registry, ['prepare-upgrade', 'pre-upgrade']);
          await coreUpgrade(a.kube);
          await runPhases(a.kube, storeA, config, registry, ['post-upgrade']);
          oursAfterPost = await clusterState(a.kube);
        })(),
        (async () => {
          const own = await newStore('b-own');
          await runPhases(b.kube, own, config, registry, ['prepare-upgrade', 'pre-upgrade']);
          const go: GoStore = await goStoreFromOurs(own, CLUSTER);
          assert.ok(go.size > 80, `${go.size} Go keys`);
          await writeGoStoreDir(goDir, go);
          await writeGoStoreS3(env.s3Bucket, prefix, go);
          const digests = { dir: await dirDigest(goDir), s3: await s3Digest(env.s3Bucket, prefix) };

          const store = await newStore('b-imported');
          const report = await importGoStore({ source: new LocalGoStore(goDir), store, cluster: CLUSTER });
          assertClean(report);
          const again = await importGoStore({ source: new LocalGoStore(goDir), store, cluster: CLUSTER });
          assert.equal(again.counts.imported, 0);
          assert.equal(again.counts.skipped, go.size);

          const fromS3 = await newStore('b-s3');
          const s3Report = await importGoStore({
            source: new S3GoStore({
              bucket: env.s3Bucket,
              prefix,
              endpoint: env.s3Endpoint,
              region: env.s3Region,
              forcePathStyle: true,
              disableSSL: true,
            }),
            store: fromS3,
            cluster: CLUSTER,
          });
          assertClean(s3Report);
          assert.deepEqual(
            s3Report.items.map((i) => [i.goKey, i.outcome, i.key]),
            report.items.map((i) => [i.goKey, i.outcome, i.key]),
          );
          for (const item of report.items) {
            const [, scope = '', ...rest] = (item.key ?? '').split('/');
            const open = (s: ResourceStore) =>
              scope === '_shared' ? s.scope(CLUSTER, 'core').shared() : s.scope(CLUSTER, scope);
            assert.deepEqual(
              Buffer.from(await open(fromS3).loadRaw(rest.join('/'))),
              Buffer.from(await open(store).loadRaw(rest.join('/'))),
              item.goKey,
            );
          }
          return { store, digests };
        })(),
      ]);
      assert.ok(oursAfterPost && oursAfterPost.size > 100, `${oursAfterPost?.size ?? 0} objects`);

      await coreUpgrade(b.kube);
      await runPhases(b.kube, imported.store, config, registry, ['post-upgrade']);
      assert.deepEqual(differences(oursAfterPost, await clusterState(b.kube)), []);

      // The Go tool's store is untouched.
      assert.deepEqual(await dirDigest(goDir), imported.digests.dir);
      assert.deepEqual(await s3Digest(env.s3Bucket, prefix), imported.digests.s3);
    } finally {
      await purgeS3Prefix({ ...devS3Config(), prefix });
    }
  });

  it('a Go store of a finished post-upgrade, imported, makes post-upgrade a no-op', async () => {
    assert.ok(fleetA && storeA, 'needs the first test');
    const go = await goStoreFromOurs(storeA, CLUSTER);
    // The keys the Go tool writes in (or at the end of) post-upgrade are all there.
    for (const k of [
      'iam-upgrade-status-post-upgrade',
      'upgrade-devops-done',
      'logging_logsidecar_enabled',
      'servicemesh-kiali-Deployment',
      ...[
        'whizard-alerting',
        'whizard-telemetry',
        'gateway',
        'network',
        'vector',
        'opensearch',
        'kubeedge',
      ].map((j) => `${j}-done`),
    ]) {
      assert.ok(go.has(k), `the Go store has ${k}`);
    }
    const goDir = path.join(dir, 'go-after-post');
    await writeGoStoreDir(goDir, go);
    const store = await newStore('c');
    const report = await importGoStore({ source: new LocalGoStore(goDir), store, cluster: CLUSTER });
    assertClean(report);
    assert.equal(report.counts.imported, go.size);

    // Nothing else may change the cluster meanwhile: the v4 stand-ins stop (their work is done).
    await fleetA.stopStandIns();
    const before = await clusterState(fleetA.kube, true);
    const logs = await runPhases(fleetA.kube, store, config, registry, ['post-upgrade']);
    assert.deepEqual(differences(before, await clusterState(fleetA.kube, true)), []);
    for (const job of ['whizard-notification', 'kubeedge', 'gateway', 'network', 'vector']) {
      assert.ok(
        logs.some((l) => l.startsWith(`info: job ${job} already done at `)),
        `${job} saw the Go tool's done marker`,
      );
    }
  });
});
