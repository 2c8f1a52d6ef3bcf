// DevOps project namespaces, labelled for the v4 DevOps extension (reference §4.4 pre-upgrade step 5).
import { NamespaceResource } from '../../api/core.js';
import { DevOpsProjectResource } from '../../api/v3/index.js';
import type { JobContext } from '../types.js';
import { projectNamespace } from './backup.js';
import { DEVOPS_MANAGED_LABEL, WORKSPACE_LABEL } from './constants.js';

/**
 * Each DevOps project's namespace gets `devops.kubesphere.io/managed: "true"` and the project's
 * workspace label when either is missing (the workspace label only when the project has one; the
 * original wrote an empty one). A project whose namespace is gone is reported and skipped.
 */
export async function labelProjectNamespaces(
  ctx: JobContext,
): Promise<{ labelled: string[]; missing: string[] }> {
  const labelled: string[] = [];
  const missing: string[] = [];
  for (const project of await ctx.kube.listIfServed(DevOpsProjectResource)) {
    const ns = projectNamespace(project);
    if (!ns || !(await ctx.kube.tryGet(NamespaceResource, ns))) {
      missing.push(project.metadata.name ?? '');
      ctx.logger.warn(
        `DevOps project ${project.metadata.name ?? ''}: namespace ${ns} not found, not labelled`,
      );
      continue;
    }
    const workspace = project.metadata.labels?.[WORKSPACE_LABEL];
    const { changed } = await ctx.kube.mutate(NamespaceResource, ns, undefined, (n) => {
      const labels = n.metadata.labels ?? {};
      if (labels[DEVOPS_MANAGED_LABEL] !== undefined && labels[WORKSPACE_LABEL] !== undefined) return;
      labels[DEVOPS_MANAGED_LABEL] = 'true';
      if (workspace) labels[WORKSPACE_LABEL] = workspace;
      n.metadata.labels = labels;
    });
    if (changed) labelled.push(ns);
  }
  return { labelled, missing };
}
