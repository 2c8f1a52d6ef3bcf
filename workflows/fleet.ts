// upgradeFleet: a whole KubeSphere fleet, host first, then members in waves — each cluster an
// `upgradeCluster` child, each wave closed by a gate on the clusters' observed state. Deterministic
// code only: every look at a cluster or at another workflow is an activity.
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/common';
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  ContinueAsNew,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { FleetActivities } from '../activities/fleet.js';
import {
  FLEET_DEFAULTS,
  clusterUpgradeInput,
  gatewayWorkflowId,
  validateFleetInput,
  type FleetInput,
} from './pure/fleet-input.js';
import type { Observation } from '../src/fleet/observe.js';
import { upgradeWorkflowId, type UpgradeClusterInput } from './pure/input.js';
import type { VerificationFinding, VerificationReport } from '../src/verify/types.js';
import {
  approveWaveUpdate,
  cancelFleetUpdate,
  fleetProgressQuery,
  pauseUpdate,
  resolveClusterUpdate,
  resumeUpdate,
  type Approval,
  type ClusterRecord,
  type FleetProgress,
  type FleetResult,
  type FleetStatus,
  type GatewayProgress,
  type OperatorNote,
  type ApproveWaveRequest,
  type ResolveClusterRequest,
} from './fleet/messages.js';
import { FleetState, gateCommands, upgradeCommands } from './fleet/state.js';
import { UpgradeClusterKey, UpgradeFleetKey, UpgradeStatusKey } from './search-attributes.js';
import { upgradeCluster } from './upgrade.js';

const now = (): string => new Date().toISOString();

type Outcome = { ok: true } | { ok: false; error: string };

function errorText(err: unknown): string {
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  if (cause instanceof Error && cause.message) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** The upgrade of a whole fleet; see docs/fleet.md. */
export async function upgradeFleet(input: FleetInput): Promise<FleetResult> {
  const problems = validateFleetInput(input);
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `invalid upgradeFleet input:\n${problems.join('\n')}`,
      'InvalidInput',
    );
  }
  const info = workflowInfo();
  const fleetQueue = info.taskQueue;
  const tuning = { ...FLEET_DEFAULTS, ...input.tuning };
  const fs = new FleetState(input, now());
  const carried = fs.carried;

  let version = 0;
  let status: FleetStatus | undefined;
  let currentWave: string | undefined;
  let awaitingApproval = false;
  let waitingWindow = false;
  const ops: { cancel?: Approval } = {};
  const cancelled = (): boolean => ops.cancel !== undefined;
  let stopped = false;
  let starting = 0;

  const progress = (): FleetProgress => {
    const nowMs = Date.now();
    return {
      fleet: input.fleet,
      status: status ?? 'Running',
      startedAt: carried.startedAt,
      updatedAt: now(),
      run: carried.run,
      historyLength: workflowInfo().historyLength,
      ...(carried.paused ? { paused: carried.paused } : {}),
      ...(ops.cancel ? { cancelRequested: ops.cancel } : {}),
      ...(currentWave ? { currentWave } : {}),
      waves: fs.waveProgress(carried.waveIndex, awaitingApproval, stopped),
      clusters: fs.clusterProgress(fleetQueue),
      budget: { allowed: fs.allowed, failed: fs.failed, awaitingOperator: fs.awaitingOperator },
      decisions: carried.decisions,
      windows: Object.fromEntries(
        Object.entries(carried.windows).map(([k, w]) => [
          k,
          { ...w, open: nowMs >= w.opensAt && nowMs < w.closesAt },
        ]),
      ),
      ...(carried.lastWindow ? { lastWindow: carried.lastWindow } : {}),
    };
  };

  const details = (): string => {
    const counts = new Map<string, number>();
    const waiting: [string, ClusterRecord][] = [];
    for (const [name, rec] of Object.entries(carried.clusters)) {
      counts.set(rec.state, (counts.get(rec.state) ?? 0) + 1);
      if (rec.awaiting) waiting.push([name, rec]);
    }
    const lines = [
      `### Fleet \`${input.fleet}\`: **${status ?? 'Running'}**${currentWave ? ` — wave \`${currentWave}\`` : ''} (run ${carried.run})`,
      `Clusters: ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}. Failures: ${fs.failed} failed, ${waiting.length} waiting for an operator; budget ${fs.allowed}.`,
    ];
    if (carried.paused) lines.push(`Paused by ${carried.paused.by}: ${carried.paused.reason}`);
    if (awaitingApproval && currentWave) {
      lines.push(
        '',
        `**Wave \`${currentWave}\` waits for approval:** \`ks-upgrade fleet approve ${input.fleet} ${currentWave} --reason "<why>"\``,
        `or \`temporal workflow update execute -w ${info.workflowId} --name approveWave --input '{"wave":"${currentWave}","reason":"<why>","by":"<you>"}'\``,
      );
    }
    for (const [name, rec] of waiting.slice(0, 20)) {
      const a = rec.awaiting;
      if (!a) continue;
      lines.push(
        '',
        `**${name}** (${a.kind === 'gate' ? 'wave gate' : `upgrade ${rec.workflowId ?? ''}`}): ${a.error}`,
      );
      if (a.hint) lines.push(`fix: ${a.hint}`);
      for (const cmd of a.commands) lines.push(`- \`${cmd}\``);
    }
    if (waiting.length > 20)
      lines.push('', `… and ${waiting.length - 20} more: \`ks-upgrade fleet status ${input.fleet}\``);
    return lines.join('\n');
  };

  /** Re-derives the status (search attribute only when it changes) and the details. */
  const refresh = (): void => {
    version++;
    const next =
      status === 'Succeeded' ||
      status === 'PartiallySucceeded' ||
      status === 'Failed' ||
      status === 'Cancelled'
        ? status
        : fs.status({ approval: awaitingApproval, window: waitingWindow });
    if (next !== status) {
      status = next;
      upsertSearchAttributes([{ key: UpgradeStatusKey, value: status }]);
    }
    setCurrentDetails(details());
  };
  const end: { status?: FleetStatus } = {};
  const finish = (final: FleetStatus): void => {
    end.status = final;
    status = final;
    upsertSearchAttributes([{ key: UpgradeStatusKey, value: final }]);
    setCurrentDetails(details());
  };

  // ---- operators ------------------------------------------------------------------------------
  setHandler(fleetProgressQuery, progress, {
    description:
      'Waves, every cluster (state, child status, what it waits for and the commands), budget, decisions.',
  });
  const by = (n: OperatorNote): string => (typeof n.by === 'string' && n.by !== '' ? n.by : 'unknown');
  const needReason = (n: OperatorNote): void => {
    if (typeof n !== 'object' || typeof n.reason !== 'string' || n.reason.trim() === '') {
      throw new Error('a reason is required: say why, it is recorded with the decision');
    }
  };
  setHandler(
    approveWaveUpdate,
    (req) => {
      const approval = { by: by(req), reason: req.reason, at: now() };
      carried.approvals[req.wave] = approval;
      fs.decide({ kind: 'approveWave', wave: req.wave, by: approval.by, reason: req.reason }, approval.at);
      refresh();
      return { accepted: true, wave: req.wave };
    },
    {
      validator: (req: ApproveWaveRequest) => {
        needReason(req);
        const index = input.waves.findIndex((w) => w.name === req.wave);
        const wave = input.waves[index];
        if (!wave)
          throw new Error(`no wave '${req.wave}'; waves: ${input.waves.map((w) => w.name).join(', ')}`);
        if (!wave.approval) throw new Error(`wave '${wave.name}' needs no approval`);
        if (carried.approvals[wave.name]) throw new Error(`wave '${wave.name}' is already approved`);
        if (index < carried.waveIndex) throw new Error(`wave '${wave.name}' has already run`);
      },
      description:
        'Let a wave start: {"wave":"<name>","reason":"why","by":"you"}. A later wave may be approved ahead.',
    },
  );
  setHandler(
    pauseUpdate,
    (req) => {
      carried.paused = { by: by(req), reason: req.reason, at: now() };
      fs.decide({ kind: 'pause', by: by(req), reason: req.reason }, carried.paused.at);
      refresh();
      return { accepted: true };
    },
    {
      validator: (req: OperatorNote) => {
        needReason(req);
        if (carried.paused) throw new Error(`already paused by ${carried.paused.by}`);
      },
      description: 'No new cluster starts (those in flight finish): {"reason":"why","by":"you"}.',
    },
  );
  setHandler(
    resumeUpdate,
    (req) => {
      delete carried.paused;
      fs.decide({ kind: 'resume', by: by(req), reason: req.reason }, now());
      refresh();
      return { accepted: true };
    },
    {
      validator: (req: OperatorNote) => {
        needReason(req);
        if (!carried.paused) throw new Error('the fleet is not paused');
      },
      description: 'Start clusters again after pause: {"reason":"why","by":"you"}.',
    },
  );
  setHandler(
    resolveClusterUpdate,
    (req) => {
      const rec = fs.record(req.cluster);
      rec.gateDecision = { ...req, by: by(req) };
      fs.decide(
        { kind: 'resolveCluster', cluster: req.cluster, action: req.action, by: by(req), reason: req.reason },
        now(),
      );
      refresh();
      return { accepted: true };
    },
    {
      validator: (req: ResolveClusterRequest) => {
        needReason(req);
        if (!['retry', 'skip', 'fail'].includes(req.action))
          throw new Error('action must be "retry", "skip" or "fail"');
        if (!input.clusters.some((c) => c.name === req.cluster))
          throw new Error(`no cluster '${req.cluster}' in this fleet`);
        const rec = fs.record(req.cluster);
        if (rec.awaiting?.kind === 'upgrade') {
          throw new Error(
            `the upgrade of ${req.cluster} itself waits: decide there (ks-upgrade resolve ${req.cluster} retry|skip|abort --reason …)`,
          );
        }
        if (rec.awaiting?.kind !== 'gate' || rec.gateDecision)
          throw new Error(`${req.cluster} is not waiting at the wave gate`);
      },
      description:
        'Decide a cluster that fails the wave gate: {"cluster":"<name>","action":"retry"|"skip"|"fail","reason":"why","by":"you"}.',
    },
  );
  setHandler(
    cancelFleetUpdate,
    (req) => {
      ops.cancel = { by: by(req), reason: req.reason, at: now() };
      fs.decide({ kind: 'cancel', by: ops.cancel.by, reason: req.reason }, ops.cancel.at);
      refresh();
      return { accepted: true };
    },
    {
      validator: (req: OperatorNote) => {
        needReason(req);
        if (ops.cancel) throw new Error(`already cancelled by ${ops.cancel.by}`);
      },
      description:
        'Stop the fleet: no cluster starts any more; upgrades in flight run on to their end (they are independent workflows).',
    },
  );

  upsertSearchAttributes([{ key: UpgradeFleetKey, value: input.fleet }]);
  refresh();

  // ---- activities ---------------------------------------------------------------------------------
  // Short reads of cluster state: a worker lost mid-call is noticed within two minutes.
  const base: ActivityOptions = {
    startToCloseTimeout: '2m',
    retry: { maximumAttempts: 5, initialInterval: '2s', maximumInterval: '30s' },
  };
  const on = (taskQueue: string) => proxyActivities<FleetActivities>({ ...base, taskQueue });
  const observer = proxyActivities<FleetActivities>({
    startToCloseTimeout: tuning.observeMaxWaitMs + 5 * 60_000,
    heartbeatTimeout: Math.max(30_000, 3 * tuning.observeIntervalMs),
    retry: { initialInterval: '2s', maximumInterval: '30s' },
  });
  const queueOf = (name: string): string => fs.config(name).taskQueue ?? fleetQueue;
  const inputOf = (name: string): UpgradeClusterInput => clusterUpgradeInput(input, fs.config(name));

  // ---- watching upgrades ----------------------------------------------------------------------------
  interface Watch {
    cluster: string;
    gateway?: GatewayProgress;
    kind: 'child' | 'attached';
    known: string;
    resolve?: (o: Outcome) => void;
  }
  const watched = new Map<string, Watch>();
  let watchVersion = 0;
  const watch = (workflowId: string, w: Watch): void => {
    watched.set(workflowId, w);
    watchVersion++;
  };
  const unwatch = (workflowId: string): void => {
    watched.delete(workflowId);
    watchVersion++;
  };

  const apply = (o: Observation): void => {
    const w = watched.get(o.workflowId);
    if (!w) return;
    w.known = o.cls;
    const rec = fs.record(w.cluster);
    if (!w.gateway) {
      rec.upgradeStatus = o.upgradeStatus;
      rec.phase = o.phase;
      rec.job = o.job;
    }
    if (o.cls === 'awaiting-operator' && o.awaiting) {
      rec.awaiting = {
        kind: 'upgrade',
        ...o.awaiting,
        since: now(),
        commands: upgradeCommands(w.cluster, o.workflowId, o.awaiting.allowed),
      };
    } else if (rec.awaiting?.kind === 'upgrade') {
      delete rec.awaiting;
    }
    if ((o.cls === 'closed' || o.cls === 'missing') && w.resolve) {
      unwatch(o.workflowId);
      w.resolve(
        o.closed?.status === 'COMPLETED'
          ? { ok: true }
          : { ok: false, error: o.closed?.error ?? `${o.workflowId}: ${o.closed?.status ?? 'not found'}` },
      );
    }
    refresh();
  };

  const observeLoop = async (): Promise<void> => {
    for (;;) {
      await condition(() => watched.size > 0);
      const v = watchVersion;
      let seen: Observation[] = [];
      try {
        seen = await observer.observeUpgrades({
          watch: [...watched].map(([workflowId, w]) => ({
            workflowId,
            known: w.known,
            reportClose: w.kind === 'attached',
          })),
          pollMs: tuning.observeIntervalMs,
          maxWaitMs: tuning.observeMaxWaitMs,
        });
      } catch (err) {
        if (isCancellation(err)) throw err;
      }
      for (const o of seen) apply(o);
      if (seen.length === 0) await condition(() => watchVersion !== v, tuning.observeIntervalMs);
    }
  };

  /**
   * Runs an upgradeCluster workflow to its end: as a child, or — when one with this ID already
   * exists (running, or succeeded earlier) — attached to it, never started twice.
   */
  const runUpgrade = async (
    workflowId: string,
    args: UpgradeClusterInput,
    taskQueue: string,
    target: { attached?: boolean; workflowId?: string },
    cluster: string,
    summary: string,
    gateway?: GatewayProgress,
  ): Promise<Outcome> => {
    target.workflowId = workflowId;
    if (!target.attached) {
      let handle: ChildWorkflowHandle<typeof upgradeCluster> | undefined;
      starting++;
      try {
        handle = await startChild(upgradeCluster, {
          workflowId,
          taskQueue,
          args: [args],
          parentClosePolicy: ParentClosePolicy.ABANDON,
          // Cancelling the fleet leaves a cluster's upgrade running: it finishes on its own.
          cancellationType: ChildWorkflowCancellationType.ABANDON,
          // A failed upgrade may start again; a running or succeeded one is attached to instead.
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
          typedSearchAttributes: [
            { key: UpgradeFleetKey, value: input.fleet },
            { key: UpgradeClusterKey, value: cluster },
            { key: UpgradeStatusKey, value: 'Planning' },
          ],
          staticSummary: summary,
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      } finally {
        starting--;
      }
      if (handle) {
        watch(workflowId, { cluster, kind: 'child', known: '', ...(gateway ? { gateway } : {}) });
        try {
          await handle.result();
          return { ok: true };
        } catch (err) {
          if (isCancellation(err)) throw err;
          return { ok: false, error: errorText(err) };
        } finally {
          unwatch(workflowId);
        }
      }
      target.attached = true;
    }
    return new Promise<Outcome>((resolve) => {
      watch(workflowId, { cluster, kind: 'attached', known: '', resolve, ...(gateway ? { gateway } : {}) });
    });
  };

  // ---- the wave gate ------------------------------------------------------------------------------
  const merged = (cluster: string, reports: VerificationReport[]): VerificationReport => ({
    cluster,
    ok: reports.every((r) => r.ok),
    checkedAt: now(),
    findings: reports.flatMap((r) => r.findings),
  });
  const failedCheck = (check: string, err: unknown): VerificationReport => ({
    cluster: '',
    ok: false,
    checkedAt: now(),
    findings: [
      {
        check,
        ok: false,
        evidence: errorText(err),
        fix: 'check that the worker reaches the cluster, then retry',
      },
    ],
  });
  const attempt = async (
    check: string,
    fn: () => Promise<VerificationReport>,
  ): Promise<VerificationReport> => {
    try {
      return await fn();
    } catch (err) {
      if (isCancellation(err)) throw err;
      return failedCheck(check, err);
    }
  };

  /**
   * The cluster's observed state: KubeSphere v4 core, its rollout, InstallPlans, no v3 leftovers.
   * For a member, once that holds: the host's `Schedulable=False (Upgrading)` mark is removed
   * (KubeSphere schedules extensions onto the member again), then its extensions are checked on
   * the host.
   */
  const verifyClusterOnce = async (name: string, rec: ClusterRecord): Promise<VerificationReport> => {
    const c = fs.config(name);
    const core = await attempt('verify', () =>
      on(queueOf(name)).verifyCluster({ input: inputOf(name), waitMs: 0 }),
    );
    if (c.role === 'host' || !core.ok) return merged(name, [core]);
    const host = fs.host;
    const hostActs = on(queueOf(host.name));
    const request = { host: inputOf(host.name), member: c.kubesphereName ?? name };
    const reports = [core];
    if (!rec.schedulableCleared) {
      try {
        const r = await hostActs.clearMemberSchedulable(request);
        rec.schedulableCleared = true;
        rec.note = r.evidence;
      } catch (err) {
        if (isCancellation(err)) throw err;
        return merged(name, [core, failedCheck('schedulable', err)]);
      }
    }
    reports.push(await attempt('member-on-host', () => hostActs.verifyMemberOnHost(request)));
    return merged(name, reports);
  };

  /** Verifies until it holds; past the deadline an operator decides (retry, skip, fail). */
  const verifyLoop = async (
    name: string,
    what: string,
    check: () => Promise<VerificationReport>,
  ): Promise<'passed' | 'accepted' | 'failed'> => {
    const rec = fs.record(name);
    for (;;) {
      if (rec.awaiting?.kind === 'gate') {
        await condition(() => rec.gateDecision !== undefined);
        const d = rec.gateDecision;
        delete rec.gateDecision;
        delete rec.awaiting;
        refresh();
        if (d?.action === 'skip') {
          rec.note = `${what} accepted by ${d.by}: ${d.reason}`;
          return 'accepted';
        }
        if (d?.action === 'fail') {
          rec.error = `${what} failed, decided by ${d.by}: ${d.reason}`;
          return 'failed';
        }
        rec.verifyingSince = now();
      }
      rec.verifyingSince ??= now();
      const report = await check();
      const failed = report.findings.filter((f) => !f.ok);
      rec.verification = { ok: report.ok, failed: failed.map((f) => f.check), checkedAt: report.checkedAt };
      refresh();
      if (report.ok) return 'passed';
      if (Date.now() - Date.parse(rec.verifyingSince) >= tuning.verifyTimeoutMs) {
        const first: VerificationFinding | undefined = failed[0];
        rec.awaiting = {
          kind: 'gate',
          error: `${what}: ${failed.map((f) => `${f.check}: ${f.evidence}`).join('; ')}`.slice(0, 1000),
          ...(first?.fix ? { hint: first.fix } : {}),
          allowed: ['retry', 'skip', 'fail'],
          since: now(),
          commands: gateCommands(input.fleet, info.workflowId, name),
        };
        refresh();
        continue;
      }
      await sleep(tuning.verifyIntervalMs);
    }
  };

  /** The cluster's gateways, one at a time, each verified before the next. */
  const upgradeGateways = async (name: string): Promise<boolean> => {
    const rec = fs.record(name);
    const cluster = inputOf(name);
    const queue = queueOf(name);
    const listed = fs.config(name).gateways;
    // "none" needs no look at the cluster's config and backups. Fleets started before this change
    // asked planGateways anyway: the patch keeps their histories replaying.
    if (!rec.gateways && Array.isArray(listed) && listed.length === 0 && patched('fleet-no-gateways-no-plan'))
      rec.gateways = [];
    if (!rec.gateways) {
      const plan = await on(queue).planGateways({ input: cluster, gateways: listed ?? 'auto' });
      rec.gateways = plan.gateways.map((g) => ({
        name: g,
        state: 'pending',
        workflowId: gatewayWorkflowId(name, g),
      }));
      rec.gatewayJobsOff = plan.disable;
      refresh();
    }
    for (const g of rec.gateways) {
      if (g.state === 'succeeded') continue;
      if (g.state === 'pending' || g.state === 'upgrading') {
        g.state = 'upgrading';
        refresh();
        const jobs: NonNullable<NonNullable<UpgradeClusterInput['overrides']>['jobs']> = {
          ...cluster.overrides?.jobs,
          gateway: {
            ...cluster.overrides?.jobs?.gateway,
            enabled: true,
            dynamicOptions: { ...cluster.overrides?.jobs?.gateway?.dynamicOptions, gatewayName: g.name },
          },
        };
        for (const off of rec.gatewayJobsOff ?? []) jobs[off] = { ...jobs[off], enabled: false };
        const args: UpgradeClusterInput = {
          ...cluster,
          phases: ['dynamic-upgrade'],
          overrides: { ...cluster.overrides, jobs },
        };
        const r = await runUpgrade(
          g.workflowId,
          args,
          queue,
          g,
          name,
          `Upgrade gateway ${g.name} of ${name}`,
          g,
        );
        if (!r.ok) {
          g.state = 'failed';
          g.error = r.error;
          rec.error = `gateway ${g.name}: ${r.error}`;
          return false;
        }
        g.state = 'verifying';
        refresh();
      }
      const verdict = await verifyLoop(name, `gateway ${g.name}`, () =>
        attempt(`gateway/${g.name}`, () => on(queue).verifyGateway({ input: cluster, gateway: g.name })),
      );
      if (verdict === 'failed') {
        g.state = 'failed';
        return false;
      }
      g.state = 'succeeded';
      refresh();
    }
    return true;
  };

  /** One cluster from wherever it is: upgrade, gate, gateways. */
  const runCluster = async (name: string): Promise<void> => {
    const rec = fs.record(name);
    const fail = (error: string): void => {
      rec.state = 'failed';
      rec.error ??= error;
      rec.endedAt = now();
      refresh();
    };
    try {
      if (rec.state === 'pending' || rec.state === 'upgrading') {
        rec.state = 'upgrading';
        rec.startedAt ??= now();
        refresh();
        const r = await runUpgrade(
          upgradeWorkflowId(name),
          inputOf(name),
          queueOf(name),
          rec,
          name,
          `Upgrade KubeSphere cluster ${name} to v4 (fleet ${input.fleet})`,
        );
        if (rec.awaiting?.kind === 'upgrade') delete rec.awaiting;
        rec.upgradeStatus = r.ok ? 'Succeeded' : 'Failed';
        delete rec.phase;
        delete rec.job;
        if (!r.ok) {
          fail(r.error);
          return;
        }
        rec.state = 'verifying';
        rec.verifyingSince = now();
        refresh();
      }
      if (rec.state === 'verifying') {
        const verdict = await verifyLoop(name, 'wave gate', () => verifyClusterOnce(name, rec));
        if (verdict === 'failed') {
          fail('failed at the wave gate');
          return;
        }
        rec.state = 'gateways';
        refresh();
      }
      if (rec.state === 'gateways' && !(await upgradeGateways(name))) {
        fail('a gateway upgrade failed');
        return;
      }
      rec.state = 'succeeded';
      rec.endedAt = now();
      refresh();
    } catch (err) {
      if (isCancellation(err)) throw err;
      fail(errorText(err));
    }
  };

  // ---- windows ------------------------------------------------------------------------------------
  /** The pending clusters whose window is open now, and when the next closed one opens. */
  const startable = async (pending: string[]): Promise<{ open: string[]; nextOpening?: number }> => {
    const nowMs = Date.now();
    const open: string[] = [];
    let nextOpening: number | undefined;
    for (const name of pending) {
      const wname = fs.windowOf(name);
      const spec = wname ? input.windows?.[wname] : undefined;
      if (!wname || !spec) {
        open.push(name);
        continue;
      }
      let occ = carried.windows[wname];
      if (!occ || nowMs >= occ.closesAt) {
        const next = await on(fleetQueue).nextMaintenanceWindow({ window: spec, now: nowMs });
        if (!next) {
          const rec = fs.record(name);
          rec.state = 'failed';
          rec.error = `maintenance window '${wname}' does not open again (see its notAfter)`;
          refresh();
          continue;
        }
        occ = next;
        carried.windows[wname] = occ;
      }
      if (nowMs >= occ.opensAt) open.push(name);
      else nextOpening = Math.min(nextOpening ?? occ.opensAt, occ.opensAt);
    }
    return { open, ...(nextOpening === undefined ? {} : { nextOpening }) };
  };
  const noteWindowStart = (name: string): void => {
    const wname = fs.windowOf(name);
    const occ = wname ? carried.windows[wname] : undefined;
    if (!wname || !occ) return;
    const opensAt = new Date(occ.opensAt).toISOString();
    const last = carried.lastWindow;
    if (last?.name === wname && last.opensAt === opensAt) last.started++;
    else
      carried.lastWindow = {
        name: wname,
        opensAt,
        closesAt: new Date(occ.closesAt).toISOString(),
        started: 1,
      };
    upsertMemo({ lastWindow: carried.lastWindow });
  };

  // ---- continue-as-new ------------------------------------------------------------------------------
  const historyFull = (): boolean => {
    const i = workflowInfo();
    return i.historyLength >= tuning.historyLimit || i.continueAsNewSuggested;
  };
  /** Carries everything over to a fresh run; upgrades in flight are attached to there. */
  const continueFresh = async (): Promise<never> => {
    await condition(() => starting === 0);
    await condition(allHandlersFinished);
    for (const rec of Object.values(carried.clusters)) {
      if (rec.state === 'upgrading' && rec.workflowId) rec.attached = true;
      for (const g of rec.gateways ?? []) if (g.state === 'upgrading') g.attached = true;
    }
    return continueAsNew<typeof upgradeFleet>({ ...input, carried: fs.snapshot() });
  };

  // ---- the waves ------------------------------------------------------------------------------------
  const runWave = async (clusters: string[]): Promise<void> => {
    const running = new Map<string, Promise<void>>();
    const launch = (name: string): void => {
      running.set(
        name,
        runCluster(name).finally(() => {
          running.delete(name);
          refresh();
        }),
      );
    };
    for (const name of fs.inFlight(clusters)) launch(name);
    for (;;) {
      if (cancelled()) return;
      if (historyFull()) await continueFresh();
      const pending = fs.pending(clusters);
      if (pending.length === 0 && running.size === 0) return;
      let wake: number | undefined;
      waitingWindow = false;
      if (
        pending.length > 0 &&
        !carried.paused &&
        fs.budgetAllowsStart &&
        running.size < input.maxConcurrency
      ) {
        const { open, nextOpening } = await startable(pending);
        const next = open[0];
        if (next) {
          noteWindowStart(next);
          launch(next);
          continue;
        }
        wake = nextOpening;
        waitingWindow = nextOpening !== undefined;
      }
      // Nothing runs and nothing may start: the budget is spent.
      if (running.size === 0 && fs.pending(clusters).length > 0 && fs.budgetExceeded) return;
      refresh();
      const v = version;
      const changed = (): boolean => version !== v || historyFull() || ops.cancel !== undefined;
      if (wake === undefined) await condition(changed);
      else await condition(changed, Math.max(wake - Date.now(), 1000));
    }
  };

  const observing = new CancellationScope();
  const observed = observing.run(observeLoop).catch((err: unknown) => {
    if (!isCancellation(err)) throw err;
  });
  try {
    const host = fs.host.name;
    for (let wi = carried.waveIndex; wi < input.waves.length; wi++) {
      const wave = input.waves[wi];
      if (!wave) break;
      carried.waveIndex = wi;
      currentWave = wave.name;
      if (wi > 0 && fs.record(host).state !== 'succeeded') {
        stopped = true;
        throw ApplicationFailure.create({
          type: 'HostUpgradeFailed',
          nonRetryable: true,
          message: `the host ${host} was not upgraded (${fs.record(host).error ?? 'failed'}): members need a v4 host; fix it and run the fleet again`,
        });
      }
      if (wave.approval && !carried.approvals[wave.name]) {
        awaitingApproval = true;
        refresh();
        await condition(
          () => carried.approvals[wave.name] !== undefined || ops.cancel !== undefined || historyFull(),
        );
        awaitingApproval = false;
        if (!carried.approvals[wave.name] && !ops.cancel) await continueFresh();
      }
      if (cancelled()) break;
      refresh();
      await runWave(wave.clusters);
      if (cancelled()) break;
      if (fs.budgetExceeded) {
        stopped = true;
        throw ApplicationFailure.create({
          type: 'FailureBudgetExceeded',
          nonRetryable: true,
          message: `${fs.failed} clusters failed, the budget allows ${fs.allowed}: no further cluster was started`,
          details: [
            fs
              .clusterProgress(fleetQueue)
              .filter((c) => c.state === 'failed')
              .map((c) => ({ name: c.name, error: c.error })),
          ],
        });
      }
    }
    if (ops.cancel) {
      stopped = true;
      finish('Cancelled');
      await condition(allHandlersFinished);
      throw ApplicationFailure.create({
        type: 'FleetCancelled',
        nonRetryable: true,
        message: `fleet ${input.fleet} cancelled by ${ops.cancel.by}: ${ops.cancel.reason}; upgrades in flight run on by themselves`,
      });
    }
    finish(fs.failed > 0 ? 'PartiallySucceeded' : 'Succeeded');
    await condition(allHandlersFinished);
    return {
      fleet: input.fleet,
      status: fs.failed > 0 ? 'PartiallySucceeded' : 'Succeeded',
      clusters: fs.clusterProgress(fleetQueue).map((c) => ({
        name: c.name,
        state: c.state,
        ...(c.error ? { error: c.error } : {}),
        ...(c.note ? { note: c.note } : {}),
      })),
      decisions: carried.decisions,
      runs: carried.run,
    };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        stopped = true;
        finish('Cancelled');
        await Promise.resolve();
      });
      throw err;
    }
    if (!end.status) finish('Failed');
    throw err;
  } finally {
    observing.cancel();
    await observed;
  }
}
