// The full default upgrade of the fixture (host + member fleet, every v3 component, every job of the
// original enabled; test/helpers/full-upgrade.ts), wall time through Temporal against the sum of
// the same steps run in-process — two fresh fixtures, one per side, in the same bench run.
//
// Ours: `upgradeCluster` on a worker in this (the bench) process, started before the timer; the
//   timer runs from `startUpgrade` to `result()`. The bench plays the detect gate's stand-in
//   (`playCoreUpgrade` + `writeExtensionCharts`) when the progress query shows the gate.
// Baseline: the steps the workflow's activities run, in the workflow's order, called in-process
//   one after another, each timed, summed: the plan (loadUpgradeConfig + buildUpgradePlan), the
//   preflight (the concurrent-upgrade lookup through Temporal + preflightUpgrade), per phase of the
//   default phases the phase check (as `checkPhase`) and every enabled job's step (`executeJobPhase`,
//   what `runJobPhase` calls), the detect gate before post-upgrade (`waitForCoreUpgrade`, started
//   when pre-upgrade ends while the stand-in plays the core upgrade, as the workflow's activity is),
//   and the verification (`verifyUpgrade`). Same poll intervals and heartbeat timeout as the
//   activities derive from the fixture's input.
// The stand-in's time (playing `helm upgrade ks-core`) is subtracted from both sides.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { Logger, Phase } from '../../src/jobs/types.js';
import type { PreflightReport } from '../../src/preflight/index.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { runningUpgrades } from '../../src/temporal/upgrades.js';
import { checkKsVersion, waitForCoreUpgrade, waitForMuseumSync } from '../../src/upgrade/checks.js';
import { buildUpgradePlan, loadUpgradeConfig, type UpgradePlan } from '../../src/upgrade/plan.js';
import { clusterConnection } from '../../src/upgrade/runtime.js';
import { executeJobPhase } from '../../src/upgrade/step.js';
import { preflightUpgrade, verifyUpgrade } from '../../src/upgrade/verification.js';
import { DEFAULT_PHASES, tuningMs } from '../../workflows/pure/input.js';
import { progressQuery, type UpgradeResult } from '../../workflows/messages.js';
import type { upgradeCluster } from '../../workflows/upgrade.js';
import { writeExtensionCharts } from '../fixtures/kubesphere-v4/extensions.js';
import { devEnv } from '../helpers/env.js';
import { prepareFullUpgrade, type FullUpgradeFixture } from '../helpers/full-upgrade.js';
import { playCoreUpgrade } from '../helpers/kubesphere.js';
import { startWorker, temporalClients, waitForProgress } from '../helpers/upgrade.js';
import type { Row } from './harness.js';
import { median } from './measure.js';

// CommonJS module: its namespace comes as the default export under ESM.
const EventType = proto.temporal.api.enums.v1.EventType;

/** The activities' poll intervals (activities/index.ts `pollInterval`: ≥ 200 ms, ≤ a third of the heartbeat timeout). */
const pollInterval = (preferredMs: number, heartbeatMs: number | undefined): number =>
  heartbeatMs ? Math.max(200, Math.min(preferredMs, Math.floor(heartbeatMs / 3))) : preferredMs;
const DEFAULT_DETECT_MS = 2 * 3_600_000; // workflows/activities.ts
const VERIFY_WAIT_MS = 5 * 60_000; // activities/checks.ts, verifyCluster's default
const GATE_WAIT_MS = 600_000;

/** One step, as an activity type of the workflow and its time. */
interface StepTime {
  type: string;
  label: string;
  ms: number;
}

const sumOf = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
const byType = (steps: readonly StepTime[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const s of steps) out[s.type] = (out[s.type] ?? 0) + s.ms;
  return out;
};
const round = (x: number): number => Math.round(x * 10) / 10;
const roundAll = (r: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)]));

/** Plays `helm upgrade ks-core` on the fixture's host: the stand-in's time, subtracted from both sides. */
async function playGate(fx: FullUpgradeFixture): Promise<number> {
  const t0 = performance.now();
  await playCoreUpgrade(fx.host.connection.client, fx.extensions);
  await writeExtensionCharts(fx.host.connection.client, new Map(fx.extensions));
  return performance.now() - t0;
}

const discard: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

interface InProcess {
  steps: StepTime[];
  playMs: number;
  /** The detect wait alone: from pre-upgrade's end to v4 core detected, minus the stand-in's time. */
  gateMs: number;
}

/** The workflow's steps, in its order, in this process (no Temporal but the preflight's lookup). */
async function inProcess(fx: FullUpgradeFixture, temporal: Client): Promise<InProcess> {
  const { input, registry } = fx;
  const heartbeatMs = tuningMs(input).heartbeatTimeout;
  const detectMs = tuningMs(input).detectTimeout ?? DEFAULT_DETECT_MS;
  const steps: StepTime[] = [];
  const timed = async <T>(type: string, label: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const out = await fn();
    steps.push({ type, label, ms: performance.now() - t0 });
    return out;
  };
  const controller = new AbortController();
  const env = {
    registry,
    logger: discard,
    heartbeat: () => undefined,
    ...(heartbeatMs ? { heartbeatTimeoutMs: heartbeatMs } : {}),
    signal: controller.signal,
  };

  const plan: UpgradePlan = await timed('planUpgrade', 'plan', async () =>
    buildUpgradePlan(input.cluster, await loadUpgradeConfig(input, registry), registry),
  );
  const preflight: PreflightReport = await timed('preflightCluster', 'preflight', async () => {
    const concurrent = await runningUpgrades(
      temporal,
      input.cluster,
      `Temporal namespace ${devEnv().temporalNamespace}`,
    );
    return preflightUpgrade(input, {
      registry,
      concurrent,
      signal: controller.signal,
      heartbeat: () => undefined,
    });
  });
  assert.ok(preflight.ok, `in-process preflight failed: ${JSON.stringify(preflight)}`);

  const phases = input.phases ?? [...DEFAULT_PHASES];
  const gateMode = input.gate ?? plan.gate;
  const gated = phases.includes('pre-upgrade') && phases.includes('post-upgrade') && gateMode !== 'none';
  assert.equal(gateMode, 'detect', 'the fixture upgrades through the detect gate');
  let playMs = 0;
  let gateMs = 0;
  for (const phase of phases) {
    if (phase === 'post-upgrade' && gated) {
      // As the workflow: the detect wait starts when pre-upgrade ends; the stand-in plays meanwhile.
      const t0 = performance.now();
      const { client } = await clusterConnection(input.kube);
      const wait = waitForCoreUpgrade(client, {
        timeoutMs: detectMs,
        intervalMs: pollInterval(5000, heartbeatMs),
      });
      playMs = await playGate(fx);
      await wait;
      gateMs = performance.now() - t0 - playMs;
      steps.push({ type: 'waitForCoreUpgrade', label: 'detect gate (minus the stand-in)', ms: gateMs });
    }
    const check = await timed('checkPhase', `check ${phase}`, () => checkPhase(fx, phase, heartbeatMs));
    if (!check.ok) continue;
    for (const pj of plan.jobs) {
      if (!pj.enabled || !pj.phases.includes(phase)) continue;
      const r = await timed('runJobPhase', `${phase} ${pj.name}`, () =>
        executeJobPhase(input, pj.name, phase, env),
      );
      assert.ok(r.outcome === 'succeeded' || r.outcome === 'skipped', `${phase} ${pj.name}: ${r.outcome}`);
    }
  }
  if (phases.includes('post-upgrade')) {
    const report = await timed('verifyCluster', 'verification', () =>
      verifyUpgrade(input, {
        registry,
        signal: controller.signal,
        waitMs: VERIFY_WAIT_MS,
        heartbeat: () => undefined,
      }),
    );
    assert.ok(report.ok, `in-process verification failed: ${JSON.stringify(report)}`);
  }
  return { steps, playMs, gateMs };
}

/** What the `checkPhase` activity runs (activities/index.ts), with its poll interval. */
async function checkPhase(
  fx: FullUpgradeFixture,
  phase: Phase,
  heartbeatMs: number | undefined,
): Promise<{ ok: boolean; reason: string }> {
  const loaded = await loadUpgradeConfig(fx.input, fx.registry);
  const v = loaded.config.validator;
  const { client } = await clusterConnection(fx.input.kube);
  if ((phase === 'prepare-upgrade' || phase === 'pre-upgrade') && v.ksVersion.enabled) {
    const res = await checkKsVersion(client);
    if (!res.ok) return res;
  }
  if (phase === 'post-upgrade' && v.extensionsMuseum.enabled) {
    return waitForMuseumSync(client, v.extensionsMuseum, { intervalMs: pollInterval(2000, heartbeatMs) });
  }
  return { ok: true, reason: 'no validator applies' };
}

const at = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): number =>
  Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;

/** Where the workflow's wall time went, from its history. */
interface HistorySplit {
  /** Per activity, in order: type, scheduled → started (dispatch), started → completed (run). */
  activities: { type: string; scheduled: number; started: number; completed: number }[];
  workflowStarted: number;
  workflowCompleted: number;
}

function splitHistory(history: proto.temporal.api.history.v1.IHistory): HistorySplit {
  const scheduled = new Map<string, { type: string; at: number }>();
  const started = new Map<string, number>();
  const out: HistorySplit = { activities: [], workflowStarted: NaN, workflowCompleted: NaN };
  for (const e of history.events ?? []) {
    if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
      out.workflowStarted = at(e.eventTime);
    else if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)
      out.workflowCompleted = at(e.eventTime);
    else if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      scheduled.set(String(e.eventId), {
        type: e.activityTaskScheduledEventAttributes?.activityType?.name ?? '',
        at: at(e.eventTime),
      });
    } else if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
      started.set(String(e.activityTaskStartedEventAttributes?.scheduledEventId), at(e.eventTime));
    } else if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
      const id = String(e.activityTaskCompletedEventAttributes?.scheduledEventId);
      const s = scheduled.get(id);
      if (!s) continue;
      out.activities.push({
        type: s.type,
        scheduled: s.at,
        started: started.get(id) ?? s.at,
        completed: at(e.eventTime),
      });
    }
  }
  return out;
}

interface ThroughTemporal {
  wallMs: number;
  playMs: number;
  workerStartMs: number;
  /** From the start to the bench seeing the gate in the progress query. */
  gateSeenMs: number;
  result: UpgradeResult;
  split: HistorySplit;
  /** Timer start and end (performance.timeOrigin-based epoch ms), to line up with the history. */
  t0: number;
  t1: number;
}

/** `upgradeCluster` through Temporal on a worker in this process, gate played by the stand-in. */
async function throughTemporal(fx: FullUpgradeFixture): Promise<ThroughTemporal> {
  const { client, connection, native } = await temporalClients();
  const w0 = performance.now();
  const { worker, run, taskQueue } = await startWorker(native, fx.registry);
  const workerStartMs = performance.now() - w0;
  try {
    const t0 = performance.now();
    const { handle } = await startUpgrade(client, fx.input, taskQueue);
    const h: WorkflowHandle<typeof upgradeCluster> = handle;
    await waitForProgress(
      h,
      (p) => p.status === 'AwaitingCoreUpgrade' || p.awaiting !== undefined,
      GATE_WAIT_MS,
    );
    const gateSeenMs = performance.now() - t0;
    const p = await h.query(progressQuery);
    assert.equal(p.awaiting, undefined, `a step failed: ${JSON.stringify(p.awaiting)}`);
    const playMs = await playGate(fx);
    const result = await h.result();
    const t1 = performance.now();
    assert.equal(result.status, 'Succeeded');
    const failed = result.steps.filter((s) => s.state !== 'succeeded' && s.state !== 'skipped');
    assert.deepEqual(failed, []);
    return {
      wallMs: t1 - t0,
      playMs,
      workerStartMs,
      gateSeenMs,
      result,
      split: splitHistory(await h.fetchHistory()),
      t0: performance.timeOrigin + t0,
      t1: performance.timeOrigin + t1,
    };
  } finally {
    worker.shutdown();
    await run;
    await connection.close();
    await native.close();
  }
}

export type UpgradeSideOrder = 'ours' | 'baseline';

export async function benchUpgrade(first: UpgradeSideOrder = 'ours'): Promise<Row> {
  let ours: ThroughTemporal | undefined;
  let base: InProcess | undefined;
  const runOurs = async (): Promise<void> => {
    process.stderr.write('upgrade: fixture A (host + member), through Temporal…\n');
    const fx = await prepareFullUpgrade();
    try {
      ours = await throughTemporal(fx);
    } finally {
      await fx.stop();
    }
  };
  const runBaseline = async (): Promise<void> => {
    process.stderr.write('upgrade: fixture B (host + member), the same steps in-process…\n');
    const fx = await prepareFullUpgrade();
    const connection = await Connection.connect({ address: devEnv().temporalAddress });
    try {
      base = await inProcess(fx, new Client({ connection, namespace: devEnv().temporalNamespace }));
    } finally {
      await connection.close();
      await fx.stop();
    }
  };
  for (const side of first === 'ours' ? [runOurs, runBaseline] : [runBaseline, runOurs]) await side();
  if (!ours || !base) throw new Error('a side did not run');

  // Ours, by the history: orchestration gaps (workflow tasks between activities, dispatch to the
  // worker) and each activity's run.
  const acts = ours.split.activities;
  const decide: number[] = [];
  const dispatch: number[] = [];
  const runByType: Record<string, number> = {};
  let previous = ours.split.workflowStarted;
  for (const a of acts) {
    decide.push(a.scheduled - previous);
    dispatch.push(a.started - a.scheduled);
    runByType[a.type] = (runByType[a.type] ?? 0) + (a.completed - a.started);
    previous = a.completed;
  }
  // The gate activity's run includes the stand-in's play: subtracted here as from the wall time.
  runByType.waitForCoreUpgrade = (runByType.waitForCoreUpgrade ?? 0) - ours.playMs;
  const startLagMs = ours.split.workflowStarted - ours.t0;
  const tailMs = ours.split.workflowCompleted - previous;
  const resultLagMs = ours.t1 - ours.split.workflowCompleted;

  const oursPlayMs = ours.playMs;
  const oursMs = ours.wallMs - oursPlayMs;
  const baseMs = sumOf(base.steps.map((s) => s.ms));
  const overheadPct = (oursMs / baseMs - 1) * 100;
  const baseByType = byType(base.steps);
  const oursGateMs = runByType.waitForCoreUpgrade;
  // Secondary figure: without the gate on either side (the detect poll's 5 s tick falls differently).
  const noGatePct = ((oursMs - oursGateMs) / (baseMs - base.gateMs) - 1) * 100;
  // Both sides ran the same steps in the same order: pair them, step by step.
  const types = (xs: readonly { type: string }[]): string => xs.map((x) => x.type).join(',');
  if (types(acts) !== types(base.steps)) {
    throw new Error(`different steps: through Temporal ${types(acts)}; in-process ${types(base.steps)}`);
  }
  const jobSteps = base.steps.filter((s) => s.type === 'runJobPhase').length;
  const runOf = (i: number): number => {
    const a = acts[i];
    if (!a) return NaN;
    return a.completed - a.started - (a.type === 'waitForCoreUpgrade' ? oursPlayMs : 0);
  };
  const paired = base.steps.map((b, i) => ({
    step: b.label,
    baselineMs: round(b.ms),
    oursRunMs: round(runOf(i)),
    oursGapMs: round(decide[i] ?? 0),
    oursDispatchMs: round(dispatch[i] ?? 0),
  }));
  // What Temporal adds around the steps (history): start, the workflow tasks between activities,
  // dispatch to the worker, the end and the client's result — independent of how long steps run.
  const orchestrationMs = startLagMs + sumOf(decide) + sumOf(dispatch) + tailMs + resultLagMs;
  const orchestrationPct = (orchestrationMs / baseMs) * 100;
  // The steps whose two runs differ most: the jobs' own waits poll at fixed intervals (vector: the
  // fluent-bit removal every 10 s, the sinks Secret every 5 s), so one step can differ by a whole
  // interval between two runs depending on when the stand-in acted.
  const largestDifferences = [...paired]
    .sort((a, b) => Math.abs(b.oursRunMs - b.baselineMs) - Math.abs(a.oursRunMs - a.baselineMs))
    .slice(0, 5)
    .map((p) => ({ step: p.step, baselineMs: p.baselineMs, oursRunMs: p.oursRunMs }));
  return {
    id: 'upgrade',
    workload: `full default upgrade of the fixture (host + member, ${ours.result.plan.jobs.filter((j) => j.enabled).length} jobs, ${acts.length} activities), wall time`,
    baseline: {
      label: `the same ${base.steps.length} steps in-process, in the workflow's order (plan, preflight, phase checks, executeJobPhase × ${jobSteps}, detect wait, verification), sum minus the stand-in's core upgrade (${(base.playMs / 1000).toFixed(1)} s)`,
      value: baseMs,
      unit: 'ms',
    },
    ours: {
      label: `upgradeCluster through Temporal, start → result, minus the stand-in's core upgrade (${(ours.playMs / 1000).toFixed(1)} s); worker in the bench process, started before the timer (${(ours.workerStartMs / 1000).toFixed(1)} s); Temporal's own time around the steps (history: start, between activities, dispatch, end) ${(orchestrationMs / 1000).toFixed(1)} s = ${orchestrationPct.toFixed(1)} % of the baseline; without the gate on both sides: ${noGatePct.toFixed(1)} %`,
      value: oursMs,
      unit: 'ms',
    },
    ratio: overheadPct,
    ratioLabel: ' % over the baseline',
    target: 'overhead ≤ 10 %',
    met: overheadPct <= 10,
    rounds: 1,
    extra: {
      first,
      oursWallMs: round(ours.wallMs),
      oursPlayMs: round(ours.playMs),
      baselinePlayMs: round(base.playMs),
      workerStartMs: round(ours.workerStartMs),
      gateSeenAfterMs: round(ours.gateSeenMs),
      gateMs: { ours: round(oursGateMs), baseline: round(base.gateMs) },
      overheadWithoutGatePct: round(noGatePct),
      activities: acts.length,
      history: {
        clientToWorkflowStartedMs: round(startLagMs),
        betweenActivitiesMs: {
          sum: round(sumOf(decide)),
          median: round(median(decide)),
          max: round(Math.max(...decide)),
        },
        scheduledToStartedMs: {
          sum: round(sumOf(dispatch)),
          median: round(median(dispatch)),
          max: round(Math.max(...dispatch)),
        },
        lastActivityToWorkflowCompletedMs: round(tailMs),
        workflowCompletedToResultMs: round(resultLagMs),
        runByTypeMs: roundAll(runByType),
      },
      baselineByTypeMs: roundAll(baseByType),
      orchestrationMs: round(orchestrationMs),
      orchestrationPct: round(orchestrationPct),
      largestDifferences,
      steps: paired,
    },
  };
}
