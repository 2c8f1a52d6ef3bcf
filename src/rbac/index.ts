// Least privilege: the access table of the jobs, and the RBAC manifests rendered from it.
import { loadConfig } from '../config/index.js';
import type { UpgradeConfig } from '../config/types.js';
import { ValidationError } from '../errors.js';
import { ORIGINAL_JOB_NAMES } from '../jobs/original.js';
import type { JobRegistry } from '../jobs/registry.js';
import { renderMemberRbac, renderRbac, type RbacTarget } from './manifests.js';
import { accessTable } from './table.js';

export { accessTable, declaredAccess, declaredLeftovers, leftoversOf, type AccessTable } from './table.js';
export { FRAMEWORK_JOB, frameworkAccess, CORE_DEPLOYMENTS } from './framework.js';
export { mergeRules, renderMemberRbac, renderRbac, clusterRules, type RbacTarget } from './manifests.js';
export type { AccessRule, JobAccess } from './types.js';

/** Loads the config files (no overrides) with the registry's job names, for tools that only read it. */
export async function loadJobsConfig(
  files: readonly string[],
  registry: JobRegistry,
): Promise<UpgradeConfig> {
  const knownJobs = [...new Set([...ORIGINAL_JOB_NAMES, ...registry.names()])];
  return (await loadConfig([...files], { knownJobs })).config;
}

/**
 * The RBAC manifests for the jobs `config` enables (with `members`: what they need on member
 * clusters instead). A job without an access declaration is an error: its role would be incomplete.
 */
export function rbacManifests(
  config: UpgradeConfig,
  registry: JobRegistry,
  target: RbacTarget,
  options: { members?: boolean } = {},
): string {
  const table = accessTable(config, registry);
  if (table.undeclared.length > 0) {
    throw new ValidationError(`jobs ${table.undeclared.join(', ')} declare no access table`, {
      hint:
        'add `access` (the rules the job needs) to their JobFactory (see docs/rbac.md), or disable them; ' +
        'a role without their rules would stop the upgrade half-way with 403',
    });
  }
  return options.members ? renderMemberRbac(table.jobs) : renderRbac(table.jobs, target);
}
