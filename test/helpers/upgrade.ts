import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import { ConfigMapResource, NamespaceResource } from '../../src/api/core.js';
import type { JobRegistry } from '../../src/jobs/registry.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { createUpgradeWorker } from '../../src/temporal/worker.js';
import type { UpgradeClusterInput } from '../../src/upgrade/input.js';
import { progressQuery, type UpgradeProgress } from '../../workflows/messages.js';
import { DEMO_JOBS } from '../jobs/demo.js';
import { devEnv, uniqueName } from './env.js';
import { installTestRuntime } from './temporal.js';

/** A namespace with the demo jobs' v3 objects, a config file and a local backup dir. */
export interface DemoSetup {
  cluster: string;
  namespace: string;
  configFile: string;
  storeDir: string;
  log: string;
  dir: string;
  input: UpgradeClusterInput;
}

export async function demoSetup(
  kube: ResourceClient,
  options: {
    /** Extra dynamicOptions per job. */
    jobOptions?: Record<string, Record<string, unknown>>;
    /** Extra job settings (retry, timeout…) for every job. */
    jobSettings?: Record<string, unknown>;
    storage?: Record<string, unknown>;
    extraConfig?: Record<string, unknown>;
  } = {},
): Promise<DemoSetup> {
  const env = devEnv();
  const cluster = uniqueName('demo').slice(0, 40);
  const namespace = cluster;
  const dir = await mkdtemp(path.join(tmpdir(), 'ks-upgrade-e2e-'));
  const storeDir = path.join(dir, 'backups');
  const log = path.join(dir, 'steps.log');
  await writeFile(log, '');
  await kube.create(NamespaceResource, { metadata: { name: namespace } });
  for (const job of DEMO_JOBS) {
    await kube.create(ConfigMapResource, {
      metadata: { name: `${job}-v3`, namespace },
      data: { owner: job },
    });
  }
  const jobs = Object.fromEntries(
    DEMO_JOBS.map((job, i) => [
      job,
      {
        enabled: true,
        priority: 300 - i * 100,
        ...options.jobSettings,
        dynamicOptions: { namespace, log, ...options.jobOptions?.[job] },
      },
    ]),
  );
  const configFile = path.join(dir, 'config.yaml');
  await writeFile(
    configFile,
    yaml.dump({ storage: options.storage ?? { local: { path: storeDir } }, jobs, ...options.extraConfig }),
  );
  return {
    cluster,
    namespace,
    configFile,
    storeDir,
    log,
    dir,
    input: {
      cluster,
      kube: { kubeconfig: env.kubeconfig, context: env.kubeContext },
      configFiles: [configFile],
      useDefaults: false,
      gate: 'none',
      tuning: { heartbeatTimeout: '5s' },
      skipChecks: DEMO_SKIP_CHECKS,
    },
  };
}

/** The demo jobs run on a bare API server: there is no KubeSphere to find, nor to verify. */
export const DEMO_SKIP_CHECKS = [
  { name: 'kubesphere-version', by: 'test', reason: 'demo jobs on a bare API server' },
  { name: 'verification', by: 'test', reason: 'demo jobs on a bare API server' },
];

/** Temporal client + native connection to the dev server (close both in `after`). */
export async function temporalClients(): Promise<{
  client: Client;
  connection: Connection;
  native: NativeConnection;
}> {
  installTestRuntime();
  const env = devEnv();
  const connection = await Connection.connect({ address: env.temporalAddress });
  const native = await NativeConnection.connect({ address: env.temporalAddress });
  return { client: new Client({ connection, namespace: env.temporalNamespace }), connection, native };
}

/** An in-process worker on its own task queue; `run` is its run promise. */
export async function startWorker(
  native: NativeConnection,
  registry: JobRegistry,
  taskQueue = uniqueName('tq'),
): Promise<{ worker: Worker; run: Promise<void>; taskQueue: string }> {
  const worker = await createUpgradeWorker({
    connection: native,
    namespace: devEnv().temporalNamespace,
    taskQueue,
    registry,
  });
  return { worker, run: worker.run(), taskQueue };
}

/** Polls the progress query until `predicate` holds (or throws with the last progress seen). */
export async function waitForProgress(
  handle: WorkflowHandle,
  predicate: (p: UpgradeProgress) => boolean,
  timeoutMs = 60_000,
): Promise<UpgradeProgress> {
  const deadline = Date.now() + timeoutMs;
  let last: UpgradeProgress | undefined;
  while (Date.now() < deadline) {
    try {
      last = await handle.query(progressQuery);
      if (predicate(last)) return last;
    } catch {
      // the first workflow task may not have run yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `timed out waiting for progress; last: ${JSON.stringify(last?.status)} ${JSON.stringify(last?.awaiting ?? {})}`,
  );
}

/** Lines of the demo jobs' step log. */
export async function stepLog(file: string): Promise<string[]> {
  const { readFile } = await import('node:fs/promises');
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
}

/** Runs the built `temporal` CLI against the dev server; resolves with exit code and output. */
export async function temporalCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { execFile } = await import('node:child_process');
  const env = devEnv();
  return new Promise((resolve) => {
    execFile(
      env.temporalCliPath,
      [...args, '--address', env.temporalAddress, '--namespace', env.temporalNamespace],
      { timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Fast retries so a failing step reaches the operator in about a second. */
export const FAST_RETRY = {
  retry: { maximumAttempts: 2, initialInterval: '100ms', maximumInterval: '100ms' },
};
