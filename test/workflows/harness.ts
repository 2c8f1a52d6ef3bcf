// The fast workflow suite's harness: the real upgradeCluster workflow code on Temporal's
// time-skipping test server, with fake activities (our code, scripted per test) standing in for the
// cluster. Each test gets a FakeCluster: the jobs it plans, the steps that fail or block, and a log
// of every activity call in order, which the tests compare against what the workflow must do.
import { ApplicationFailure, Context, activityInfo } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import { after, afterEach, before } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type {
  ArchiveAttemptRequest,
  CoreUpgradeWaitRequest,
  JobPhaseRequest,
  UpgradeActivities,
} from '../../activities/index.js';
import type { Phase } from '../../src/jobs/types.js';
import type { UpgradeClusterInput } from '../../src/upgrade/input.js';
import type { PlannedJobSteps, UpgradePlan } from '../../src/upgrade/plan.js';
import { GATE_TIMEOUT, progressQuery, type UpgradeProgress } from '../../workflows/messages.js';
import type { upgradeCluster } from '../../workflows/upgrade.js';
import { uniqueName } from '../helpers/env.js';
import { sourceWorkflowBundle, startTimeSkippingEnv, type TimeSkippingEnv } from '../helpers/workflow-env.js';

export const FORWARD: Phase[] = ['prepare-upgrade', 'pre-upgrade', 'post-upgrade'];

/** How a scripted step fails. */
export interface FakeFailure {
  message: string;
  hint?: string;
  nonRetryable?: boolean;
}

/** A cluster as the fake activities see it. Tests change it while the workflow runs. */
export class FakeCluster {
  readonly name = uniqueName('wf').slice(0, 40);
  /** Every activity call, in order: `plan`, `check <phase>`, `<phase> <job>`, `detect`, `archive`. */
  readonly calls: string[] = [];
  /** Steps (`<phase> <job>`) that fail while listed; delete the entry to "fix" the cause. */
  readonly failing = new Map<string, FakeFailure>();
  /** Steps that heartbeat until cancelled, then record `<phase> <job> cancelled`. */
  readonly blocking = new Set<string>();
  /** Steps that report the job is not enabled on this cluster (outcome `skipped`). */
  readonly notEnabled = new Set<string>();
  /** Phase checks that say "skip this phase" (the original's validators). */
  readonly skipPhase = new Map<Phase, string>();
  planFailure: FakeFailure | undefined;
  checkFailure: FakeFailure | undefined;
  /** The detect gate: `ok`, or what it saw when the deadline passed (GateTimeout). */
  detect: { ok: true } | { ok: false; lastSeen: string } = { ok: true };
  /** Retryable failures of the detect activity before its result (an API server hiccup). */
  detectHiccups = 0;
  archiveFailure: FakeFailure | undefined;
  /** Gate helm's core rollback fails while set. */
  coreRollbackFailure: FakeFailure | undefined;
  /** The preflight and verification activities that ran (kept out of `calls`). */
  readonly checks: string[] = [];
  readonly detectRequests: CoreUpgradeWaitRequest[] = [];
  readonly archiveRequests: ArchiveAttemptRequest[] = [];
  /** Attempts per activity key, as Temporal counted them. */
  readonly attempts = new Map<string, number[]>();
  readonly jobs: { name: string; phases: Phase[] }[];

  constructor(jobs?: { name: string; phases: Phase[] }[]) {
    const all: Phase[] = [...FORWARD, 'dynamic-upgrade', 'rollback'];
    this.jobs = jobs ?? ['alpha', 'beta', 'gamma'].map((name) => ({ name, phases: all }));
  }

  plan(): UpgradePlan {
    return {
      cluster: this.name,
      configSha256: 'fake',
      configFiles: [],
      gate: 'none',
      validators: { ksVersion: true, extensionsMuseum: true },
      jobs: this.jobs.map((j, i): PlannedJobSteps => ({
        name: j.name,
        priority: 300 - i * 100,
        enabled: true,
        reason: 'enabled',
        phases: j.phases,
        retry: { maximumAttempts: 2, initialIntervalMs: 10, maximumIntervalMs: 10 },
        timeoutMs: 600_000,
      })),
    };
  }

  /** The calls of one kind, e.g. `rollback` → [`rollback gamma`, …]. */
  callsOf(prefix: string): string[] {
    return this.calls.filter((c) => c.startsWith(prefix));
  }

  count(key: string): void {
    const list = this.attempts.get(key) ?? [];
    list.push(activityInfo().attempt);
    this.attempts.set(key, list);
  }
}

function fail(f: FakeFailure): ApplicationFailure {
  return ApplicationFailure.create({
    message: f.message,
    type: 'FakeStepError',
    nonRetryable: f.nonRetryable ?? false,
    details: [{ attempt: activityInfo().attempt, ...(f.hint ? { hint: f.hint } : {}) }],
  });
}

/** Heartbeats until the activity is cancelled; then throws what cancellation throws. */
async function blockUntilCancelled(): Promise<never> {
  const ctx = Context.current();
  for (;;) {
    ctx.heartbeat();
    await Promise.race([ctx.sleep(50), ctx.cancelled]);
  }
}

/** The activities of the upgrade, played by the FakeCluster named in each request's input. */
export function fakeActivities(clusters: Map<string, FakeCluster>): UpgradeActivities {
  const of = (input: UpgradeClusterInput): FakeCluster => {
    const c = clusters.get(input.cluster);
    if (!c) throw ApplicationFailure.nonRetryable(`no fake cluster ${input.cluster}`, 'TestSetupError');
    return c;
  };
  return {
    planUpgrade(input: UpgradeClusterInput) {
      const c = of(input);
      c.calls.push('plan');
      c.count('plan');
      if (c.planFailure) return Promise.reject(fail(c.planFailure));
      return Promise.resolve(c.plan());
    },
    checkPhase(req) {
      const c = of(req.input);
      c.calls.push(`check ${req.phase}`);
      if (c.checkFailure) return Promise.reject(fail(c.checkFailure));
      const reason = c.skipPhase.get(req.phase);
      return Promise.resolve(reason === undefined ? { ok: true, reason: 'fake' } : { ok: false, reason });
    },
    async runJobPhase(req: JobPhaseRequest) {
      const c = of(req.input);
      const key = `${req.phase} ${req.job}`;
      c.calls.push(key);
      c.count(key);
      if (c.blocking.has(key)) {
        try {
          await blockUntilCancelled();
        } catch (err) {
          c.calls.push(`${key} cancelled`);
          throw err;
        }
      }
      const failure = c.failing.get(key);
      if (failure) throw fail(failure);
      const skipped = c.notEnabled.has(key);
      return {
        name: req.job,
        outcome: skipped ? 'skipped' : 'succeeded',
        ...(skipped ? { reason: 'not enabled on this cluster' } : {}),
        durationMs: 1,
        configSha256: 'fake',
        attempt: activityInfo().attempt,
      };
    },
    waitForCoreUpgrade(req: CoreUpgradeWaitRequest) {
      const c = of(req.input);
      c.calls.push('detect');
      c.count('detect');
      c.detectRequests.push(req);
      if (c.detectHiccups > 0) {
        c.detectHiccups--;
        return Promise.reject(fail({ message: 'connection refused' }));
      }
      if (c.detect.ok)
        return Promise.resolve({ ok: true, reason: 'ks-core v4.1.3 deployed and ks-apiserver ready' });
      return Promise.reject(
        ApplicationFailure.create({
          type: GATE_TIMEOUT,
          nonRetryable: true,
          message: `KubeSphere v4 core not detected; last seen: ${c.detect.lastSeen}`,
          details: [
            { attempt: activityInfo().attempt, lastSeen: c.detect.lastSeen, hint: 'run helm upgrade' },
          ],
        }),
      );
    },
    preflightCluster(req: { input: UpgradeClusterInput }) {
      const c = of(req.input);
      c.checks.push('preflight');
      return Promise.resolve({ cluster: c.name, ok: true, checkedAt: '2026-12-02T00:00:00Z', checks: [] });
    },
    verifyCluster(req: { input: UpgradeClusterInput }) {
      const c = of(req.input);
      c.checks.push('verify');
      return Promise.resolve({ cluster: c.name, ok: true, checkedAt: '2026-12-02T00:00:00Z', findings: [] });
    },
    applyCoreCrds(req: { input: UpgradeClusterInput }) {
      of(req.input).calls.push('crds');
      return Promise.resolve({ chart: 'ks-core-1.1.4', crds: 12 });
    },
    upgradeCoreRelease(req: { input: UpgradeClusterInput; attempt: number }) {
      of(req.input).calls.push(`helm upgrade ${req.attempt}`);
      return Promise.resolve({ revision: 2, chart: 'ks-core-1.1.4', ranHelm: true, reason: 'upgraded' });
    },
    rollbackCoreRelease(req: { input: UpgradeClusterInput }) {
      const c = of(req.input);
      c.calls.push('helm rollback');
      if (c.coreRollbackFailure) return Promise.reject(fail(c.coreRollbackFailure));
      return Promise.resolve({
        rolledBack: true,
        revision: 3,
        target: 1,
        restored: 4,
        deleted: 0,
        reason: 'back at revision 1',
      });
    },
    archiveAttempt(req: ArchiveAttemptRequest) {
      const c = of(req.input);
      c.calls.push('archive');
      c.count('archive');
      c.archiveRequests.push(req);
      if (c.archiveFailure) return Promise.reject(fail(c.archiveFailure));
      return Promise.resolve({ folder: `${c.name}/_attempts/aborted-x/`, moved: req.jobs.length });
    },
  };
}

export type UpgradeHandle = WorkflowHandle<typeof upgradeCluster>;

/** One time-skipping server, one workflow bundle and one worker (restartable) per test file. */
export class WorkflowHarness {
  readonly clusters = new Map<string, FakeCluster>();
  readonly taskQueue = uniqueName('wf-suite');
  private worker: Worker | undefined;
  private running: Promise<void> | undefined;

  private constructor(private readonly server: TimeSkippingEnv) {}

  get env(): TestWorkflowEnvironment {
    return this.server.env;
  }

  static async start(): Promise<WorkflowHarness> {
    const h = new WorkflowHarness(await startTimeSkippingEnv());
    await h.startWorker();
    return h;
  }

  /**
   * A worker without a workflow cache: every workflow task replays the history from the start, so
   * every test also checks that each path replays deterministically.
   */
  async startWorker(): Promise<void> {
    this.worker = await Worker.create({
      connection: this.env.nativeConnection,
      taskQueue: this.taskQueue,
      workflowBundle: await sourceWorkflowBundle(),
      activities: fakeActivities(this.clusters),
      maxCachedWorkflows: 0,
    });
    this.running = this.worker.run();
  }

  async stopWorker(): Promise<void> {
    this.worker?.shutdown();
    await this.running;
    this.worker = undefined;
  }

  async stop(): Promise<void> {
    await this.stopWorker();
    await this.server.teardown();
  }

  private readonly started: UpgradeHandle[] = [];

  /** Starts an upgrade of `cluster` (gate none, short heartbeat timeout) with `extra` input. */
  async start(cluster: FakeCluster, extra: Partial<UpgradeClusterInput> = {}): Promise<UpgradeHandle> {
    this.clusters.set(cluster.name, cluster);
    return this.startRaw({
      cluster: cluster.name,
      useDefaults: false,
      gate: 'none',
      ...extra,
      // Short: a cancelled fake step hears of it at its next heartbeat (80% of this, throttled).
      tuning: { heartbeatTimeout: '2s', ...extra.tuning },
    });
  }

  /** Starts the workflow with any input at all (bad input tests). */
  async startRaw(input: unknown): Promise<UpgradeHandle> {
    const handle = await this.env.client.workflow.start<typeof upgradeCluster>('upgradeCluster', {
      taskQueue: this.taskQueue,
      workflowId: uniqueName('wf-run'),
      args: [input as UpgradeClusterInput],
    });
    this.started.push(handle);
    return handle;
  }

  /**
   * Starts the workflow with its input given as JSON text, past the client's payload converter:
   * what `temporal workflow start --input` sends, e.g. nesting deeper than JSON.stringify can go.
   */
  async startJson(json: string): Promise<UpgradeHandle> {
    const workflowId = uniqueName('wf-run');
    await this.env.client.workflowService.startWorkflowExecution({
      namespace: this.env.namespace ?? 'default',
      workflowId,
      workflowType: { name: 'upgradeCluster' },
      taskQueue: { name: this.taskQueue },
      input: { payloads: [{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(json) }] },
      identity: 'workflow-suite',
      requestId: uniqueName('req'),
    });
    const handle = this.env.client.workflow.getHandle<typeof upgradeCluster>(workflowId);
    this.started.push(handle);
    return handle;
  }

  /**
   * Ends what a test left running. The time-skipping server holds its clock while any activity runs
   * and, once a workflow is terminated, forgets to release it for that workflow's running activity:
   * so cancel first (which cancels the activity) and terminate only what is still running after.
   */
  async cleanup(): Promise<void> {
    const running: UpgradeHandle[] = [];
    for (const handle of this.started.splice(0)) {
      try {
        if ((await handle.describe()).status.name !== 'RUNNING') continue;
        await handle.cancel();
        running.push(handle);
      } catch {
        // already gone
      }
    }
    const deadline = Date.now() + 60_000;
    for (const handle of running) {
      while (Date.now() < deadline && (await handle.describe()).status.name === 'RUNNING') {
        await new Promise((r) => setTimeout(r, 100));
      }
      if ((await handle.describe()).status.name === 'RUNNING') await handle.terminate('test over');
    }
  }
}

/**
 * Polls `progress` (real time: the test server does not skip time meanwhile) until `predicate`
 * holds in a state the workflow has committed. A worker without a cache answers a query by replaying
 * the whole history, including events its next workflow task has not processed yet: the query can
 * run ahead of the workflow (an operator wait shows before the update can take a decision). So the
 * predicate counts only once no workflow task is pending.
 */
export async function waitFor(
  handle: UpgradeHandle,
  predicate: (p: UpgradeProgress) => boolean,
  what: string,
  timeoutMs = 120_000,
): Promise<UpgradeProgress> {
  const deadline = Date.now() + timeoutMs;
  let last: UpgradeProgress | undefined;
  for (;;) {
    try {
      last = await handle.query(progressQuery);
      if (predicate(last) && !(await handle.describe()).raw.pendingWorkflowTask) {
        last = await handle.query(progressQuery);
        if (predicate(last)) return last;
      }
    } catch (err) {
      // Before the first workflow task the query has no answer yet.
      if (!/(not found|no poller|Workflow task|queried)/i.test(String(err)) && Date.now() > deadline)
        throw err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last progress: ${JSON.stringify(last, null, 1)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The failure a workflow ended with (its cause: ApplicationFailure, CancelledFailure…). A workflow
 * that has not ended within `timeoutMs` of real time (a workflow task failing over and over, say)
 * fails the test.
 */
export async function failureOf(
  handle: UpgradeHandle,
  timeoutMs = 120_000,
): Promise<{
  name: string;
  type?: string;
  message: string;
  details: unknown[];
}> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`the workflow did not end within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    await Promise.race([handle.result(), timeout]);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('the workflow did not end')) throw err;
    const cause = (err as { cause?: unknown }).cause as
      { name: string; type?: string; message: string; details?: unknown[] } | undefined;
    if (!cause) throw err;
    return {
      name: cause.name,
      ...(cause.type ? { type: cause.type } : {}),
      message: cause.message,
      details: cause.details ?? [],
    };
  } finally {
    clearTimeout(timer);
  }
  throw new Error('the workflow succeeded; a failure was expected');
}

/**
 * The harness of a test file: started before its tests, cleaned up after each, stopped at the end.
 * Returns a getter (the harness exists only once `before` ran).
 */
export function useHarness(): () => WorkflowHarness {
  let h: WorkflowHarness | undefined;
  before(async () => {
    h = await WorkflowHarness.start();
  });
  afterEach(async () => {
    await h?.cleanup();
  });
  after(async () => {
    await h?.stop();
  });
  return () => {
    if (!h) throw new Error('the workflow harness is not started');
    return h;
  };
}

/** The upgrade waits for an operator decision. */
export const awaiting = (p: UpgradeProgress): boolean => p.status === 'AwaitingOperator';
