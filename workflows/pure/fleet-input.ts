// The input of the `upgradeFleet` workflow: plain, secret-free JSON (the fleet file, resolved by
// src/fleet/load.ts), usable from `temporal workflow start --type upgradeFleet`. Pure code: the
// workflow validates its own input with it and derives each cluster's `upgradeCluster` input.
import type { GateMode } from '../../src/config/types.js';
import type { Phase } from '../../src/jobs/types.js';
import {
  validateUpgradeInput,
  type ConfigOverrides,
  type FailurePolicy,
  type KubeTargetInput,
  type SkipCheck,
  type UpgradeClusterInput,
  type UpgradeTuning,
} from './input.js';
import type { FleetCarriedState } from '../fleet/state.js';

export type FleetRole = 'host' | 'member';

/** Lower-case three-letter weekday names, as written in the fleet file. */
export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/**
 * A recurring maintenance window: on the given weekdays (all when absent), from `start` to `end`
 * local time in `timeZone` (an `end` not after `start` ends the next day), optionally only between
 * `notBefore` and `notAfter` (ISO 8601 instants). No cluster starts outside it; one that started
 * inside may finish after it closes.
 */
export interface MaintenanceWindow {
  /** IANA time zone, e.g. `Europe/Berlin`. */
  timeZone: string;
  days?: Weekday[];
  /** `HH:MM` or `HH:MM:SS`. */
  start: string;
  /** `HH:MM`, `HH:MM:SS`, or `24:00`. */
  end: string;
  notBefore?: string;
  notAfter?: string;
}

/** What a cluster's `upgradeCluster` input takes from the fleet (per cluster, or fleet-wide defaults). */
export interface FleetClusterSettings {
  /** Config files on the worker (original ks-upgrade format), merged in order after the built-ins. */
  configFiles?: string[];
  useDefaults?: boolean;
  /** A kubeconfig file on the worker (context mode). */
  kubeconfig?: string;
  overrides?: ConfigOverrides;
  phases?: Phase[];
  gate?: GateMode;
  failurePolicy?: FailurePolicy;
  tuning?: UpgradeTuning;
  /** Failing preflight checks (or `verification`) each upgrade goes past, with who and why. */
  skipChecks?: SkipCheck[];
}

export interface FleetCluster extends FleetClusterSettings {
  /** Logical name: the child workflow is `ks-upgrade-<name>`, backups are under `<name>/`. */
  name: string;
  role: FleetRole;
  /** The name of this cluster's Cluster object on the host (default: `name`). */
  kubesphereName?: string;
  /** Context in the worker's kubeconfig (one worker reaching every cluster). */
  context?: string;
  /**
   * A worker of this cluster's own polls this queue (`ks-upgrade worker --cluster <name>` polls
   * `ks-upgrade-cluster-<name>`): the cluster's upgrade and every fleet step on it run there,
   * with that worker's credentials (in-cluster, or its own kubeconfig).
   */
  taskQueue?: string;
  labels?: Record<string, string>;
  /** Name of a window in {@link FleetInput.windows}; default the fleet's `window`. */
  window?: string;
  /** Gateways to upgrade one at a time after the cluster is verified: names, or `auto` (all backed up). */
  gateways?: string[] | 'auto';
}

export interface FleetWave {
  name: string;
  /** Cluster names, in start order. */
  clusters: string[];
  /** Wait for the `approveWave` update before this wave starts. */
  approval?: boolean;
}

/** How many clusters may fail before no new cluster starts. */
export type FailureBudget = { count: number } | { percent: number };

/** Timing knobs of the fleet (milliseconds); defaults suit production, tests shorten them. */
export interface FleetTuning {
  /** Continue-as-new once the history has this many events. Default 4000. */
  historyLimit?: number;
  /** How long the wave gate re-verifies a cluster before asking an operator. Default 15 minutes. */
  verifyTimeoutMs?: number;
  /** Pause between verifications of one cluster. Default 15 s. */
  verifyIntervalMs?: number;
  /** How often the fleet looks at its running upgrades (for operator waits). Default 5 s. */
  observeIntervalMs?: number;
  /** Longest a look at the running upgrades lasts when nothing changes. Default 60 s. */
  observeMaxWaitMs?: number;
}

export interface FleetInput {
  /** Fleet name (a DNS label): workflow `ks-upgrade-fleet-<fleet>`, search attribute `UpgradeFleet`. */
  fleet: string;
  /** The fleet file it came from (shown in progress; informational). */
  source?: string;
  defaults?: FleetClusterSettings;
  clusters: FleetCluster[];
  /** In order; the first holds the host alone. */
  waves: FleetWave[];
  /** Clusters upgrading at once (children in flight). */
  maxConcurrency: number;
  failureBudget: FailureBudget;
  windows?: Record<string, MaintenanceWindow>;
  /** The default window of every cluster (a key of `windows`). */
  window?: string;
  tuning?: FleetTuning;
  /** Progress carried over continue-as-new; absent on a fresh start. */
  carried?: FleetCarriedState;
}

/** The top-level fields of {@link FleetInput}. */
export const FLEET_INPUT_FIELDS: readonly string[] = [
  'fleet',
  'source',
  'defaults',
  'clusters',
  'waves',
  'maxConcurrency',
  'failureBudget',
  'windows',
  'window',
  'tuning',
  'carried',
];

export const FLEET_DEFAULTS = {
  historyLimit: 4000,
  verifyTimeoutMs: 15 * 60_000,
  verifyIntervalMs: 15_000,
  observeIntervalMs: 5_000,
  observeMaxWaitMs: 60_000,
} as const;

/** Most clusters in flight at once (Temporal allows 2000 pending children per run). */
export const MAX_CONCURRENCY = 500;

/** The workflow ID of a fleet. */
export function fleetWorkflowId(fleet: string): string {
  return `ks-upgrade-fleet-${fleet}`;
}

/** The task queue `ks-upgrade worker --cluster <name>` polls. */
export function clusterTaskQueue(cluster: string): string {
  return `ks-upgrade-cluster-${cluster}`;
}

/** Workflow ID of the dynamic-upgrade of one gateway of a cluster. */
export function gatewayWorkflowId(cluster: string, gateway: string): string {
  return `ks-upgrade-${cluster}-gateway-${gateway}`;
}

/** How many failed clusters the budget tolerates. */
export function allowedFailures(budget: FailureBudget, clusters: number): number {
  return 'count' in budget ? budget.count : Math.floor((budget.percent * clusters) / 100);
}

function mergeOverrides(a?: ConfigOverrides, b?: ConfigOverrides): ConfigOverrides | undefined {
  if (!a) return b;
  if (!b) return a;
  const jobs: NonNullable<ConfigOverrides['jobs']> = { ...a.jobs };
  for (const [name, job] of Object.entries(b.jobs ?? {})) {
    const base = jobs[name];
    jobs[name] = {
      ...base,
      ...job,
      ...(base?.dynamicOptions || job.dynamicOptions
        ? { dynamicOptions: { ...base?.dynamicOptions, ...job.dynamicOptions } }
        : {}),
    };
  }
  const upgrade = a.upgrade || b.upgrade ? { ...a.upgrade, ...b.upgrade } : undefined;
  return { ...(Object.keys(jobs).length ? { jobs } : {}), ...(upgrade ? { upgrade } : {}) };
}

/**
 * The `upgradeCluster` input of one cluster: its settings over the fleet defaults (overrides and
 * tuning merge; lists replace). Without a context or kubeconfig the worker's own credentials are
 * used (in-cluster, or its KUBECONFIG): the dedicated-worker mode.
 */
export function clusterUpgradeInput(fleet: FleetInput, c: FleetCluster): UpgradeClusterInput {
  const d = fleet.defaults ?? {};
  // The fleet-wide kubeconfig belongs to the shared worker; a dedicated worker has its own.
  const kubeconfig = c.kubeconfig ?? (c.taskQueue ? undefined : d.kubeconfig);
  const kube: KubeTargetInput = {
    ...(kubeconfig ? { kubeconfig } : {}),
    ...(c.context ? { context: c.context } : {}),
  };
  const configFiles = c.configFiles ?? d.configFiles;
  const useDefaults = c.useDefaults ?? d.useDefaults;
  const overrides = mergeOverrides(d.overrides, c.overrides);
  const phases = c.phases ?? d.phases;
  const gate = c.gate ?? d.gate;
  const failurePolicy = c.failurePolicy ?? d.failurePolicy;
  const tuning = d.tuning || c.tuning ? { ...d.tuning, ...c.tuning } : undefined;
  const skipChecks = c.skipChecks ?? d.skipChecks;
  return {
    cluster: c.name,
    ...(Object.keys(kube).length ? { kube } : {}),
    ...(configFiles ? { configFiles } : {}),
    ...(useDefaults === undefined ? {} : { useDefaults }),
    ...(overrides ? { overrides } : {}),
    ...(phases ? { phases } : {}),
    ...(gate ? { gate } : {}),
    ...(failurePolicy ? { failurePolicy } : {}),
    ...(tuning ? { tuning } : {}),
    // Absent unless set, so the children of fleets recorded before it have the same input.
    ...(skipChecks ? { skipChecks } : {}),
  };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Problems with a fleet input, as `path: what is wrong; how to fix` lines (empty when valid). The
 * loader reports the same with file and line; this is the workflow's own check, for inputs written
 * by hand (`temporal workflow start`).
 */
export function validateFleetInput(input: unknown): string[] {
  const p: string[] = [];
  if (!isObject(input)) return ['input: expected a JSON object; see docs/fleet.md'];
  for (const key of Object.keys(input)) {
    if (!FLEET_INPUT_FIELDS.includes(key))
      p.push(`${key}: unknown field; allowed: ${FLEET_INPUT_FIELDS.join(', ')}`);
  }
  if (typeof input.fleet !== 'string' || !DNS_LABEL.test(input.fleet)) {
    p.push('fleet: required, a lowercase DNS label such as "production"');
  }
  if (!Array.isArray(input.clusters) || input.clusters.length === 0) {
    p.push('clusters: required, a non-empty list of {name, role, context | taskQueue}');
    return p;
  }
  const fleet = input as unknown as FleetInput;
  const windows = isObject(input.windows) ? input.windows : {};
  const names = new Set<string>();
  let hosts = 0;
  (input.clusters as unknown[]).forEach((raw, i) => {
    const at = `clusters[${i}]`;
    if (!isObject(raw)) {
      p.push(`${at}: expected an object`);
      return;
    }
    const { name, role, taskQueue, window, gateways } = raw;
    if (typeof name !== 'string' || !DNS_LABEL.test(name)) p.push(`${at}.name: a lowercase DNS label`);
    else if (names.has(name)) p.push(`${at}.name: duplicate cluster '${name}'`);
    else names.add(name);
    if (role === 'host') hosts++;
    else if (role !== 'member') p.push(`${at}.role: must be "host" or "member"`);
    if (taskQueue !== undefined && (typeof taskQueue !== 'string' || taskQueue === '')) {
      p.push(`${at}.taskQueue: a task queue name`);
    }
    if (window !== undefined && (typeof window !== 'string' || !isObject(windows[window]))) {
      p.push(`${at}.window: no such window in windows`);
    }
    if (
      gateways !== undefined &&
      gateways !== 'auto' &&
      !(Array.isArray(gateways) && gateways.every((g) => typeof g === 'string' && g !== ''))
    ) {
      p.push(`${at}.gateways: "auto" or a list of gateway names`);
    }
    for (const problem of validateUpgradeInput(clusterUpgradeInput(fleet, raw as unknown as FleetCluster))) {
      p.push(`${at}: ${problem}`);
    }
  });
  if (hosts !== 1) p.push(`clusters: exactly one cluster must have role "host" (found ${hosts})`);
  if (!Array.isArray(input.waves) || input.waves.length === 0) {
    p.push('waves: required, a non-empty list of {name, clusters, approval}');
  } else {
    const seen = new Map<string, string>();
    const waveNames = new Set<string>();
    fleet.waves.forEach((w, i) => {
      const at = `waves[${i}]`;
      if (!isObject(w) || typeof w.name !== 'string' || w.name === '' || !Array.isArray(w.clusters)) {
        p.push(`${at}: expected {name, clusters: [...]}`);
        return;
      }
      if (waveNames.has(w.name)) p.push(`${at}.name: duplicate wave '${w.name}'`);
      waveNames.add(w.name);
      if (w.clusters.length === 0) p.push(`${at}.clusters: a wave needs at least one cluster`);
      for (const name of w.clusters) {
        if (!names.has(name)) p.push(`${at}.clusters: unknown cluster '${name}'`);
        const other = seen.get(name);
        if (other !== undefined) p.push(`${at}.clusters: '${name}' is also in wave '${other}'`);
        seen.set(name, w.name);
      }
    });
    const host = fleet.clusters.find((c) => c.role === 'host')?.name;
    const first = fleet.waves[0];
    if (host && first && (first.clusters.length !== 1 || first.clusters[0] !== host)) {
      p.push(`waves[0]: the first wave must hold the host '${host}' alone (members need a v4 host)`);
    }
    for (const name of names) if (!seen.has(name)) p.push(`waves: cluster '${name}' is in no wave`);
  }
  const mc = input.maxConcurrency;
  if (typeof mc !== 'number' || !Number.isInteger(mc) || mc < 1 || mc > MAX_CONCURRENCY) {
    p.push(`maxConcurrency: a whole number from 1 to ${MAX_CONCURRENCY}`);
  }
  const fb = input.failureBudget;
  const okBudget =
    isObject(fb) &&
    ((typeof fb.count === 'number' && Number.isInteger(fb.count) && fb.count >= 0) ||
      (typeof fb.percent === 'number' && fb.percent >= 0 && fb.percent <= 100));
  if (!okBudget) p.push('failureBudget: {"count": n} (n ≥ 0) or {"percent": p} (0–100)');
  if (input.window !== undefined && (typeof input.window !== 'string' || !isObject(windows[input.window]))) {
    p.push('window: no such window in windows');
  }
  if (input.tuning !== undefined) {
    if (!isObject(input.tuning)) p.push('tuning: expected an object');
    else {
      for (const [k, v] of Object.entries(input.tuning)) {
        if (!(k in FLEET_DEFAULTS))
          p.push(`tuning.${k}: unknown field; allowed: ${Object.keys(FLEET_DEFAULTS).join(', ')}`);
        else if (typeof v !== 'number' || !(v > 0)) p.push(`tuning.${k}: a positive number`);
      }
    }
  }
  return p;
}
