// The access table of an upgrade: the framework's rules and those of every enabled job, from the
// same declarations the preflight checks and `ks-upgrade rbac` renders.
import type { DynamicOptions, ExtensionRef, UpgradeConfig } from '../config/types.js';
import type { JobRegistry } from '../jobs/registry.js';
import { planJobs } from '../jobs/runner.js';
import type { JobFactory } from '../jobs/types.js';
import type { Leftover } from '../verify/types.js';
import { BUILTIN_ACCESS, BUILTIN_LEFTOVERS } from './builtin.js';
import { FRAMEWORK_JOB, frameworkAccess } from './framework.js';
import { rule } from './rules.js';
import type { AccessRule, JobAccess } from './types.js';

/** The rules a job declared (its factory's, else the built-in table's); undefined when none. */
export function declaredAccess(
  factory: JobFactory,
  options: DynamicOptions = {},
  extensionRef?: ExtensionRef,
): readonly AccessRule[] | undefined {
  const own = factory.access;
  if (typeof own === 'function') return own(options, extensionRef);
  return own ?? BUILTIN_ACCESS[factory.name];
}

/** The v3 objects a job removes for good (its factory's, else the built-in list). */
export function declaredLeftovers(factory: JobFactory): readonly Leftover[] {
  return factory.leftovers ?? BUILTIN_LEFTOVERS[factory.name] ?? [];
}

/** Verification reads each leftover to see that it is gone. */
function leftoverReads(leftovers: readonly Leftover[]): AccessRule[] {
  return leftovers.map((l) =>
    rule(l.group, l.resource, 'get', `verification: ${l.kind} ${l.name} must be gone after the upgrade`, {
      resourceNames: [l.name],
      ...(l.namespace ? { namespaces: [l.namespace] } : {}),
    }),
  );
}

/** The access table of an upgrade. */
export interface AccessTable {
  /** `_framework` first, then the enabled jobs in execution order. */
  jobs: JobAccess[];
  /** Enabled jobs that declare no access (plugins written before access tables existed). */
  undeclared: string[];
}

/** The framework's rules and those of every job `config` enables, in execution order. */
export function accessTable(config: UpgradeConfig, registry: JobRegistry): AccessTable {
  const jobs: JobAccess[] = [{ job: FRAMEWORK_JOB, rules: frameworkAccess(config.validator) }];
  const undeclared: string[] = [];
  for (const planned of planJobs(config, registry)) {
    if (!planned.enabled) continue;
    const factory = registry.get(planned.name);
    const jc = config.jobs[planned.name];
    if (!factory || !jc) continue;
    const rules = declaredAccess(factory, jc.dynamicOptions, jc.extensionRef);
    if (!rules) {
      undeclared.push(planned.name);
      continue;
    }
    jobs.push({ job: planned.name, rules: [...rules, ...leftoverReads(declaredLeftovers(factory))] });
  }
  return { jobs, undeclared };
}

/** Every leftover the jobs `config` enables declare, without duplicates. */
export function leftoversOf(config: UpgradeConfig, registry: JobRegistry): Leftover[] {
  const seen = new Map<string, Leftover>();
  for (const planned of planJobs(config, registry)) {
    const factory = registry.get(planned.name);
    if (!planned.enabled || !factory) continue;
    for (const l of declaredLeftovers(factory)) {
      seen.set(`${l.group}/${l.resource}/${l.namespace ?? ''}/${l.name}`, l);
    }
  }
  return [...seen.values()];
}
