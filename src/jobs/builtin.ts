// The built-in jobs, registered explicitly in one place (no import side effects).
import type { JobFactory } from './types.js';
import { defaultRegistry, type JobRegistry } from './registry.js';

/** Factories of the jobs that ship with ks-upgrade. */
export const BUILTIN_JOB_FACTORIES: readonly JobFactory[] = [];

let registered = false;

/** Registers the built-in jobs in `registry` (idempotent for the default registry). */
export function registerBuiltinJobs(registry: JobRegistry = defaultRegistry): void {
  if (registry === defaultRegistry) {
    if (registered) return;
    registered = true;
  }
  for (const f of BUILTIN_JOB_FACTORIES) registry.register(f);
}
