// The IAM migration (iam job, pre-upgrade) of N generated users with their three bindings each,
// against the API server's own write limit: raw concurrent creates of the same objects, at the
// best concurrency of a sweep on the same server. The migration writes every one of those objects
// once (rewritten in its v4 form), so the limit is what it could reach at best.
// Every measured run starts from a fresh v3 cluster (untimed: fixture, prepare-upgrade).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { iamJobFactory } from '../../src/jobs/iam/index.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runJobPhase,
  type Phase,
} from '../../src/jobs/index.js';
import { lookupResource, type KubeObject } from '../../src/kube/types.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { KubeRequest, KubeResponse } from '../../src/kube/transport.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { forEachLimit } from '../../src/util/concurrency.js';
import { allGenerated, generateIamObjects } from '../fixtures/kubesphere-v3/generate.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3 } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import type { Row } from './harness.js';

/** Wall time and process CPU time (ms) of each step the phase reported, in order. */
type StepTimes = [string, { wallMs: number; cpuMs: number }][];

async function phase(
  cluster: EphemeralCluster,
  store: ResourceStore,
  name: Phase,
  options: Record<string, unknown>,
  steps?: StepTimes,
): Promise<void> {
  let current = '';
  let since = performance.now();
  let cpuSince = process.cpuUsage();
  const mark = (step: string): void => {
    if (!steps || step === current) return;
    const now = performance.now();
    const cpu = process.cpuUsage(cpuSince);
    if (current) steps.push([current, { wallMs: now - since, cpuMs: (cpu.user + cpu.system) / 1000 }]);
    current = step;
    since = now;
    cpuSince = process.cpuUsage();
  };
  const logger = createMemoryLogger();
  const info = logger.info.bind(logger);
  logger.info = (message, fields) => {
    if (message.startsWith('start to ')) mark(message.slice('start to '.length));
    info(message, fields);
  };
  const registry = new JobRegistry();
  registry.register(iamJobFactory);
  const [iam] = instantiateJobs(
    configWithJobs({ iam: { enabled: true, priority: 999, dynamicOptions: options } }),
    registry,
  );
  if (!iam) throw new Error('iam job not instantiated');
  const result = await runJobPhase(
    iam.job,
    createJobContext({
      job: 'iam',
      phase: name,
      cluster: { name: 'host' },
      kube: cluster.connection.client,
      store,
      config: iam.config,
      logger,
      heartbeat: (p) => {
        if (p?.step) mark(p.step);
      },
    }),
  );
  mark('');
  if (result.outcome !== 'succeeded')
    throw new Error(`iam ${name}: ${result.outcome} ${result.reason ?? ''}`);
}

/**
 * Counts the requests the client's transport sends, by `METHOD resource[/{name}] status`, while
 * `fn` runs (the bench process sends nothing else meanwhile); with the process CPU time and the
 * event-loop utilisation over the same window: where the time goes, ours vs the API server's.
 */
async function observe<T>(
  kube: ResourceClient,
  fn: () => Promise<T>,
  /** Receives every write (not GET) that succeeded, in the order sent. */
  writes?: KubeRequest[],
): Promise<{
  value: T;
  requests: Record<string, number>;
  /** Summed latency of the requests, by the same key. */
  latencyMs: Record<string, number>;
  cpuMs: number;
  wallMs: number;
  elu: number;
}> {
  const transport = kube.transport;
  const send = transport.request.bind(transport);
  const requests: Record<string, number> = {};
  const latencyMs: Record<string, number> = {};
  transport.request = async (req: KubeRequest): Promise<KubeResponse> => {
    const t = performance.now();
    const res = await send(req);
    const ms = performance.now() - t;
    // /api/v1/namespaces/ns/plural/name or /apis/group/version/[namespaces/ns/]plural[/name]
    const parts = req.path.split('/').slice(req.path.startsWith('/apis/') ? 4 : 3);
    if (parts[0] === 'namespaces' && parts.length > 2) parts.splice(0, 2);
    const key = `${req.method} ${parts[0] ?? req.path}${parts.length > 1 ? '/{name}' : ''} ${res.status}`;
    requests[key] = (requests[key] ?? 0) + 1;
    if (writes && req.method !== 'GET' && res.status < 300) writes.push({ ...req, signal: undefined });
    latencyMs[key] = (latencyMs[key] ?? 0) + ms;
    return res;
  };
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  try {
    const value = await fn();
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    return {
      value,
      requests,
      latencyMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      wallMs,
      elu: performance.eventLoopUtilization(elu0).utilization,
    };
  } finally {
    delete (transport as { request?: unknown }).request;
  }
}

/** BENCH_IAM_CPU_PROF=<file>: a V8 CPU profile (.cpuprofile) of `fn`, this process only. */
async function profiled<T>(fn: () => Promise<T>): Promise<T> {
  const file = process.env.BENCH_IAM_CPU_PROF;
  if (!file) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 1000 });
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(file, JSON.stringify(profile));
    session.disconnect();
    process.stderr.write(`iam: CPU profile of pre-upgrade written to ${file}\n`);
  }
}

const summary = (o: {
  requests: Record<string, number>;
  latencyMs: Record<string, number>;
  cpuMs: number;
  wallMs: number;
  elu: number;
}): string => {
  const all = Object.entries(o.requests);
  const shown = all
    .filter(([k, n]) => n >= 10 || k.startsWith('GET users '))
    .map(([k, n]) => `${k} ×${n} (mean ${((o.latencyMs[k] ?? 0) / n).toFixed(0)} ms)`);
  const rest = all.filter(([k, n]) => !(n >= 10 || k.startsWith('GET users ')));
  return (
    `wall ${o.wallMs.toFixed(0)} ms, process CPU ${o.cpuMs.toFixed(0)} ms (${((o.cpuMs / o.wallMs) * 100).toFixed(0)}%), ` +
    `event loop busy ${(o.elu * 100).toFixed(0)}%; requests: ${shown.join(', ')}; ` +
    `${rest.reduce((t, [, n]) => t + n, 0)} more of ${rest.length} other kinds`
  );
};

/** Creates `objects` with `concurrency` requests in flight; objects per second. */
async function createAll(
  kube: ResourceClient,
  objects: readonly KubeObject[],
  concurrency: number,
): Promise<number> {
  const t0 = process.hrtime.bigint();
  await forEachLimit(objects, concurrency, async (o) => {
    const rt = lookupResource(o.apiVersion ?? '', o.kind ?? '');
    if (!rt) throw new Error(`no resource type for ${o.apiVersion ?? ''} ${o.kind ?? ''}`);
    await kube.create(rt, o);
  });
  return objects.length / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/**
 * Sends `writes` as they are, `concurrency` at a time, through the bare transport; writes per
 * second, and how many the API server refused. A PUT carries the other cluster's resourceVersion
 * and uid: they are replaced by this cluster's, read before the clock starts (a custom resource
 * cannot be updated without its resourceVersion).
 */
async function sendAll(
  kube: ResourceClient,
  writes: readonly KubeRequest[],
  concurrency: number,
): Promise<{ rate: number; refused: Record<string, number> }> {
  // Copies: the recorded writes stay as the migration sent them.
  const prepared: KubeRequest[] = writes.map((w) => ({ ...w }));
  await forEachLimit(prepared, concurrency, async (w) => {
    if (w.method !== 'PUT') return;
    const res = await kube.transport.request({ method: 'GET', path: w.path });
    if (res.status !== 200) return;
    const live = JSON.parse(res.text) as KubeObject;
    const o = (typeof w.body === 'string' ? JSON.parse(w.body) : w.body) as KubeObject;
    w.body = {
      ...o,
      metadata: { ...o.metadata, resourceVersion: live.metadata.resourceVersion, uid: live.metadata.uid },
    };
  });
  const refused: Record<string, number> = {};
  const t0 = process.hrtime.bigint();
  await forEachLimit(prepared, concurrency, async (w) => {
    const res = await kube.transport.request(w);
    if (res.status >= 300) {
      const key = `${w.method} ${res.status}`;
      refused[key] = (refused[key] ?? 0) + 1;
    }
  });
  return { rate: writes.length / (Number(process.hrtime.bigint() - t0) / 1e9), refused };
}

export interface IamBenchOptions {
  users: number;
  /** Objects per concurrency level in the sweep. */
  sweepObjects: number;
  concurrencies: readonly number[];
}

export async function benchIam(o: IamBenchOptions): Promise<Row[]> {
  const objects = allGenerated(generateIamObjects({ users: o.users }));
  // The sweep: each level creates its own share of similar objects on one fresh v3 cluster.
  const sweep = new Map<number, number>();
  {
    const cluster = await startEphemeralCluster('bench-iam-sweep');
    try {
      await installKubeSphereV3(cluster.connection.client);
      const pool = allGenerated(
        generateIamObjects({
          users: Math.ceil((o.sweepObjects * o.concurrencies.length) / 4) + 1,
          prefix: 'sweep',
        }),
      );
      const levels = o.concurrencies.length;
      for (const [k, c] of o.concurrencies.entries()) {
        // Every k-th object: each level gets the same mix of kinds (the pool is grouped by kind).
        const slice = pool.filter((_, i) => i % levels === k).slice(0, o.sweepObjects);
        sweep.set(c, await createAll(cluster.connection.client, slice, c));
        process.stderr.write(`iam: raw creates at concurrency ${c}: ${(sweep.get(c) ?? 0).toFixed(0)}/s\n`);
      }
    } finally {
      await cluster.remove();
    }
  }
  const best = [...sweep.entries()].reduce((a, b) => (b[1] > a[1] ? b : a))[0];

  // The measured run: the limit is the raw creation of exactly these objects at the best level.
  const cluster = await startEphemeralCluster('bench-iam');
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-iam-'));
  try {
    await installKubeSphereV3(cluster.connection.client);
    process.stderr.write(`iam: creating ${objects.length} objects at concurrency ${best} (the baseline)…\n`);
    const base = await observe(cluster.connection.client, () =>
      createAll(cluster.connection.client, objects, best),
    );
    const limit = base.value;
    process.stderr.write(`iam: baseline: ${summary(base)}\n`);
    const keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    const store = await createResourceStore({
      local: { path: path.join(dir, 'store') },
      encryption: { keyFile },
    });
    await phase(cluster, store, 'prepare-upgrade', {});
    process.stderr.write(`iam: pre-upgrade (default options)…\n`);
    const steps: StepTimes = [];
    const writes: KubeRequest[] = [];
    const run = await observe(
      cluster.connection.client,
      () => profiled(() => phase(cluster, store, 'pre-upgrade', {}, steps)),
      writes,
    );
    const ours = objects.length / (run.wallMs / 1000);
    process.stderr.write(`iam: pre-upgrade: ${summary(run)}\n`);
    process.stderr.write(
      `iam: pre-upgrade steps (wall/CPU ms): ${steps.map(([s, t]) => `${s} ${t.wallMs.toFixed(0)}/${t.cpuMs.toFixed(0)}`).join(', ')}\n`,
    );
    const same = await sameWrites(objects, writes, best, dir);
    const migrated = writes.length / (run.wallMs / 1000);
    const iamRow: Row = {
      id: 'iam',
      workload: `IAM migration, ${o.users} users + ${objects.length - o.users} bindings`,
      baseline: {
        label: `raw creates of the same objects, best concurrency ${best} (sweep ${[...sweep.entries()].map(([c, r]) => `${c}: ${r.toFixed(0)}/s`).join(', ')})`,
        value: limit,
        unit: 'objects/s',
      },
      ours: {
        label: 'iam pre-upgrade (default: concurrency 8, snapshot + storedVersions included)',
        value: ours,
        unit: 'objects/s',
      },
      ratio: ours / limit,
      ratioLabel: ' of the limit',
      target: '≥ 0.70 of the limit',
      met: ours / limit >= 0.7,
      rounds: 1,
      extra: {
        sweep: Object.fromEntries(sweep),
        best,
        baseline: {
          requests: base.requests,
          latencyMs: base.latencyMs,
          cpuMs: base.cpuMs,
          wallMs: base.wallMs,
          elu: base.elu,
        },
        preUpgrade: {
          requests: run.requests,
          latencyMs: run.latencyMs,
          cpuMs: run.cpuMs,
          wallMs: run.wallMs,
          elu: run.elu,
          steps: Object.fromEntries(steps),
        },
      },
    };
    const writesRow: Row = {
      id: 'iam-writes',
      workload: `IAM migration, ${o.users} users: its own writes (${writes.length}: ${Object.entries(
        countBy(writes.map((w) => w.method)),
      )
        .map(([m, n]) => `${n} ${m}`)
        .join(', ')})`,
      baseline: {
        label: `the same writes sent raw, concurrency ${best}, on a fresh v3 cluster after prepare-upgrade${
          Object.keys(same.refused).length ? ` (refused: ${JSON.stringify(same.refused)})` : ''
        }`,
        value: same.rate,
        unit: 'writes/s',
      },
      ours: {
        label: 'iam pre-upgrade, wall time including its reads and waits',
        value: migrated,
        unit: 'writes/s',
      },
      ratio: migrated / same.rate,
      ratioLabel: ' of the limit',
      target: '≥ 0.70 of the limit',
      met: migrated / same.rate >= 0.7,
      rounds: 1,
      extra: { refused: same.refused },
    };
    return [iamRow, writesRow];
  } finally {
    await cluster.remove();
    await rm(dir, { recursive: true, force: true });
  }
}

const countBy = (xs: readonly string[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
};

/**
 * The API server's limit for the migration's own mix of writes (three quarters rewrite an object in
 * place, which costs the server more than a create): a fresh v3 cluster with the same objects,
 * prepare-upgrade run (untimed), then the recorded writes sent raw at the sweep's best concurrency.
 */
async function sameWrites(
  objects: readonly KubeObject[],
  writes: readonly KubeRequest[],
  concurrency: number,
  dir: string,
): Promise<{ rate: number; refused: Record<string, number> }> {
  const cluster = await startEphemeralCluster('bench-iam-writes');
  try {
    await installKubeSphereV3(cluster.connection.client);
    await createAll(cluster.connection.client, objects, concurrency);
    const store = await createResourceStore({
      local: { path: path.join(dir, 'store-writes') },
      encryption: { keyFile: path.join(dir, 'backup.key') },
    });
    await phase(cluster, store, 'prepare-upgrade', {});
    process.stderr.write(
      `iam: sending the migration's ${writes.length} writes raw at concurrency ${concurrency}…\n`,
    );
    const r = await sendAll(cluster.connection.client, writes, concurrency);
    process.stderr.write(`iam: raw writes: ${r.rate.toFixed(0)}/s, refused ${JSON.stringify(r.refused)}\n`);
    return r;
  } finally {
    await cluster.remove();
  }
}
