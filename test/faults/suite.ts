// The fault-injection suite (issue 13 §1): the full default upgrade of the fixture — host and
// member, every job — once per fault, on servers of its own (an etcd and two audited API
// servers, a Temporal dev server, the S3 server behind a proxy), each run checked against two
// clean runs of the same fixture:
//   - the upgrade completes, or waits for the operator with a message that names the fault (the
//     suite then answers `retry` and the run must still complete);
//   - both clusters end in the clean run's state (compareStates; the noise is what two clean runs
//     differ on);
//   - every backup keeps the sha256 and createdAt it was first seen with, and the set of backup
//     keys is the clean run's;
//   - the API servers' audit logs show the upgrade's own creates and deletes as often as in the
//     clean run: a retried step never created or deleted anything twice.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import { resolveSoon } from '../../src/cli/operate.js';
import type { StorageConfig } from '../../src/config/types.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { createResourceStore } from '../../src/store/index.js';
import { WORKFLOWS_PATH } from '../../src/temporal/bundle.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { freePort, startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import type { UpgradeClusterInput } from '../../src/upgrade/input.js';
import { progressQuery, type UpgradeProgress } from '../../workflows/messages.js';
import type { upgradeCluster } from '../../workflows/upgrade.js';
import { writeExtensionCharts } from '../fixtures/kubesphere-v4/extensions.js';
import { startChildWorker, type ChildWorker } from '../helpers/child-worker.js';
import { devEnv, repoRoot, uniqueName } from '../helpers/env.js';
import { prepareFullUpgrade, type FullUpgradeFixture } from '../helpers/full-upgrade.js';
import { playCoreUpgrade } from '../helpers/kubesphere.js';
import { devS3Config, localStorageConfig } from '../helpers/storage.js';
import { HttpFaultProxy, type ApiFault } from './http-proxy.js';
import { FaultProxy, seededRandom } from './proxy.js';
import { FaultServers, forget, killOnExit } from './servers.js';
import {
  clusterState,
  compareCounts,
  compareStates,
  countNoise,
  stateDifferences,
  type ClusterState,
  type WriteCounts,
} from './state.js';

/** The scenarios, in the order a full sweep runs them. */
export const SCENARIOS = [
  'worker-kill-boundaries',
  'worker-kill-random',
  'temporal-restart',
  'apiserver-restart',
  'apiserver-outage',
  'etcd-restart',
  's3-outage',
  'api-faults',
  'mixed',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

/**
 * The CI sample: one upgrade with every kind of fault in it (`mixed`: three boundary kills drawn
 * by the seed, a Temporal, an API server and an etcd restart, a 30 s S3 outage and API faults)
 * against the two clean runs — three full upgrades, 10–12 minutes beside the rest of `npm test` (697 s and 610 s in two CI rehearsals).
 */
export const SAMPLE: Omit<SuiteOptions, 'log' | 'seed'> = {
  scenarios: ['mixed'],
  boundaries: 3,
  randomKills: 3,
  outageMs: 30_000,
  apiFaultRate: 0.01,
};

export interface SuiteOptions {
  scenarios: readonly Scenario[];
  seed: number;
  /** Boundaries killed in `worker-kill-boundaries`: every one, or this many drawn by the seed. */
  boundaries: 'all' | number;
  /** Kills at random moments in `worker-kill-random`. */
  randomKills: number;
  /** How long `apiserver-outage` and `s3-outage` keep the server away, ms (the issue: 30 s). */
  outageMs: number;
  /** Share of API requests `api-faults` answers with a fault. */
  apiFaultRate: number;
  /** Progress lines (stderr in the CLI, the test's diagnostics in CI). */
  log: (line: string) => void;
}

/** One injected fault. */
export interface InjectedFault {
  kind: string;
  /** What the upgrade was doing (the running step), or the boundary. */
  at: string;
}

export interface ScenarioRecord {
  scenario: Scenario;
  seed: number;
  faults: InjectedFault[];
  survived: boolean;
  /** The upgrade's end: `Succeeded`, or the failure. */
  outcome: string;
  /** Errors the operator was asked about (each answered `retry` by the suite). */
  operatorAsked: string[];
  /** Broken invariants, each a line; empty when survived. */
  problems: string[];
  /** Writes the audit log of a killed API server lost (applied, not logged); not a problem. */
  auditLost: string[];
  activities: number;
  durationMs: number;
}

export interface SuiteRecord {
  seed: number;
  startedAt: string;
  options: Omit<SuiteOptions, 'log'>;
  clean: {
    durationMs: number[];
    activities: number;
    noise: { state: number; writes: number; backups: number };
    /** What the two clean runs differed on: left out of every comparison. */
    noiseLeaves: string[];
  };
  scenarios: ScenarioRecord[];
  injected: number;
  survived: number;
}

/** What one run of the upgrade left behind. */
interface RunOutcome {
  outcome: string;
  operatorAsked: string[];
  host: ClusterState;
  member: ClusterState;
  backupKeys: Set<string>;
  /** Backups whose sha256 or createdAt changed after they were first seen. */
  rewritten: string[];
  writes: WriteCounts;
  activities: number;
  durationMs: number;
}

interface RunContext {
  servers: FaultServers;
  progress: () => UpgradeProgress | undefined;
  worker: () => ChildWorker | undefined;
  faults: InjectedFault[];
  temporal: TemporalServer;
  s3Proxy: FaultProxy | undefined;
  /** The step running now, for the record of a fault. */
  where: () => string;
  /** Set when the upgrade has ended: injectors stop. */
  done: boolean;
}

interface RunSpec {
  label: string;
  storage?: 's3' | 'local';
  heartbeatTimeout?: string;
  workerEnv?: NodeJS.ProcessEnv;
  /** Points the upgrade's kubeconfig somewhere else (the fault proxy). */
  kubeconfig?: (fx: FullUpgradeFixture, servers: FaultServers) => Promise<string>;
  /** Runs beside the upgrade and injects the faults. */
  inject?: (ctx: RunContext) => Promise<void>;
}

/** The suite's Temporal dev server: its own, so restarting it disturbs nothing else. */
class TemporalServer {
  server: DevServer | undefined;
  constructor(
    readonly dir: string,
    readonly port: number,
  ) {}
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    forget(this.server?.pid);
    this.server = await startDevServer({
      binary: devEnv().temporalCliPath,
      dbFile: path.join(this.dir, 'temporal.db'),
      port: this.port,
      headless: true,
      logFile: path.join(this.dir, 'temporal.log'),
    });
    killOnExit(this.server.pid);
  }
  async restart(downMs = 0): Promise<void> {
    await this.server?.stop();
    if (downMs > 0) await sleep(downMs);
    await this.start();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the scenarios; returns the record (also what the CLI writes as JSON). */
export async function runFaultSuite(options: SuiteOptions): Promise<SuiteRecord> {
  const { log } = options;
  const dir = await mkdtemp(path.join(tmpdir(), 'ks-upgrade-faults-'));
  const temporal = new TemporalServer(dir, await freePort());
  await temporal.start();
  // One bundle for every worker start: a run may restart its worker a hundred times.
  const bundle = path.join(dir, 'workflow-bundle.js');
  await writeFile(bundle, (await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet })).code);
  const { log: _log, ...recorded } = options;
  const record: SuiteRecord = {
    seed: options.seed,
    startedAt: new Date().toISOString(),
    options: recorded,
    clean: { durationMs: [], activities: 0, noise: { state: 0, writes: 0, backups: 0 }, noiseLeaves: [] },
    scenarios: [],
    injected: 0,
    survived: 0,
  };
  try {
    log(`fault suite: seed ${options.seed}, scenarios ${options.scenarios.join(', ')}`);
    const run = (spec: RunSpec) => runUpgrade(spec, temporal, bundle, log);
    const cleanA = await run({ label: 'clean-a' });
    const cleanB = await run({ label: 'clean-b', storage: 's3' });
    for (const c of [cleanA, cleanB]) {
      if (c.outcome !== 'Succeeded') throw new Error(`a clean run did not succeed: ${c.outcome}`);
      record.clean.durationMs.push(c.durationMs);
    }
    record.clean.activities = cleanA.activities;
    const stateNoise = new Set([
      ...[...stateDifferences(cleanA.host, cleanB.host)].map((k) => `host ${k}`),
      ...[...stateDifferences(cleanA.member, cleanB.member)].map((k) => `member ${k}`),
    ]);
    const writeNoise = countNoise(cleanA.writes, cleanB.writes);
    const keyNoise = new Set(
      [...cleanA.backupKeys, ...cleanB.backupKeys].filter(
        (k) => !cleanA.backupKeys.has(k) || !cleanB.backupKeys.has(k),
      ),
    );
    record.clean.noise = { state: stateNoise.size, writes: writeNoise.size, backups: keyNoise.size };
    record.clean.noiseLeaves = [...stateNoise, ...writeNoise, ...keyNoise].sort();
    log(
      `clean runs: ${cleanA.activities} activities, ${Math.round(cleanA.durationMs / 1000)} s and ${Math.round(cleanB.durationMs / 1000)} s; ` +
        `noise: ${stateNoise.size} leaves, ${writeNoise.size} writes, ${keyNoise.size} backup keys`,
    );

    const random = seededRandom(options.seed);
    for (const scenario of options.scenarios) {
      const started = Date.now();
      const spec = scenarioSpec(scenario, options, random, cleanA.activities);
      log(`▶ ${scenario}`);
      let rec: ScenarioRecord;
      const faults: InjectedFault[] = [];
      const auditLost: string[] = [];
      try {
        const out = await runUpgrade(spec, temporal, bundle, log, faults);
        const problems: string[] = [];
        if (out.outcome !== 'Succeeded') problems.push(`the upgrade did not complete: ${out.outcome}`);
        for (const asked of out.operatorAsked) {
          if (!namesFault(scenario, asked))
            problems.push(`the operator was asked without the fault named: ${asked}`);
        }
        const noiseFor = (role: string) =>
          new Set(
            [...stateNoise].filter((k) => k.startsWith(`${role} `)).map((k) => k.slice(role.length + 1)),
          );
        problems.push(...compareStates(cleanA.host, out.host, noiseFor('host')).map((p) => `host: ${p}`));
        problems.push(
          ...compareStates(cleanA.member, out.member, noiseFor('member')).map((p) => `member: ${p}`),
        );
        problems.push(...out.rewritten.map((k) => `backup rewritten after its first write: ${k}`));
        for (const k of cleanA.backupKeys)
          if (!out.backupKeys.has(k) && !keyNoise.has(k)) problems.push(`backup missing: ${k}`);
        for (const k of out.backupKeys)
          if (!cleanA.backupKeys.has(k) && !keyNoise.has(k))
            problems.push(`backup not in the clean run: ${k}`);
        const counts = compareCounts(cleanA.writes, out.writes, writeNoise);
        problems.push(...counts.more.map((p) => `audit: ${p}`));
        // A write missing from the log: a fault of its own, unless this scenario killed an audited
        // API server — one that applied a write and died before logging it (found by
        // apiserver-restart: a delete applied, its entry lost). The state check still holds the
        // write to account: had it not happened, the cluster would differ.
        if (KILLS_APISERVER.has(scenario)) auditLost.push(...counts.fewer);
        else problems.push(...counts.fewer.map((p) => `audit: ${p}`));
        rec = {
          scenario,
          seed: options.seed,
          faults,
          survived: problems.length === 0 && faults.length > 0,
          outcome: out.outcome,
          operatorAsked: out.operatorAsked,
          problems: faults.length === 0 ? ['no fault was injected', ...problems] : problems,
          auditLost,
          activities: out.activities,
          durationMs: Date.now() - started,
        };
      } catch (err) {
        rec = {
          scenario,
          seed: options.seed,
          faults,
          survived: false,
          outcome: `suite error: ${(err as Error).stack ?? String(err)}`,
          operatorAsked: [],
          problems: [`suite error: ${(err as Error).message}`],
          auditLost,
          activities: 0,
          durationMs: Date.now() - started,
        };
      }
      record.scenarios.push(rec);
      log(
        `${rec.survived ? '✔' : '✖'} ${scenario}: ${rec.faults.length} faults, ${rec.outcome}, ` +
          `${Math.round(rec.durationMs / 1000)} s${rec.problems.length ? `\n    ${rec.problems.slice(0, 40).join('\n    ')}` : ''}`,
      );
    }
  } finally {
    await temporal.server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
  record.injected = record.scenarios.reduce((n, s) => n + s.faults.length, 0);
  record.survived = record.scenarios.filter((s) => s.survived).reduce((n, s) => n + s.faults.length, 0);
  return record;
}

/** Scenarios that kill an audited API server (its last writes may be applied but not logged). */
const KILLS_APISERVER = new Set<Scenario>(['apiserver-restart', 'apiserver-outage', 'mixed']);

/** Does the question put to the operator name the fault of `scenario`? */
function namesFault(scenario: Scenario, message: string): boolean {
  const m = message.toLowerCase();
  switch (scenario) {
    case 's3-outage':
      return m.includes('s3');
    case 'temporal-restart':
    case 'worker-kill-boundaries':
    case 'worker-kill-random':
      return m.includes('timeout') || m.includes('timed out') || m.includes('worker');
    case 'mixed':
      return ['s3-outage', 'worker-kill-boundaries', 'apiserver-restart'].some((x) =>
        namesFault(x as Scenario, message),
      );
    default:
      return /api server|injected by the fault proxy|econnrefused|econnreset|socket hang up|http 5\d\d|http 429|timed out|etcd/.test(
        m,
      );
  }
}

function scenarioSpec(
  scenario: Scenario,
  o: SuiteOptions,
  random: () => number,
  activities: number,
): RunSpec {
  // Boundaries are activity starts and ends: two per activity of the clean run.
  const boundaryCount = activities * 2;
  const at = (lo: number, hi: number) => Math.floor(lo + random() * (hi - lo));
  switch (scenario) {
    case 'worker-kill-boundaries': {
      const pick =
        o.boundaries === 'all'
          ? 'all'
          : [...new Set(Array.from({ length: o.boundaries }, () => at(0, boundaryCount)))]
              .sort((a, b) => a - b)
              .join(',');
      return {
        label: 'kill-boundaries',
        // A dead worker is noticed after the heartbeat timeout: short, or a sweep takes hours.
        heartbeatTimeout: '4s',
        workerEnv: { KS_FAULT_BOUNDARY_PICK: pick },
      };
    }
    case 'worker-kill-random': {
      const delays = Array.from({ length: o.randomKills }, () => at(2_000, 12_000));
      return {
        label: 'kill-random',
        heartbeatTimeout: '4s',
        inject: async (ctx) => {
          for (const d of delays) {
            await sleep(d);
            const w = ctx.worker();
            if (!w || isDone(ctx)) return;
            ctx.faults.push({ kind: 'worker SIGKILL', at: `${ctx.where()} (+${d} ms)` });
            await w.kill();
            // The supervisor starts the next worker; wait for it before the next draw.
            while (ctx.worker() === w && !isDone(ctx)) await sleep(200);
          }
        },
      };
    }
    case 'temporal-restart': {
      const when = at(1, Math.max(2, activities - 2));
      return {
        label: 'temporal-restart',
        inject: async (ctx) => {
          await untilActivities(ctx, when);
          ctx.faults.push({ kind: 'Temporal dev server restart', at: ctx.where() });
          await ctx.temporal.restart();
        },
      };
    }
    case 'apiserver-restart':
    case 'apiserver-outage': {
      const when = at(1, Math.max(2, activities - 2));
      const downMs = scenario === 'apiserver-outage' ? o.outageMs : 0;
      const role = random() < 0.5 ? 0 : 1;
      return {
        label: scenario,
        inject: async (ctx) => {
          await untilActivities(ctx, when);
          const cluster = ctx.servers.clusters[role]?.name ?? '';
          ctx.faults.push({
            kind: downMs
              ? `${role ? 'member' : 'host'} kube-apiserver down ${downMs / 1000} s`
              : `${role ? 'member' : 'host'} kube-apiserver SIGKILL + restart`,
            at: ctx.where(),
          });
          await ctx.servers.restartApiserver(cluster, downMs);
        },
      };
    }
    case 'etcd-restart': {
      const when = at(1, Math.max(2, activities - 2));
      return {
        label: 'etcd-restart',
        inject: async (ctx) => {
          await untilActivities(ctx, when);
          ctx.faults.push({ kind: 'etcd SIGKILL + restart', at: ctx.where() });
          await ctx.servers.restartEtcd();
        },
      };
    }
    case 's3-outage':
      return {
        label: 's3-outage',
        storage: 's3',
        inject: async (ctx) => {
          // During backups: the first pre-upgrade step that runs (iam and core write most there).
          await until(ctx, () =>
            ctx.progress()?.steps.some((s) => s.phase === 'pre-upgrade' && s.state === 'running'),
          );
          if (isDone(ctx)) return;
          ctx.faults.push({ kind: `S3 down ${o.outageMs / 1000} s (connections reset)`, at: ctx.where() });
          ctx.s3Proxy?.setMode('reset');
          await sleep(o.outageMs);
          ctx.s3Proxy?.setMode('pass');
        },
      };
    case 'mixed': {
      const parts = (
        [
          'worker-kill-boundaries',
          'temporal-restart',
          'apiserver-restart',
          'etcd-restart',
          's3-outage',
          'api-faults',
        ] as const
      ).map((x) =>
        // A few boundary kills among the other faults, also in the full sweep (which kills at
        // every boundary in its own scenario).
        scenarioSpec(x, { ...o, boundaries: o.boundaries === 'all' ? 3 : o.boundaries }, random, activities),
      );
      const kubeconfig = parts.find((p) => p.kubeconfig)?.kubeconfig;
      return {
        label: 'mixed',
        storage: 's3',
        heartbeatTimeout: '4s',
        workerEnv: Object.assign({}, ...parts.map((p) => p.workerEnv ?? {})) as NodeJS.ProcessEnv,
        ...(kubeconfig ? { kubeconfig } : {}),
        inject: async (ctx) => {
          await Promise.all(parts.map((p) => (p.inject ? p.inject(ctx) : Promise.resolve())));
        },
      };
    }
    case 'api-faults': {
      const faults: ApiFault[] = ['429', '500', '503', 'slow', 'reset-before', 'reset-after', 'timeout'];
      const seed = Math.floor(random() * 2 ** 31);
      let proxy: HttpFaultProxy | undefined;
      return {
        label: 'api-faults',
        kubeconfig: async (fx) => {
          const pki = path.join(devEnv().stateDir, 'pki');
          const kc = yaml.load(await readFile(fx.host.kubeconfig, 'utf8')) as {
            clusters: { cluster: { server: string } }[];
          };
          const target = kc.clusters[0]?.cluster.server ?? '';
          proxy = await HttpFaultProxy.start({
            target,
            caFile: path.join(pki, 'ca.crt'),
            certFile: path.join(pki, 'apiserver.crt'),
            keyFile: path.join(pki, 'apiserver.key'),
            rate: 0,
            faults,
            // A timeout costs the client's full request timeout (60 s): rare, but present.
            weights: { timeout: 0.1 },
            seed,
          });
          for (const c of kc.clusters) c.cluster.server = proxy.url;
          const file = path.join(fx.dir, 'proxied.kubeconfig');
          await writeFile(file, yaml.dump(kc), { mode: 0o600 });
          return file;
        },
        inject: async (ctx) => {
          if (!proxy) return;
          // Faults from the first step on (the plan and the identity binding run clean, once).
          proxy.setRate(o.apiFaultRate);
          await until(ctx, () => false);
          proxy.setRate(0);
          for (const f of proxy.log) ctx.faults.push({ kind: `API ${f.fault}`, at: `${f.method} ${f.path}` });
          await proxy.close();
        },
      };
    }
  }
}

/** Read through a call: `done` is set by the run loop while an injector awaits. */
function isDone(ctx: RunContext): boolean {
  return ctx.done;
}

async function until(ctx: RunContext, cond: () => boolean | undefined): Promise<void> {
  while (!isDone(ctx) && !cond()) await sleep(250);
}

/** Until `n` activities have finished (steps succeeded or skipped). */
async function untilActivities(ctx: RunContext, n: number): Promise<void> {
  await until(
    ctx,
    () =>
      (ctx.progress()?.steps.filter((s) => s.state !== 'pending' && s.state !== 'running').length ?? 0) >= n,
  );
}

const quiet = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: console.error,
  log: () => undefined,
};

async function runUpgrade(
  spec: RunSpec,
  temporal: TemporalServer,
  bundle: string,
  log: (l: string) => void,
  faults: InjectedFault[] = [],
): Promise<RunOutcome> {
  const started = Date.now();
  const servers = await FaultServers.start(spec.label);
  let fx: FullUpgradeFixture | undefined;
  let s3Proxy: FaultProxy | undefined;
  let stopping = false;
  // Read through a call: the flag is set by other async paths (TypeScript would narrow a read).
  const isStopping = () => stopping;
  let worker: ChildWorker | undefined;
  const boundaryFile = path.join(servers.dir, 'boundaries');
  try {
    let storage: Record<string, unknown> | undefined;
    let storeConfig: StorageConfig | undefined;
    const env = devEnv();
    if (spec.storage === 's3') {
      s3Proxy = await FaultProxy.start({ target: env.s3Endpoint });
      const s3 = {
        endpoint: s3Proxy.address,
        disableSSL: true,
        forcePathStyle: true,
        region: env.s3Region,
        bucket: env.s3Bucket,
        prefix: `${uniqueName('faults')}/`,
        accessKeyID: env.s3AccessKeyId,
        secretAccessKey: env.s3SecretAccessKey,
      };
      storage = { s3 };
      // The suite watches the store directly, never through the proxy it breaks.
      storeConfig = localStorageConfig(servers.dir, { s3: devS3Config({ prefix: s3.prefix }) });
    }
    fx = await prepareFullUpgrade({
      clusters: servers.pair,
      ...(storage ? { storage } : {}),
      tuning: { heartbeatTimeout: spec.heartbeatTimeout ?? '20s' },
    });
    storeConfig ??= localStorageConfig(path.join(fx.dir, 'backups'));
    const store = await createResourceStore({
      ...storeConfig,
      encryption: { keyFile: fx.keyFile },
    });
    const input: UpgradeClusterInput = {
      ...fx.input,
      ...(spec.kubeconfig ? { kube: { kubeconfig: await spec.kubeconfig(fx, servers) } } : {}),
    };

    const connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection });
    const taskQueue = uniqueName('faults');
    const startWorker = async () => {
      const w = await startChildWorker(temporal.address, 'default', taskQueue, {
        script: path.join(repoRoot, 'test/helpers/builtin-worker-process.ts'),
        env: {
          ...process.env,
          KS_FAULT_WORKFLOW_BUNDLE: bundle,
          KS_FAULT_BOUNDARY_FILE: boundaryFile,
          KS_FAULT_BOUNDARY_PICK: 'none',
          ...spec.workerEnv,
        },
      });
      killOnExit(w.process.pid);
      void w.exited.then(() => {
        forget(w.process.pid);
      });
      return w;
    };
    let current = await startWorker();
    worker = current;
    // The supervisor: a worker that dies is replaced, as systemd or Kubernetes would.
    const supervisor = (async () => {
      while (!isStopping()) {
        await current.exited;
        if (isStopping()) break;
        for (;;) {
          try {
            current = await startWorker();
            worker = current;
            break;
          } catch (err) {
            if (isStopping()) return;
            log(`  worker did not start (${(err as Error).message}); again in 1 s`);
            await sleep(1_000);
          }
        }
      }
    })();

    const { handle: first } = await startUpgrade(client, input, taskQueue);
    const workflowId = first.workflowId;
    const handle = () => client.workflow.getHandle<typeof upgradeCluster>(workflowId);
    let progress: UpgradeProgress | undefined;
    const operatorAsked: string[] = [];
    const ctx: RunContext = {
      servers,
      progress: () => progress,
      worker: () => worker,
      faults,
      temporal,
      s3Proxy,
      where: () => {
        const running = progress?.steps.find((s) => s.state === 'running');
        return running ? `${running.phase} ${running.job}` : (progress?.status ?? 'starting');
      },
      done: false,
    };
    const injecting = spec.inject
      ? spec.inject(ctx).catch((err: unknown) => err as Error)
      : Promise.resolve();

    // The store watcher: first sight of each backup, compared at the end.
    const firstSeen = new Map<string, string>();
    const watchStore = async () => {
      for (const key of await store.list()) {
        if (firstSeen.has(key)) continue;
        try {
          const info = await store.stat(key);
          firstSeen.set(key, `${info.sha256} ${info.createdAt}`);
        } catch {
          // Being written (S3 multipart) or gone: the next round sees it.
        }
      }
    };

    let outcome = '';
    let played = false;
    const answered = new Set<string>();
    const deadline = Date.now() + 40 * 60_000;
    const result = (async () => {
      for (;;) {
        try {
          return await handle().result();
        } catch (err) {
          const msg = (err as Error).message;
          // A restarted Temporal server drops the long poll: ask again.
          if (/unavailable|connect|closed|cancel/i.test(msg) && !/workflow execution failed/i.test(msg)) {
            await sleep(500);
            continue;
          }
          throw err;
        }
      }
    })().then(
      (r) => {
        outcome = r.status;
      },
      (err: unknown) => {
        outcome = `failed: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`;
      },
    );
    let finished = false;
    void result.then(() => {
      finished = true;
    });
    const isFinished = () => finished;
    while (!isFinished()) {
      if (Date.now() > deadline) {
        outcome = `still running after 40 min (${ctx.where()})`;
        break;
      }
      await watchStore().catch(() => undefined);
      try {
        progress = await withTimeout(handle().query(progressQuery), 5_000);
      } catch {
        // The worker or the server is down (the connection reconnects by itself): ask again.
        await sleep(500);
        continue;
      }
      if (progress.status === 'AwaitingCoreUpgrade' && !played) {
        played = true;
        const { host: h, extensions } = fx;
        await retrying(() => playCoreUpgrade(h.connection.client, extensions));
        await retrying(() => writeExtensionCharts(h.connection.client, new Map(extensions)));
      }
      const awaiting = progress.awaiting;
      if (awaiting && !answered.has(awaiting.since)) {
        answered.add(awaiting.since);
        operatorAsked.push(`${awaiting.phase} ${awaiting.job ?? ''}: ${awaiting.error}`);
        log(`  operator asked: ${awaiting.phase} ${awaiting.job ?? ''}: ${awaiting.error.slice(0, 300)}`);
        await resolveSoon(handle(), {
          action: 'retry',
          reason: 'fault suite: the fault has passed',
          by: 'faults',
        }).catch((err: unknown) => {
          answered.delete(awaiting.since);
          log(`  resolve failed: ${(err as Error).message}`);
        });
      }
      await sleep(500);
    }
    ctx.done = true;
    const injectErr = await injecting;
    if (injectErr) throw injectErr;
    stopping = true;
    await worker.kill();
    await supervisor;
    await watchStore();
    const activities = await countActivities(handle());
    const boundaries = await readFile(boundaryFile, 'utf8').catch(() => '');
    for (const line of boundaries.split('\n')) {
      const m = /^kill (\d+) (.*)$/.exec(line);
      if (m) faults.push({ kind: `worker SIGKILL at boundary ${m[1]}`, at: m[2] ?? '' });
    }
    await connection.close().catch(() => undefined);

    // The end state, with the stand-ins stopped (they keep writing status otherwise).
    await fx.controller.stop();
    await fx.standIns.stop();
    const names: [string, string][] = [
      [fx.host.name, '<host>'],
      [fx.member.name, '<member>'],
    ];
    const host = await settledState(fx.host.connection.client, names);
    const member = await settledState(fx.member.connection.client, names);
    const backupKeys = new Set<string>();
    const rewritten: string[] = [];
    for (const key of await store.list()) {
      const norm = key.split(fx.host.name).join('<host>');
      backupKeys.add(norm);
      const info = await store.stat(key);
      const first = firstSeen.get(key);
      if (first !== undefined && first !== `${info.sha256} ${info.createdAt}`) rewritten.push(norm);
    }
    const writes: WriteCounts = new Map();
    for (const [c, role] of [
      [fx.host.name, '<host>'],
      [fx.member.name, '<member>'],
    ] as const) {
      for (const w of await servers.auditWrites(c)) {
        if (!w.userAgent.startsWith('ks-upgrade') || w.userAgent.startsWith('ks-upgrade-test')) continue;
        if ((w.verb !== 'create' && w.verb !== 'delete') || w.code < 200 || w.code > 299) continue;
        const key = `${role} ${w.verb} ${w.resource} ${w.namespace}/${w.name}`
          .split(fx.host.name)
          .join('<host>')
          .split(fx.member.name)
          .join('<member>');
        writes.set(key, (writes.get(key) ?? 0) + 1);
      }
    }
    return {
      outcome,
      operatorAsked,
      host,
      member,
      backupKeys,
      rewritten,
      writes,
      activities,
      durationMs: Date.now() - started,
    };
  } finally {
    stopping = true;
    await worker?.kill();
    await s3Proxy?.close();
    await fx?.controller.stop().catch(() => undefined);
    await fx?.standIns.stop().catch(() => undefined);
    await servers.stop();
    if (fx) await rm(fx.dir, { recursive: true, force: true });
  }
}

/**
 * The cluster's state once nothing is terminating any more (up to a minute): a CRD deleted by the
 * last steps is still being cleaned up by the API server for a while, longer in one run than in
 * another. What is still terminating after a minute is compared as it is.
 */
async function settledState(kube: ResourceClient, names: [string, string][]): Promise<ClusterState> {
  for (let i = 0; ; i++) {
    const state = await clusterState(kube, names);
    const terminating = [...state.values()].some((leaves) => leaves.has('.metadata.deletionTimestamp'));
    if (!terminating || i >= 60) return state;
    await sleep(1_000);
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer in ${ms} ms`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The test's own calls (playing the v4 controllers) ride out a fault like the upgrade does. */
async function retrying(fn: () => Promise<void>): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await fn();
      return;
    } catch (err) {
      if (i >= 60) throw err;
      await sleep(1_000);
    }
  }
}

/** Activities the workflow scheduled (from its history). */
async function countActivities(handle: WorkflowHandle): Promise<number> {
  for (let i = 0; ; i++) {
    try {
      const history = await handle.fetchHistory();
      return (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).length;
    } catch (err) {
      if (i >= 20) throw err;
      await sleep(1_000);
    }
  }
}

/** The line the suite ends with. */
export function summaryLine(r: SuiteRecord): string {
  return `faults injected ${r.injected}, survived ${r.survived}`;
}
