// `npm run bench -- fleet`: upgradeFleet over N simulated clusters (BENCH_FLEET_SIZES, default
// 200,1000) on one worker, against the real Temporal dev server and one real API server that every
// simulated cluster reaches (the gate's checks and the host's Schedulable marks are real). The jobs
// are a simulation — no-op plugin jobs — so the figures are the orchestration's: wall time, the
// worker's peak RSS, the largest workflow history, continue-as-new.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import { fleetWorkflowId, type FleetInput } from '../../src/fleet/input.js';
import { WORKFLOWS_PATH } from '../../src/temporal/bundle.js';
import { forEachLimit } from '../../src/util/concurrency.js';
import type { FleetResult } from '../../workflows/fleet/messages.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { devEnv, repoRoot, uniqueName } from '../helpers/env.js';
import { installHostCrds, playV4Core, registerMember, tempDir } from '../helpers/fleet.js';
import { temporalClients, DEMO_SKIP_CHECKS } from '../helpers/upgrade.js';
import { SIM_JOBS } from './fleet-sim-jobs.js';

export interface FleetBench {
  name: string;
  simulation: string;
  clusters: number;
  maxConcurrency: number;
  wallMs: number;
  clustersPerMinute: number;
  /** RSS of the worker once it polls, before the fleet starts. */
  workerReadyRssMb: number;
  workerPeakRssMb: number;
  /** The fleet's runs (1 + continue-as-new). */
  runs: number;
  largestFleetHistory: number;
  largestChildHistory: number;
  status: string;
}

let bundleFile: Promise<string> | undefined;

/** The workflow bundle, built once per benchmark run (as `npm run build` does for production). */
function prebuiltBundle(): Promise<string> {
  bundleFile ??= (async () => {
    const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet });
    const file = path.join(await tempDir('bundle'), 'workflow-bundle.js');
    await writeFile(file, code);
    return file;
  })();
  return bundleFile;
}
const noop = (): void => undefined;
const quiet = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };

async function startBenchWorker(taskQueue: string): Promise<{ child: ChildProcess; readyRssMb: number }> {
  const script = path.join(repoRoot, 'test/bench/fleet-worker.ts');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', script, devEnv().temporalAddress, taskQueue, await prebuiltBundle()],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const readyRssMb = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      const m = /worker ready rss=(\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => {
      reject(new Error(`bench worker exited (${String(code)})`));
    });
  });
  return { child, readyRssMb };
}

/** Peak resident set size of a process (Linux VmHWM), MB. */
async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

export async function benchFleet(
  cluster: EphemeralCluster,
  size: number,
  maxConcurrency: number,
): Promise<FleetBench> {
  const kube = cluster.connection.client;
  await playV4Core(kube);
  await installHostCrds(kube);
  const fleet = uniqueName(`sim${size}`).slice(0, 24);
  const dir = await tempDir(fleet);
  const configFile = path.join(dir, 'sim.yaml');
  await writeFile(
    configFile,
    yaml.dump({
      storage: { local: { path: path.join(dir, 'backups') } },
      validator: { ksVersion: { enabled: false }, extensionsMuseum: { enabled: false } },
      jobs: Object.fromEntries(SIM_JOBS.map((j) => [j, { enabled: true }])),
    }),
  );
  const names = Array.from({ length: size }, (_, i) =>
    i === 0 ? `${fleet}-host` : `${fleet}-m${String(i).padStart(4, '0')}`,
  );
  // Untimed: each simulated member's Cluster object on the host, marked as the core job marks it.
  await forEachLimit(names.slice(1), 16, (n) => registerMember(kube, n));
  const context = (yaml.load(await readFile(cluster.kubeconfig, 'utf8')) as { contexts: { name: string }[] })
    .contexts[0]?.name;
  const canary = Math.min(10, size - 1);
  const input: FleetInput = {
    fleet,
    defaults: {
      skipChecks: DEMO_SKIP_CHECKS,
      kubeconfig: cluster.kubeconfig,
      useDefaults: false,
      configFiles: [configFile],
      gate: 'none',
    },
    clusters: names.map((n, i) => ({
      name: n,
      role: i === 0 ? 'host' : 'member',
      context: context ?? '',
      gateways: [],
    })),
    waves: [
      { name: 'host', clusters: [names[0] ?? ''] },
      { name: 'canary', clusters: names.slice(1, 1 + canary) },
      { name: 'rest', clusters: names.slice(1 + canary) },
    ],
    maxConcurrency,
    failureBudget: { count: 0 },
    tuning: { verifyIntervalMs: 1000, observeIntervalMs: 2000 },
  };
  const { client, connection, native } = await temporalClients();
  const taskQueue = uniqueName('bench-fleet');
  const { child: worker, readyRssMb } = await startBenchWorker(taskQueue);
  try {
    const t0 = Date.now();
    const handle = await client.workflow.start('upgradeFleet', {
      taskQueue,
      workflowId: fleetWorkflowId(fleet),
      args: [input],
    });
    const result = (await handle.result()) as FleetResult;
    const wallMs = Date.now() - t0;
    const rss = await peakRssMb(worker.pid ?? 0);
    let largestFleetHistory = 0;
    for await (const w of client.workflow.list({ query: `WorkflowId = '${handle.workflowId}'` })) {
      const events =
        (await client.workflow.getHandle(handle.workflowId, w.runId).fetchHistory()).events?.length ?? 0;
      largestFleetHistory = Math.max(largestFleetHistory, events);
    }
    let largestChildHistory = 0;
    for (const n of names.slice(0, 20)) {
      const events = (await client.workflow.getHandle(`ks-upgrade-${n}`).fetchHistory()).events?.length ?? 0;
      largestChildHistory = Math.max(largestChildHistory, events);
    }
    return {
      name: `fleet of ${size} simulated clusters`,
      simulation: `no-op plugin jobs ${SIM_JOBS.join(', ')}; one real API server behind every cluster`,
      clusters: size,
      maxConcurrency,
      wallMs,
      clustersPerMinute: Math.round((size / wallMs) * 60_000),
      workerReadyRssMb: readyRssMb,
      workerPeakRssMb: rss,
      runs: result.runs,
      largestFleetHistory,
      largestChildHistory,
      status: result.status,
    };
  } finally {
    worker.kill('SIGTERM');
    await connection.close();
    await native.close();
  }
}

export function formatFleet(b: FleetBench): string {
  return [
    `${b.name} — SIMULATION (${b.simulation})`,
    `  result            ${b.status}, ${b.clusters} clusters, at most ${b.maxConcurrency} in flight, one worker`,
    `  wall time         ${(b.wallMs / 1000).toFixed(1)} s (${b.clustersPerMinute} clusters/min)`,
    `  worker peak RSS   ${b.workerPeakRssMb} MB (target ≤ 512 MB; ${b.workerReadyRssMb} MB when it started polling)`,
    `  largest history   ${b.largestFleetHistory} events in one fleet run (target ≤ 10000); ${b.runs} runs (continue-as-new ${b.runs - 1}×); child ≤ ${b.largestChildHistory}`,
  ].join('\n');
}
