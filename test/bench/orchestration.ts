// What Temporal costs per activity: N no-op jobs × 4 phases as one `upgradeCluster` workflow on an
// in-process worker, against the same jobs' phases run in-process (`runJobPhase`, no Temporal).
// Per activity, from the workflow history: from the previous job activity's completion (or this
// one's scheduling, for the first) to this one's completion — scheduling, the workflow task that
// decides the next step, dispatch to the worker, the phase, and the completion round trip.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { Worker, type NativeConnection } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runJobPhase,
  type JobFactory,
  type Phase,
} from '../../src/jobs/index.js';
import { createResourceStore } from '../../src/store/index.js';
import { startUpgrade } from '../../src/temporal/client.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { devEnv, uniqueName } from '../helpers/env.js';
import { configWithJobs } from '../helpers/jobs.js';
import { DEMO_SKIP_CHECKS, startWorker, temporalClients } from '../helpers/upgrade.js';
import type { Row } from './harness.js';
import { median, percentile } from './measure.js';

const PHASES: Phase[] = ['prepare-upgrade', 'pre-upgrade', 'post-upgrade', 'dynamic-upgrade'];
// CommonJS module: its namespace comes as the default export under ESM.
const EventType = proto.temporal.api.enums.v1.EventType;

function noopFactory(name: string): JobFactory {
  const noop = (): Promise<void> => Promise.resolve();
  return {
    name,
    access: [],
    create: () => ({ prepareUpgrade: noop, preUpgrade: noop, postUpgrade: noop, dynamicUpgrade: noop }),
  };
}

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): number =>
  Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;

interface Split {
  /** From the previous such activity's completion (or this one's scheduling) to this one's. */
  perActivity: number[];
  /**
   * Where the time goes: deciding the next step (workflow task), waiting for a worker to pick the
   * activity up, and running it plus reporting the result.
   */
  parts: { decide: number[]; dispatch: number[]; run: number[] };
}

/** Per-activity times of the activities of one type, from a workflow history. */
function splitHistory(history: proto.temporal.api.history.v1.IHistory, activityType: string): Split {
  const out: Split = { perActivity: [], parts: { decide: [], dispatch: [], run: [] } };
  const scheduled = new Map<string, { type: string; at: number }>();
  const started = new Map<string, number>();
  let previousEnd: number | undefined;
  for (const e of history.events ?? []) {
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      scheduled.set(String(e.eventId), {
        type: e.activityTaskScheduledEventAttributes?.activityType?.name ?? '',
        at: ms(e.eventTime),
      });
    } else if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
      started.set(String(e.activityTaskStartedEventAttributes?.scheduledEventId), ms(e.eventTime));
    } else if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
      const id = String(e.activityTaskCompletedEventAttributes?.scheduledEventId);
      const s = scheduled.get(id);
      if (s?.type !== activityType) continue;
      const end = ms(e.eventTime);
      const start = started.get(id) ?? s.at;
      out.parts.decide.push(s.at - (previousEnd ?? s.at));
      out.parts.dispatch.push(start - s.at);
      out.parts.run.push(end - start);
      out.perActivity.push(end - (previousEnd ?? s.at));
      previousEnd = end;
    }
  }
  return out;
}

/**
 * What the platform alone costs per activity on this server: a bare workflow that runs `n` no-op
 * activities one after another (test/bench/bare-chain-workflow.ts, default data converter), on a
 * worker of its own in this process. Our overhead is what `upgradeCluster` adds on top of it.
 */
async function bareTemporal(native: NativeConnection, client: Client, n: number): Promise<number[]> {
  const taskQueue = uniqueName('bare');
  const worker = await Worker.create({
    connection: native,
    namespace: devEnv().temporalNamespace,
    taskQueue,
    workflowsPath: fileURLToPath(new URL('./bare-chain-workflow.ts', import.meta.url)),
    activities: { noop: () => Promise.resolve() },
  });
  const run = worker.run();
  try {
    const handle = await client.workflow.start('bareChain', { taskQueue, workflowId: taskQueue, args: [n] });
    await handle.result();
    return splitHistory(await handle.fetchHistory(), 'noop').perActivity;
  } finally {
    worker.shutdown();
    await run;
  }
}

export async function benchOrchestration(cluster: EphemeralCluster, jobs: number): Promise<Row> {
  const names = Array.from({ length: jobs }, (_, i) => `noop-${String(i).padStart(2, '0')}`);
  const registry = new JobRegistry();
  for (const n of names) registry.register(noopFactory(n));
  const jobConfig = Object.fromEntries(
    names.map((n, i) => [n, { enabled: true, priority: 1000 - i, dynamicOptions: {} }]),
  );
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-noop-'));
  try {
    // In-process: the same phases through runJobPhase (the activity's core), timed one by one.
    const store = await createResourceStore({ local: { path: path.join(dir, 'inproc') } });
    const instantiated = instantiateJobs(configWithJobs(jobConfig), registry);
    const inProcess: number[] = [];
    for (const phase of PHASES) {
      for (const j of instantiated) {
        const t0 = process.hrtime.bigint();
        const r = await runJobPhase(
          j.job,
          createJobContext({
            job: j.name,
            phase,
            cluster: { name: 'bench' },
            kube: cluster.connection.client,
            store,
            config: j.config,
            logger: createMemoryLogger(),
          }),
        );
        inProcess.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (r.outcome !== 'succeeded') throw new Error(`${j.name} ${phase}: ${r.outcome}`);
      }
    }

    // Through Temporal.
    const configFile = path.join(dir, 'config.yaml');
    await writeFile(
      configFile,
      yaml.dump({ storage: { local: { path: path.join(dir, 'store') } }, jobs: jobConfig }),
    );
    const { client, connection, native } = await temporalClients();
    const { worker, run, taskQueue } = await startWorker(native, registry);
    let perActivity: number[] = [];
    const parts: Split['parts'] = { decide: [], dispatch: [], run: [] };
    let bare: number[] = [];
    let wallMs = 0;
    try {
      const t0 = Date.now();
      const { handle } = await startUpgrade(
        client,
        {
          cluster: uniqueName('noop').slice(0, 40),
          kube: { kubeconfig: cluster.kubeconfig },
          configFiles: [configFile],
          useDefaults: false,
          gate: 'none',
          phases: PHASES,
          skipChecks: DEMO_SKIP_CHECKS,
        },
        taskQueue,
      );
      // result() rejects unless the upgrade succeeded.
      await handle.result();
      wallMs = Date.now() - t0;
      const split = splitHistory(await handle.fetchHistory(), 'runJobPhase');
      perActivity = split.perActivity;
      Object.assign(parts, split.parts);
      bare = await bareTemporal(native, client, jobs * PHASES.length);
    } finally {
      worker.shutdown();
      await run;
      await connection.close();
      await native.close();
    }
    if (perActivity.length !== jobs * PHASES.length) {
      throw new Error(
        `${perActivity.length} job activities in the history, expected ${jobs * PHASES.length}`,
      );
    }
    const inMedian = median(inProcess);
    perActivity = perActivity.map((x) => x - inMedian);
    const med = median(perActivity);
    const p95 = percentile(perActivity, 95);
    const bareMedian = median(bare);
    return {
      id: 'orchestration',
      workload: `orchestration overhead, ${jobs} no-op jobs × ${PHASES.length} phases`,
      baseline: {
        label: 'the same phases in-process (runJobPhase), median per phase',
        value: inMedian,
        unit: 'ms',
      },
      ours: {
        label: `through Temporal, overhead per activity (median; p95 ${p95.toFixed(1)} ms; workflow wall ${(wallMs / 1000).toFixed(1)} s; a bare Temporal workflow of no-op activities on the same server: ${bareMedian.toFixed(1)} ms, so ours adds ${(med - bareMedian).toFixed(1)} ms)`,
        value: med,
        unit: 'ms',
      },
      ratio: med,
      ratioLabel: ' ms per activity (median)',
      target: '≤ 20 ms per activity, median',
      met: med <= 20,
      rounds: 1,
      extra: {
        medianParts: {
          decideNextStepMs: median(parts.decide),
          waitForWorkerMs: median(parts.dispatch),
          runAndReportMs: median(parts.run),
        },
        p95,
        wallMs,
        activities: perActivity.length,
        inProcessP95: percentile(inProcess, 95),
        bareTemporal: { medianMs: bareMedian, p95Ms: percentile(bare, 95), activities: bare.length },
        ourOwnMs: med - bareMedian,
      },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
