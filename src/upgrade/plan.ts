// Loading the config of an upgrade and turning it into the plan the workflow follows.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig, type LoadedConfig } from '../config/index.js';
import type { GateMode, UpgradeConfig } from '../config/types.js';
import { ValidationError } from '../errors.js';
import { createJobContext } from '../jobs/context.js';
import { ORIGINAL_JOB_NAMES } from '../jobs/original.js';
import { defaultRegistry, type JobRegistry } from '../jobs/registry.js';
import { instantiateJobs, planJobs } from '../jobs/runner.js';
import {
  PHASES,
  implementsPhase,
  type JobProgress,
  type Logger,
  type Phase,
  type PlannedAction,
} from '../jobs/types.js';
import type { ResourceClient } from '../kube/client.js';
import type { ResourceStore } from '../store/index.js';
import type { UpgradeClusterInput } from './input.js';

/** Step defaults when a job's config has no `retry` / `timeout`. */
export const DEFAULT_RETRY = { maximumAttempts: 3, initialInterval: 5_000, maximumInterval: 60_000 } as const;
export const DEFAULT_STEP_TIMEOUT_MS = 30 * 60_000;

/** The built-in defaults: the original's repository config.yaml (shipped at the package root). */
export const BUILTIN_CONFIG_PATH: string = (() => {
  for (const rel of ['../../config.yaml', '../../../config.yaml']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  return fileURLToPath(new URL('../../config.yaml', import.meta.url));
})();

/** One job of the plan: everything the workflow needs to schedule its steps. Secret-free. */
export interface PlannedJobSteps {
  name: string;
  priority: number;
  enabled: boolean;
  reason: string;
  /** Phases this job implements (only these get a step). */
  phases: Phase[];
  retry: { maximumAttempts: number; initialIntervalMs: number; maximumIntervalMs: number };
  timeoutMs: number;
  /** Dry run only: what the job would change. */
  actions?: PlannedAction[];
}

/** What `planUpgrade` returns: small, secret-free, kept in workflow history. */
export interface UpgradePlan {
  cluster: string;
  configSha256: string;
  configFiles: string[];
  gate: GateMode;
  validators: { ksVersion: boolean; extensionsMuseum: boolean };
  jobs: PlannedJobSteps[];
}

/** The config files an input names, after the built-in defaults unless `useDefaults: false`. */
export function configFilesOf(input: Pick<UpgradeClusterInput, 'configFiles' | 'useDefaults'>): string[] {
  return [...(input.useDefaults === false ? [] : [BUILTIN_CONFIG_PATH]), ...(input.configFiles ?? [])];
}

/** What {@link loadUpgradeConfig} reads from the workflow input. */
export type UpgradeConfigInput = Pick<
  UpgradeClusterInput,
  'configFiles' | 'useDefaults' | 'overrides' | 'gate'
> & {
  /**
   * Accept a config that enables no job (`--allow-empty`): the upgrade then changes nothing.
   * Without it such a config is refused, naming the files, rather than "succeeding" with zero jobs.
   */
  allowEmpty?: boolean;
};

/**
 * Loads and validates the config of an upgrade: files, then the input's overrides. Beyond the
 * loader's checks: at least one job is enabled (unless `allowEmpty`), jobs that back up
 * credentials have `storage.encryption`, and every enabled job is registered in this build.
 */
export async function loadUpgradeConfig(
  input: UpgradeConfigInput,
  registry: JobRegistry = defaultRegistry,
): Promise<LoadedConfig> {
  const overrides: Record<string, unknown> = {};
  if (input.overrides?.jobs) overrides.jobs = input.overrides.jobs;
  if (input.overrides?.upgrade || input.gate) {
    overrides.upgrade = { ...input.overrides?.upgrade, ...(input.gate ? { gate: input.gate } : {}) };
  }
  const knownJobs = [...new Set([...ORIGINAL_JOB_NAMES, ...registry.names()])];
  const loaded = await loadConfig(configFilesOf(input), {
    knownJobs,
    requireEnabledJob: input.allowEmpty !== true,
    jobsNeedingEncryption: registry.names().filter((name) => registry.get(name)?.requiresEncryption),
    extraSources:
      Object.keys(overrides).length > 0
        ? [{ name: 'workflow-input.overrides', text: JSON.stringify(overrides) }]
        : [],
  });
  const missing = Object.entries(loaded.config.jobs)
    .filter(([name, jc]) => jc.enabled && !registry.get(name))
    .map(([name]) => name);
  if (missing.length > 0) {
    throw new ValidationError(`enabled jobs not available in this build: ${missing.join(', ')}`, {
      hint: `disable them (jobs.<name>.enabled: false) or use a ks-upgrade build that has them (available: ${registry.names().join(', ')})`,
    });
  }
  return loaded;
}

/** The plan of an upgrade from its loaded config. */
export function buildUpgradePlan(
  cluster: string,
  loaded: LoadedConfig,
  registry: JobRegistry = defaultRegistry,
): UpgradePlan {
  const config: UpgradeConfig = loaded.config;
  const instances = new Map(instantiateJobs(config, registry).map((j) => [j.name, j.job]));
  const jobs = planJobs(config, registry).map((p): PlannedJobSteps => {
    const jc = config.jobs[p.name];
    const job = instances.get(p.name);
    return {
      name: p.name,
      priority: p.priority,
      enabled: p.enabled,
      reason: p.reason,
      phases: job ? PHASES.filter((phase) => implementsPhase(job, phase)) : [],
      retry: {
        maximumAttempts: jc?.retry?.maximumAttempts ?? DEFAULT_RETRY.maximumAttempts,
        initialIntervalMs: jc?.retry?.initialInterval ?? DEFAULT_RETRY.initialInterval,
        maximumIntervalMs: jc?.retry?.maximumInterval ?? DEFAULT_RETRY.maximumInterval,
      },
      timeoutMs: jc?.timeout ?? DEFAULT_STEP_TIMEOUT_MS,
    };
  });
  return {
    cluster,
    configSha256: loaded.sha256,
    configFiles: loaded.files,
    gate: config.upgrade.gate,
    validators: {
      ksVersion: config.validator.ksVersion.enabled,
      extensionsMuseum: config.validator.extensionsMuseum.enabled,
    },
    jobs,
  };
}

/**
 * Asks each enabled job that can plan what it would do (a dry run: nothing is written) and fills in
 * `plan.jobs[].actions`. Used by `ks-upgrade plan` and the workflow's dry run.
 */
export async function planJobActions(
  plan: UpgradePlan,
  loaded: LoadedConfig,
  registry: JobRegistry,
  deps: { kube: ResourceClient; store: ResourceStore; logger: Logger; heartbeat?: (p?: JobProgress) => void },
): Promise<void> {
  for (const pj of plan.jobs) {
    const factory = registry.get(pj.name);
    const jc = loaded.config.jobs[pj.name];
    if (!pj.enabled || !factory || !jc) continue;
    const job = factory.create(structuredClone(jc.dynamicOptions), structuredClone(jc.extensionRef));
    if (!job.plan) continue;
    pj.actions = await job.plan(
      createJobContext({
        job: pj.name,
        phase: 'prepare-upgrade',
        cluster: { name: plan.cluster },
        kube: deps.kube,
        store: deps.store,
        config: jc,
        logger: deps.logger,
        ...(deps.heartbeat ? { heartbeat: deps.heartbeat } : {}),
      }),
    );
  }
}
