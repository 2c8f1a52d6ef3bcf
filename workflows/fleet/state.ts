// The fleet's state: what it carries over continue-as-new, and the pure rules over it (failure
// budget, status, progress). No Temporal API here, so it is unit-tested directly.
import type { FleetCluster, FleetInput } from '../pure/fleet-input.js';
import { allowedFailures } from '../pure/fleet-input.js';
import type {
  Approval,
  ClusterProgress,
  ClusterRecord,
  FleetDecision,
  FleetProgress,
  FleetStatus,
  WaveProgress,
  WindowOccurrence,
} from './messages.js';

/** Everything the fleet must not lose when it continues as new. */
export interface FleetCarriedState {
  run: number;
  startedAt: string;
  waveIndex: number;
  clusters: Record<string, ClusterRecord>;
  approvals: Record<string, Approval>;
  decisions: FleetDecision[];
  paused?: Approval;
  windows: Record<string, WindowOccurrence>;
  lastWindow?: FleetProgress['lastWindow'];
}

const IN_FLIGHT: readonly string[] = ['upgrading', 'verifying', 'gateways'];

/** The operator's commands for a cluster whose child upgrade waits. */
export function upgradeCommands(cluster: string, workflowId: string, allowed: string[]): string[] {
  return allowed.map(
    (a) =>
      `ks-upgrade resolve ${cluster} ${a} --reason "<why>"  |  temporal workflow update execute -w ${workflowId} --name resolve --input '{"action":"${a}","reason":"<why>","by":"<you>"}'`,
  );
}

/** The operator's commands for a cluster waiting at the fleet's wave gate. */
export function gateCommands(fleet: string, fleetWorkflowId: string, cluster: string): string[] {
  return (['retry', 'skip', 'fail'] as const).map(
    (a) =>
      `ks-upgrade fleet resolve ${fleet} ${cluster} ${a} --reason "<why>"  |  temporal workflow update execute -w ${fleetWorkflowId} --name resolveCluster --input '{"cluster":"${cluster}","action":"${a}","reason":"<why>","by":"<you>"}'`,
  );
}

export class FleetState {
  readonly carried: FleetCarriedState;
  private readonly byName = new Map<string, FleetCluster>();
  private readonly waveByCluster = new Map<string, string>();

  constructor(
    readonly input: FleetInput,
    now: string,
  ) {
    for (const c of input.clusters) this.byName.set(c.name, c);
    for (const w of input.waves) for (const c of w.clusters) this.waveByCluster.set(c, w.name);
    this.carried = input.carried
      ? (JSON.parse(JSON.stringify(input.carried)) as FleetCarriedState)
      : { run: 1, startedAt: now, waveIndex: 0, clusters: {}, approvals: {}, decisions: [], windows: {} };
    for (const c of input.clusters) this.carried.clusters[c.name] ??= { state: 'pending' };
  }

  config(name: string): FleetCluster {
    const c = this.byName.get(name);
    if (!c) throw new Error(`unknown cluster ${name}`); // validated input: cannot happen
    return c;
  }

  record(name: string): ClusterRecord {
    const r = this.carried.clusters[name];
    if (!r) throw new Error(`unknown cluster ${name}`);
    return r;
  }

  get host(): FleetCluster {
    const h = this.input.clusters.find((c) => c.role === 'host');
    if (!h) throw new Error('no host'); // validated input: cannot happen
    return h;
  }

  /** The window a cluster may start in, if any. */
  windowOf(name: string): string | undefined {
    return this.config(name).window ?? this.input.window;
  }

  get allowed(): number {
    return allowedFailures(this.input.failureBudget, this.input.clusters.length);
  }

  get failed(): number {
    return Object.values(this.carried.clusters).filter((r) => r.state === 'failed').length;
  }

  get awaitingOperator(): number {
    return Object.values(this.carried.clusters).filter((r) => r.awaiting !== undefined).length;
  }

  /**
   * New clusters start only while failures — clusters that failed, and clusters waiting for an
   * operator because something failed — stay within the budget. Clusters in flight always finish.
   */
  get budgetAllowsStart(): boolean {
    return this.failed + this.awaitingOperator <= this.allowed;
  }

  /** The budget is spent for good: more clusters failed than allowed. */
  get budgetExceeded(): boolean {
    return this.failed > this.allowed;
  }

  inFlight(names: readonly string[]): string[] {
    return names.filter((n) => IN_FLIGHT.includes(this.record(n).state));
  }

  pending(names: readonly string[]): string[] {
    return names.filter((n) => this.record(n).state === 'pending');
  }

  decide(d: Omit<FleetDecision, 'at'>, at: string): FleetDecision {
    const decision = { ...d, at };
    this.carried.decisions.push(decision);
    return decision;
  }

  /** The fleet's status from its state; `waiting` says what the main loop waits for. */
  status(waiting: { approval?: boolean; window?: boolean; cancelled?: boolean }): FleetStatus {
    if (waiting.cancelled) return 'Cancelled';
    if (this.awaitingOperator > 0) return 'AwaitingOperator';
    if (waiting.approval) return 'AwaitingApproval';
    if (this.carried.paused) return 'Paused';
    const names = this.input.clusters.map((c) => c.name);
    if (waiting.window && this.inFlight(names).length === 0) return 'WaitingForWindow';
    return 'Running';
  }

  waveProgress(index: number, awaitingApproval: boolean, stopped: boolean): WaveProgress[] {
    return this.input.waves.map((w, i) => {
      const records = w.clusters.map((c) => this.record(c));
      const done = records.every((r) => r.state === 'succeeded' || r.state === 'failed');
      const state: WaveProgress['state'] =
        i < index || (i === index && done)
          ? 'done'
          : i === index
            ? awaitingApproval
              ? 'awaiting-approval'
              : stopped
                ? 'stopped'
                : 'running'
            : stopped
              ? 'stopped'
              : 'pending';
      const approval = this.carried.approvals[w.name];
      return {
        name: w.name,
        state,
        approvalRequired: w.approval === true,
        ...(approval ? { approval } : {}),
        clusters: w.clusters,
      };
    });
  }

  clusterProgress(defaultQueue: string): ClusterProgress[] {
    return this.input.clusters.map((c) => ({
      name: c.name,
      role: c.role,
      wave: this.waveByCluster.get(c.name) ?? '',
      taskQueue: c.taskQueue ?? defaultQueue,
      ...this.record(c.name),
    }));
  }

  /** A copy to carry over continue-as-new. */
  snapshot(): FleetCarriedState {
    return JSON.parse(JSON.stringify({ ...this.carried, run: this.carried.run + 1 })) as FleetCarriedState;
  }
}
