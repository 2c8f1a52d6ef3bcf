// Messages of the upgradeFleet workflow: the `fleetProgress` query and the operators' updates
// (approveWave, pause, resume, resolveCluster, cancel). Shared by the workflow and clients.
import { defineQuery, defineUpdate } from '@temporalio/workflow';

/** Fleet-level status (also the fleet's `UpgradeStatus` search attribute). */
export type FleetStatus =
  | 'Running'
  | 'AwaitingApproval'
  | 'AwaitingOperator'
  | 'Paused'
  | 'WaitingForWindow'
  | 'Succeeded'
  /** Done, with failed clusters within the failure budget. */
  | 'PartiallySucceeded'
  | 'Failed'
  | 'Cancelled';

/**
 * Where a cluster is in the fleet: `upgrading` while its `upgradeCluster` runs; `verifying` at the
 * wave gate (observed state, the member's Schedulable mark, its extensions); `gateways` while its
 * gateways are upgraded one at a time.
 */
export type ClusterState = 'pending' | 'upgrading' | 'verifying' | 'gateways' | 'succeeded' | 'failed';

/** A decision an operator owes: a failed step of the cluster's upgrade, or the fleet's wave gate. */
export interface ClusterAwaiting {
  /** `upgrade`: the child upgradeCluster waits (resolve it there); `gate`: the fleet's gate waits. */
  kind: 'upgrade' | 'gate';
  error: string;
  hint?: string;
  allowed: string[];
  since: string;
  /** Commands that answer it. */
  commands: string[];
}

export interface GatewayProgress {
  name: string;
  state: 'pending' | 'upgrading' | 'verifying' | 'succeeded' | 'failed';
  workflowId: string;
  /** Not a child of this run (carried over continue-as-new). */
  attached?: boolean;
  error?: string;
}

/** One cluster as the fleet tracks it (kept small: it is carried over continue-as-new). */
export interface ClusterRecord {
  state: ClusterState;
  workflowId?: string;
  /** Not a child of this run: found running (started elsewhere) or carried over continue-as-new. */
  attached?: boolean;
  /** The child's `UpgradeStatus`, `UpgradePhase`, `UpgradeJob`, as last observed. */
  upgradeStatus?: string;
  phase?: string;
  job?: string;
  awaiting?: ClusterAwaiting;
  startedAt?: string;
  endedAt?: string;
  /** Since when the gate verifies (its deadline survives continue-as-new). */
  verifyingSince?: string;
  verification?: { ok: boolean; failed: string[]; checkedAt: string };
  /** The member's `Schedulable=False (Upgrading)` condition on the host was removed. */
  schedulableCleared?: boolean;
  gateways?: GatewayProgress[];
  /** Jobs other than gateway that implement dynamic-upgrade: disabled in the gateway runs. */
  gatewayJobsOff?: string[];
  /** A gate decision received and not yet acted on. */
  gateDecision?: ResolveClusterRequest & { by: string };
  error?: string;
  note?: string;
}

export interface ClusterProgress extends ClusterRecord {
  name: string;
  role: 'host' | 'member';
  wave: string;
  taskQueue: string;
}

export interface Approval {
  by: string;
  reason: string;
  at: string;
}

export interface WaveProgress {
  name: string;
  state: 'pending' | 'awaiting-approval' | 'running' | 'done' | 'stopped';
  approvalRequired: boolean;
  approval?: Approval;
  clusters: string[];
}

export interface FleetDecision {
  kind: 'approveWave' | 'pause' | 'resume' | 'resolveCluster' | 'cancel';
  by: string;
  reason: string;
  at: string;
  wave?: string;
  cluster?: string;
  action?: string;
}

/** A maintenance window occurrence, as epoch milliseconds. */
export interface WindowOccurrence {
  opensAt: number;
  closesAt: number;
}

export interface FleetProgress {
  fleet: string;
  status: FleetStatus;
  startedAt: string;
  updatedAt: string;
  /** Runs of this fleet so far (1 + continue-as-new count). */
  run: number;
  historyLength: number;
  paused?: Approval;
  cancelRequested?: Approval;
  currentWave?: string;
  waves: WaveProgress[];
  clusters: ClusterProgress[];
  budget: { allowed: number; failed: number; awaitingOperator: number };
  decisions: FleetDecision[];
  /** The next or current window per window name. */
  windows: Record<string, WindowOccurrence & { open: boolean }>;
  /** The last window in which the fleet started clusters. */
  lastWindow?: { name: string; opensAt: string; closesAt: string; started: number };
}

export interface FleetResult {
  fleet: string;
  status: 'Succeeded' | 'PartiallySucceeded';
  clusters: { name: string; state: ClusterState; error?: string; note?: string }[];
  decisions: FleetDecision[];
  runs: number;
}

export interface OperatorNote {
  reason: string;
  /** Who (the CLI fills in user@host). */
  by?: string;
}

export interface ApproveWaveRequest extends OperatorNote {
  wave: string;
}

export type GateAction = 'retry' | 'skip' | 'fail';

export interface ResolveClusterRequest extends OperatorNote {
  cluster: string;
  action: GateAction;
}

export const fleetProgressQuery = defineQuery<FleetProgress>('fleetProgress');
export const approveWaveUpdate = defineUpdate<{ accepted: true; wave: string }, [ApproveWaveRequest]>(
  'approveWave',
);
export const pauseUpdate = defineUpdate<{ accepted: true }, [OperatorNote]>('pause');
export const resumeUpdate = defineUpdate<{ accepted: true }, [OperatorNote]>('resume');
export const resolveClusterUpdate = defineUpdate<{ accepted: true }, [ResolveClusterRequest]>(
  'resolveCluster',
);
/** Records who cancels and why; the cancellation itself is Temporal's (`fleet cancel` sends both). */
export const cancelFleetUpdate = defineUpdate<{ accepted: true }, [OperatorNote]>('cancel');
