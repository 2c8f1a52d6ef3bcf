import type { DynamicOptions, ExtensionRef, JobConfig } from '../config/types.js';
import type { ResourceClient } from '../kube/client.js';
import type { AccessRule } from '../rbac/types.js';
import type { ResourceStore } from '../store/index.js';
import type { Leftover } from '../verify/types.js';

/** The phases of an upgrade, in the order the workflow runs them (rollback only on abort). */
export const PHASES = [
  'prepare-upgrade',
  'pre-upgrade',
  'post-upgrade',
  'dynamic-upgrade',
  'rollback',
] as const;
export type Phase = (typeof PHASES)[number];

/** Structured, secret-free logging for jobs. Fields must never carry credentials or Secret data. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** The cluster a job runs against. */
export interface ClusterInfo {
  /** Logical name (`host`, `member1`…): the store scope and the name in fleet plans. */
  name: string;
}

/** Progress a job reports during a long step; shown in the workflow's progress query. */
export interface JobProgress {
  step?: string;
  done?: number;
  total?: number;
  message?: string;
}

/**
 * Everything a job phase gets — the original's `Inject*` interfaces in one object. Built per
 * (cluster, job, phase) by the activity or by {@link runPhase}.
 */
export interface JobContext {
  readonly job: string;
  readonly phase: Phase;
  readonly cluster: ClusterInfo;
  /**
   * Client for the cluster. `v3` and `v4` are the same client under the names of the original's
   * two typed clients: the resource types (src/api/v3, src/api/v4) decide which version is used.
   */
  readonly kube: ResourceClient;
  readonly v3: ResourceClient;
  readonly v4: ResourceClient;
  /** Store scoped to `<cluster>/<job>/`; `store.shared()` for documented shared keys. */
  readonly store: ResourceStore;
  readonly logger: Logger;
  /** `jobs.<name>.dynamicOptions` from the config. */
  readonly options: DynamicOptions;
  /** A private copy of `jobs.<name>.extensionRef`: a job may adjust it before creating its InstallPlan. */
  readonly extensionRef: ExtensionRef | undefined;
  readonly config: JobConfig;
  /** Report liveness and progress; long steps call it at least every few seconds. */
  heartbeat(progress?: JobProgress): void;
  /** Aborted when the step is cancelled (operator abort, worker shutdown): stop at a safe point. */
  readonly signal: AbortSignal;
}

/** A planned change, for `ks-upgrade plan` (dry run). */
export interface PlannedAction {
  phase: Phase;
  action: string;
  /** e.g. `InstallPlan devops`, `Deployment kubesphere-system/ks-installer`. */
  target?: string;
}

/**
 * An upgrade job ("plugin"). Each phase must be safe to run again after a crash at any point:
 * check-then-act, backups with `saveOnce`, create-if-absent, conflict-retried updates. A backup
 * that exists never means the action it protects is done.
 */
export interface UpgradeJob {
  /** False skips the job in prepare/pre/post (the original's EnabledCondition). Default: enabled. */
  isEnabled?(ctx: JobContext): Promise<boolean>;
  prepareUpgrade?(ctx: JobContext): Promise<void>;
  preUpgrade(ctx: JobContext): Promise<void>;
  postUpgrade(ctx: JobContext): Promise<void>;
  dynamicUpgrade?(ctx: JobContext): Promise<void>;
  /** Undo what this job's earlier phases did, as far as possible (run in reverse job order). */
  rollback?(ctx: JobContext): Promise<void>;
  /** Dry run: what the job would change. */
  plan?(ctx: JobContext): Promise<PlannedAction[]>;
}

/** Creates a job from its config. `name` is the key under `jobs:` in the config. */
export interface JobFactory {
  readonly name: string;
  /** One line for `ks-upgrade plan` and the docs. */
  readonly description?: string;
  /**
   * The job backs up credentials (kubeconfigs, tokens, Secrets): the plan is refused unless
   * `storage.encryption` is configured, so the problem shows before anything changes.
   */
  readonly requiresEncryption?: boolean;
  /**
   * Everything the job reads or changes, as RBAC rules (docs/rbac.md): the preflight checks the
   * identity has each one, and `ks-upgrade rbac` prints the Roles. A function when the rules
   * depend on the job's options (a namespace it is configured with). The built-in jobs declare
   * theirs in `src/rbac/builtin.ts`.
   */
  readonly access?:
    | readonly AccessRule[]
    | ((options: DynamicOptions, extensionRef: ExtensionRef | undefined) => readonly AccessRule[]);
  /** The v3 objects the job removes for good: verification checks that they are gone. */
  readonly leftovers?: readonly Leftover[];
  create(options: DynamicOptions, extensionRef: ExtensionRef | undefined): UpgradeJob;
}

/** The method implementing each phase. */
export const PHASE_METHOD = {
  'prepare-upgrade': 'prepareUpgrade',
  'pre-upgrade': 'preUpgrade',
  'post-upgrade': 'postUpgrade',
  'dynamic-upgrade': 'dynamicUpgrade',
  rollback: 'rollback',
} as const satisfies Record<Phase, keyof UpgradeJob>;

/** True when the job implements the phase. */
export function implementsPhase(job: UpgradeJob, phase: Phase): boolean {
  return typeof job[PHASE_METHOD[phase]] === 'function';
}
