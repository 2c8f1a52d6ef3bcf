// The input of the `upgradeCluster` workflow. Plain JSON, usable from `temporal workflow start`.
// A pure module written for the workflow sandbox (no I/O, no Node built-ins, type imports only from
// outside workflows/): the workflow validates its own input with it, and the CLI validates before
// starting, so a rejected input never reaches workflow history.
import type { GateMode } from '../../src/config/types.js';
import type { Phase } from '../../src/jobs/types.js';
import { PREFLIGHT_CHECKS } from './checks.js';
import { DurationSyntaxError, parseGoDuration } from './duration.js';

/** Where the worker finds the cluster's credentials: paths and names only, never credentials. */
export interface KubeTargetInput {
  /** Context in the worker's kubeconfig. */
  context?: string;
  /** Path of a kubeconfig file on the worker. */
  kubeconfig?: string;
  /** Use the worker pod's service account. */
  inCluster?: boolean;
}

/** Secret-free settings that override the config files (merged last). */
export interface ConfigOverrides {
  jobs?: Record<string, { enabled?: boolean; priority?: number; dynamicOptions?: Record<string, unknown> }>;
  upgrade?: { gate?: GateMode };
}

/** Timing knobs (durations like `30s`); defaults suit production, tests shorten them. */
export interface UpgradeTuning {
  /** Heartbeat timeout of job steps: how fast a dead worker is noticed. Default `60s`. */
  heartbeatTimeout?: string;
  /** How long the gate waits for `coreUpgraded` (signal mode). Default: no limit. */
  gateTimeout?: string;
  /** How long the detect gate polls the cluster for KubeSphere v4. Default `2h`. */
  detectTimeout?: string;
  /** How long to wait for an operator decision before failing. Default: no limit. */
  operatorTimeout?: string;
}

export type FailurePolicy = 'ask' | 'abort';

export interface UpgradeClusterInput {
  /** Logical cluster name; the workflow ID is `ks-upgrade-<cluster>`. */
  cluster: string;
  kube?: KubeTargetInput;
  /** Config files on the worker, merged in order after the built-in defaults. */
  configFiles?: string[];
  /** Start from the built-in defaults (the original's config.yaml). Default true. */
  useDefaults?: boolean;
  overrides?: ConfigOverrides;
  /** Phases to run, in this order. Default: prepare-upgrade, pre-upgrade, post-upgrade. */
  phases?: Phase[];
  /** Gate between pre- and post-upgrade; default from the config (`upgrade.gate`). */
  gate?: GateMode;
  /** On a failed step: `ask` an operator (default) or `abort` (roll back) at once. */
  failurePolicy?: FailurePolicy;
  /** Plan only: report what each job would do, change nothing. */
  dryRun?: boolean;
  tuning?: UpgradeTuning;
  /**
   * Failing preflight checks to go past (`name` of the check, or `verification` to not wait for an
   * operator when the final verification fails), each with who decided and why — kept in history.
   */
  skipChecks?: SkipCheck[];
  /**
   * Accept a config that enables no job (`ks-upgrade run --allow-empty`): the upgrade then changes
   * nothing. Without it the plan refuses such a config, naming the files.
   */
  allowEmpty?: boolean;
}

/** An operator's decision to go past one failing check (docs/preflight.md). */
export interface SkipCheck {
  name: string;
  by: string;
  reason: string;
}

/** The top-level fields of {@link UpgradeClusterInput} (docs/workflow-input.schema.json lists the same). */
export const INPUT_FIELDS: readonly string[] = [
  'cluster',
  'kube',
  'configFiles',
  'useDefaults',
  'overrides',
  'phases',
  'gate',
  'failurePolicy',
  'dryRun',
  'allowEmpty',
  'tuning',
  'skipChecks',
];

export const DEFAULT_PHASES: readonly Phase[] = ['prepare-upgrade', 'pre-upgrade', 'post-upgrade'];
const FORWARD_PHASES: readonly Phase[] = [
  'prepare-upgrade',
  'pre-upgrade',
  'post-upgrade',
  'dynamic-upgrade',
];
/** Every gate mode, in the order the docs list them (docs/workflow-input.md). */
export const GATES: readonly GateMode[] = ['signal', 'detect', 'helm', 'none'];
const TUNING_FIELDS: readonly string[] = [
  'heartbeatTimeout',
  'gateTimeout',
  'detectTimeout',
  'operatorTimeout',
];

/**
 * How deeply the input may nest (objects and lists). Real inputs need about 8 levels (dynamicOptions
 * of an extension); the bound keeps a hostile or broken input from exhausting the stack of the
 * validator, the planner or the config loader.
 */
export const MAX_INPUT_DEPTH = 32;

/** The workflow ID of a cluster's upgrade. */
export function upgradeWorkflowId(cluster: string): string {
  return `ks-upgrade-${cluster}`;
}

// Keys whose value would be a credential, wherever they appear in the input.
const SECRET_KEY =
  /(secret|password|passwd|token|credential|accesskey|access_key|privatekey|private_key|apikey|api_key)/i;
// Values that are credentials whatever their key: PEM blocks, inline kubeconfigs, AWS key IDs.
const SECRET_VALUE = [
  /-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----/,
  /\bkind:\s*Config\b[\s\S]*\b(users|clusters):/,
  /"kind"\s*:\s*"Config"/,
  /\b(AKIA|ASIA)[A-Z0-9]{16}\b/,
  /\bclient-key-data\b|\bclient-certificate-data\b/,
];

/**
 * Problems with an input, as `path: what is wrong; how to fix` lines (empty when valid). Inputs
 * carrying credentials are refused: workflow input is stored in history, readable by everyone who
 * can see the workflow, so secrets must come from files or the environment of the worker.
 */
export function validateUpgradeInput(input: unknown): string[] {
  const problems: string[] = [];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return ['input: expected a JSON object like {"cluster":"host"}; see docs/workflow-input.md'];
  }
  const tooDeep = deeperThan(input, MAX_INPUT_DEPTH);
  if (tooDeep !== undefined) {
    return [
      `${tooDeep}: the input nests deeper than ${MAX_INPUT_DEPTH} levels (the limit); ` +
        'flatten it, or put large settings in a config file on the worker',
    ];
  }
  scanForSecrets(input, '', problems);
  // Untrusted JSON (e.g. from `temporal workflow start`): check every field's type.
  const i = input as Record<string, unknown>;
  const known = new Set(INPUT_FIELDS);
  for (const key of Object.keys(i)) {
    if (!known.has(key)) problems.push(`${key}: unknown field; allowed: ${[...known].join(', ')}`);
  }
  if (typeof i.cluster !== 'string' || !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(i.cluster)) {
    problems.push('cluster: required, a lowercase DNS label such as "host" or "member-1"');
  }
  if (i.kube !== undefined) {
    if (typeof i.kube !== 'object' || i.kube === null || Array.isArray(i.kube))
      problems.push('kube: expected an object {context, kubeconfig, inCluster}');
    else {
      for (const key of Object.keys(i.kube)) {
        if (!['context', 'kubeconfig', 'inCluster'].includes(key))
          problems.push(`kube.${key}: unknown field; allowed: context, kubeconfig, inCluster`);
      }
      const kc = (i.kube as Record<string, unknown>).kubeconfig;
      if (kc !== undefined && (typeof kc !== 'string' || kc.includes('\n'))) {
        problems.push(
          'kube.kubeconfig: must be the path of a kubeconfig file on the worker, not its content',
        );
      }
    }
  }
  if (
    i.configFiles !== undefined &&
    (!Array.isArray(i.configFiles) || !i.configFiles.every((f) => typeof f === 'string'))
  ) {
    problems.push('configFiles: expected a list of file paths on the worker');
  }
  if (i.phases !== undefined) {
    if (!Array.isArray(i.phases) || i.phases.length === 0) problems.push('phases: expected a non-empty list');
    else {
      for (const p of i.phases) {
        if (!FORWARD_PHASES.includes(p as Phase)) {
          problems.push(
            `phases: '${String(p)}' is not a phase; use ${FORWARD_PHASES.join(', ')} (rollback runs through resolve/abort)`,
          );
        }
      }
      const order = i.phases.map((p) => FORWARD_PHASES.indexOf(p as Phase));
      if (order.some((v, idx) => idx > 0 && v <= (order[idx - 1] ?? -1))) {
        problems.push(`phases: must be in upgrade order without repeats (${FORWARD_PHASES.join(' → ')})`);
      }
    }
  }
  if (i.gate !== undefined && !GATES.includes(i.gate as GateMode))
    problems.push(`gate: must be one of ${GATES.join(', ')}`);
  for (const flag of ['useDefaults', 'dryRun', 'allowEmpty']) {
    if (i[flag] !== undefined && typeof i[flag] !== 'boolean')
      problems.push(`${flag}: expected true or false`);
  }
  if (i.overrides !== undefined) problems.push(...validateOverrides(i.overrides));
  if (i.failurePolicy !== undefined && i.failurePolicy !== 'ask' && i.failurePolicy !== 'abort') {
    problems.push('failurePolicy: must be "ask" or "abort"');
  }
  if (i.tuning !== undefined) {
    const tuning = isPlainObject(i.tuning) ? i.tuning : {};
    if (tuning !== i.tuning) problems.push('tuning: expected an object');
    for (const [k, v] of Object.entries(tuning)) {
      if (!TUNING_FIELDS.includes(k))
        problems.push(`tuning.${k}: unknown field; allowed: ${TUNING_FIELDS.join(', ')}`);
      else {
        const why = durationProblem(v);
        if (why !== undefined) problems.push(`tuning.${k}: ${why}`);
      }
    }
  }
  problems.push(...validateSkipChecks(i.skipChecks));
  return problems;
}

/** The checks `skipChecks` may name: the preflight's, and the final verification. */
export const SKIPPABLE_CHECKS: readonly string[] = [...PREFLIGHT_CHECKS, 'verification'];

/** Problems with `skipChecks`, as `path: what; how to fix` lines. Pure: the workflow runs it too. */
export function validateSkipChecks(value: unknown, path = 'skipChecks'): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value))
    return [`${path}: expected a list like [{"name":"images","by":"you","reason":"why"}]`];
  const problems: string[] = [];
  value.forEach((s: unknown, i) => {
    const p = `${path}[${i}]`;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) {
      problems.push(`${p}: expected {"name", "by", "reason"}`);
      return;
    }
    const o = s as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      if (!['name', 'by', 'reason'].includes(key))
        problems.push(`${p}.${key}: unknown field; allowed: name, by, reason`);
    }
    if (typeof o.name !== 'string' || !SKIPPABLE_CHECKS.includes(o.name)) {
      problems.push(`${p}.name: must be one of ${SKIPPABLE_CHECKS.join(', ')}`);
    }
    for (const key of ['by', 'reason'] as const) {
      if (typeof o[key] !== 'string' || o[key].trim() === '') {
        problems.push(`${p}.${key}: required (who skips the check, and why)`);
      }
    }
  });
  return problems;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `overrides` as docs/workflow-input.schema.json describes it, so a wrong one fails before the start. */
function validateOverrides(value: unknown): string[] {
  if (!isPlainObject(value))
    return ['overrides: expected an object like {"jobs":{"devops":{"enabled":false}}}'];
  const problems: string[] = [];
  for (const key of Object.keys(value)) {
    if (key !== 'jobs' && key !== 'upgrade')
      problems.push(`overrides.${key}: unknown field; allowed: jobs, upgrade`);
  }
  if (value.jobs !== undefined) {
    if (!isPlainObject(value.jobs)) problems.push('overrides.jobs: expected an object of jobs by name');
    else {
      for (const [name, job] of Object.entries(value.jobs)) {
        const p = `overrides.jobs.${name}`;
        if (!isPlainObject(job)) {
          problems.push(`${p}: expected an object {enabled, priority, dynamicOptions}`);
          continue;
        }
        for (const key of Object.keys(job)) {
          if (!['enabled', 'priority', 'dynamicOptions'].includes(key))
            problems.push(`${p}.${key}: unknown field; allowed: enabled, priority, dynamicOptions`);
        }
        if (job.enabled !== undefined && typeof job.enabled !== 'boolean')
          problems.push(`${p}.enabled: expected true or false`);
        if (
          job.priority !== undefined &&
          !(Number.isSafeInteger(job.priority) && (job.priority as number) >= 0)
        )
          problems.push(`${p}.priority: expected a whole number of 0 or more`);
        if (job.dynamicOptions !== undefined && !isPlainObject(job.dynamicOptions))
          problems.push(`${p}.dynamicOptions: expected an object`);
      }
    }
  }
  if (value.upgrade !== undefined) {
    if (!isPlainObject(value.upgrade)) problems.push('overrides.upgrade: expected an object {gate}');
    else {
      for (const key of Object.keys(value.upgrade)) {
        if (key !== 'gate') problems.push(`overrides.upgrade.${key}: unknown field; allowed: gate`);
      }
      const gate = value.upgrade.gate;
      if (gate !== undefined && !GATES.includes(gate as GateMode))
        problems.push(`overrides.upgrade.gate: must be one of ${GATES.join(', ')}`);
    }
  }
  return problems;
}

/** What is wrong with a tuning duration, or undefined when it is a positive Go duration in range. */
function durationProblem(value: unknown): string | undefined {
  const expected = 'expected a duration such as "30s" or "2h"';
  if (typeof value !== 'string') return expected;
  try {
    return parseGoDuration(value) > 0 ? undefined : expected;
  } catch (err) {
    if (!(err instanceof DurationSyntaxError)) throw err;
    // Beyond 2^63-1 ns neither the config parser nor Temporal can take it.
    return err.why.startsWith('out of range')
      ? `${value} is longer than a duration can be (about 292 years)`
      : expected;
  }
}

/** A positive Go duration in ms, or NaN for anything else (not a string, bad syntax, ≤ 0). */
function durationMs(value: unknown): number {
  if (typeof value !== 'string') return NaN;
  try {
    return parseGoDuration(value);
  } catch (err) {
    if (err instanceof DurationSyntaxError) return NaN;
    throw err;
  }
}

/**
 * The path of the first value nested deeper than `limit` levels, or undefined. Iterative: the point
 * is to measure inputs that would overflow a recursive walk.
 */
function deeperThan(value: object, limit: number): string | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: '', depth: 1 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (typeof item.value !== 'object' || item.value === null) continue;
    if (item.depth > limit) return item.path || 'input';
    const entries: [string, unknown][] = Array.isArray(item.value)
      ? item.value.map((v, i): [string, unknown] => [`[${i}]`, v])
      : Object.entries(item.value).map(([k, v]): [string, unknown] => [item.path ? `.${k}` : k, v]);
    for (const [suffix, v] of entries)
      stack.push({ value: v, path: item.path + suffix, depth: item.depth + 1 });
  }
  return undefined;
}

/**
 * The timeouts of an input in ms (validated input: a missing or unparsable value is `undefined`).
 * One reading for the workflow and the tools that explain it.
 */
export function tuningMs(
  input: Pick<UpgradeClusterInput, 'tuning'>,
): Record<keyof UpgradeTuning, number | undefined> {
  const t = input.tuning ?? {};
  const read = (v: string | undefined): number | undefined => {
    const ms = durationMs(v);
    return ms > 0 ? ms : undefined;
  };
  return {
    heartbeatTimeout: read(t.heartbeatTimeout),
    gateTimeout: read(t.gateTimeout),
    detectTimeout: read(t.detectTimeout),
    operatorTimeout: read(t.operatorTimeout),
  };
}

function scanForSecrets(value: unknown, path: string, problems: string[]): void {
  if (typeof value === 'string') {
    if (SECRET_VALUE.some((re) => re.test(value))) {
      problems.push(
        `${path || 'input'}: looks like a credential (key, certificate or kubeconfig content); ` +
          'workflow input is stored in history: reference a file on the worker instead',
      );
    }
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      scanForSecrets(v, `${path}[${i}]`, problems);
    });
    return;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      const p = path ? `${path}.${k}` : k;
      if (SECRET_KEY.test(k) && v !== null && v !== undefined && v !== '' && typeof v !== 'boolean') {
        problems.push(
          `${p}: credentials are not accepted in workflow input (it is stored in history); ` +
            'put them in a config or credentials file on the worker, or in its environment',
        );
        continue;
      }
      scanForSecrets(v, p, problems);
    }
  }
}
