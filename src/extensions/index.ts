// Extension helpers (reference §3.3, §3.6): InstallPlans from a job's extensionRef, and the chart
// ConfigMaps member clusters read their extension charts from.
import { createHash } from 'node:crypto';
import { ConfigMapResource } from '../api/core.js';
import {
  ExtensionVersionResource,
  InstallPlanResource,
  type ExtensionVersion,
  type InstallPlan,
  type InstallPlanState,
} from '../api/v4/index.js';
import type { ExtensionRef } from '../config/types.js';
import { KsUpgradeError } from '../errors.js';
import type { Logger } from '../jobs/types.js';
import type { ResourceClient } from '../kube/client.js';
import { AlreadyExistsError } from '../kube/errors.js';
import { isHostCluster, KUBESPHERE_NAMESPACE } from '../kubesphere/index.js';
import { canonicalJson } from '../util/object.js';
import { WaitTimeoutError, notYet, waitFor, type WaitReporter } from '../util/wait.js';

/** Set on InstallPlans ks-upgrade created: only those does it ever change afterwards. */
export const MANAGED_ANNOTATION = 'ks-upgrade.kubesphere.io/managed';
/** sha256 of the spec ks-upgrade last wrote: tells "config changed" from "someone edited it". */
export const SPEC_HASH_ANNOTATION = 'ks-upgrade.kubesphere.io/spec-sha256';

/** The extension's ExtensionVersion is not (yet) in the cluster. */
export class ExtensionVersionNotFoundError extends KsUpgradeError {}
/** The InstallPlan reached a failed state. */
export class InstallPlanFailedError extends KsUpgradeError {}
/** The InstallPlan did not reach a final state in time. */
export class InstallPlanTimeoutError extends WaitTimeoutError {}

/** The InstallPlan spec for an extensionRef, exactly as the original builds it. */
export function desiredInstallPlanSpec(ref: ExtensionRef): InstallPlan['spec'] {
  return {
    extension: { name: ref.name, version: ref.version },
    enabled: true,
    upgradeStrategy: 'Manual',
    ...(ref.config ? { config: ref.config } : {}),
    ...(ref.clusterScheduling ? { clusterScheduling: ref.clusterScheduling } : {}),
  };
}

export function specHash(spec: InstallPlan['spec']): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}

/** `ExtensionVersion <name>-<version>`, which the extensions-museum Repository sync provides. */
export async function findExtensionVersion(
  client: ResourceClient,
  ref: ExtensionRef,
): Promise<ExtensionVersion> {
  const name = `${ref.name}-${ref.version}`;
  const ev = await client.tryGet(ExtensionVersionResource, name);
  if (!ev) {
    throw new ExtensionVersionNotFoundError(`ExtensionVersion ${name} not found`, {
      hint:
        `wait until the extensions-museum Repository has synced (validator.extensionsMuseum), ` +
        `or fix jobs.<job>.extensionRef.version to a version the museum serves`,
    });
  }
  return ev;
}

/** What {@link ensureInstallPlan} did. */
export type InstallPlanAction =
  | 'created'
  | 'updated'
  | 'unchanged'
  /** Exists, not created by ks-upgrade: left as is, as the original does. */
  | 'kept-foreign'
  /** Created by ks-upgrade but edited since by someone else: their edit wins. */
  | 'kept-modified'
  /** Not a host cluster: InstallPlans live on the host only. */
  | 'skipped-member';

export interface EnsureInstallPlanOptions {
  logger?: Logger;
  /** Skip the host check (the caller knows it is on the host). */
  assumeHost?: boolean;
}

/**
 * Creates the extension's InstallPlan, idempotently. Decision on an existing plan (the original
 * never touched one): ks-upgrade updates only a plan it created itself and nobody edited since —
 * so re-running with a corrected config fixes the plan, while an operator's manual change, or a
 * plan someone else created, is never overwritten.
 */
export async function ensureInstallPlan(
  client: ResourceClient,
  ref: ExtensionRef,
  options: EnsureInstallPlanOptions = {},
): Promise<{ action: InstallPlanAction; plan?: InstallPlan }> {
  if (!options.assumeHost && !(await isHostCluster(client))) {
    options.logger?.info(`InstallPlan ${ref.name}: not a host cluster, nothing to create`);
    return { action: 'skipped-member' };
  }
  await findExtensionVersion(client, ref);
  const spec = desiredInstallPlanSpec(ref);
  const hash = specHash(spec);
  const desired: InstallPlan = {
    metadata: { name: ref.name, annotations: { [MANAGED_ANNOTATION]: 'true', [SPEC_HASH_ANNOTATION]: hash } },
    spec,
  };
  let existing = await client.tryGet(InstallPlanResource, ref.name);
  if (!existing) {
    try {
      const plan = await client.create(InstallPlanResource, desired);
      options.logger?.info(`InstallPlan ${ref.name} created`, { version: ref.version });
      return { action: 'created', plan };
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      existing = await client.get(InstallPlanResource, ref.name);
    }
  }
  const annotations = existing.metadata.annotations ?? {};
  if (annotations[MANAGED_ANNOTATION] !== 'true') {
    options.logger?.warn(
      `InstallPlan ${ref.name} exists and was not created by ks-upgrade; leaving it unchanged`,
    );
    return { action: 'kept-foreign', plan: existing };
  }
  const currentHash = specHash(existing.spec);
  if (currentHash === hash) return { action: 'unchanged', plan: existing };
  if (currentHash !== annotations[SPEC_HASH_ANNOTATION]) {
    options.logger?.warn(
      `InstallPlan ${ref.name} was edited after ks-upgrade created it; keeping the edit (delete the plan to have it re-created)`,
    );
    return { action: 'kept-modified', plan: existing };
  }
  const { object } = await client.mutate(InstallPlanResource, ref.name, undefined, (plan) => {
    plan.spec = spec;
    plan.metadata.annotations = { ...plan.metadata.annotations, [SPEC_HASH_ANNOTATION]: hash };
  });
  options.logger?.info(`InstallPlan ${ref.name} updated to the configured spec`, { version: ref.version });
  return { action: 'updated', plan: object };
}

const DONE_STATES: readonly InstallPlanState[] = ['Installed', 'Upgraded'];
const FAILED_STATES: readonly InstallPlanState[] = ['InstallFailed', 'UpgradeFailed'];

export interface WaitForInstallPlanOptions {
  /** Default 10 minutes, as the original. */
  timeoutMs?: number;
  /** Default 2 s, as the original. */
  intervalMs?: number;
  /** Where the wait logs and heartbeats, and its cancellation (a job passes its context). */
  reporter?: WaitReporter;
}

/**
 * Waits until the InstallPlan is Installed/Upgraded. A failed state ends the wait at once with
 * the controller's message (the original kept polling until its timeout).
 */
export async function waitForInstallPlan(
  client: ResourceClient,
  name: string,
  options: WaitForInstallPlanOptions = {},
): Promise<InstallPlan> {
  return waitFor(
    {
      what: `InstallPlan ${name} to be Installed`,
      timeoutMs: options.timeoutMs ?? 10 * 60_000,
      intervalMs: options.intervalMs ?? 2000,
      check: async () => {
        const plan = await client.tryGet(InstallPlanResource, name);
        const state = plan?.status?.state ?? '';
        if (plan && DONE_STATES.includes(state)) return plan;
        if (plan && FAILED_STATES.includes(state)) {
          throw new InstallPlanFailedError(
            `InstallPlan ${name} is ${state}: ${JSON.stringify(plan.status?.conditions ?? [])}`,
            {
              hint: `inspect 'kubectl get installplan ${name} -o yaml' and the extension's pods, fix, then retry the step`,
            },
          );
        }
        return notYet(plan ? `state '${state || 'pending'}'` : 'the InstallPlan does not exist');
      },
      hint: 'check the ks-controller-manager logs and the extension install job; retry the step when it is installed',
      timeoutError: InstallPlanTimeoutError,
    },
    options.reporter,
  );
}

/** `kubesphere-system/extension-<name>-<version>-chart`: where members find an extension's chart. */
export function chartConfigMapName(name: string, version: string): string {
  return `extension-${name}-${version}-chart`;
}

/** The chart archive stored in the chart ConfigMap (`binaryData["chart.tgz"]`). */
export async function readChartFromConfigMap(
  client: ResourceClient,
  name: string,
  version: string,
): Promise<Buffer> {
  const cmName = chartConfigMapName(name, version);
  const cm = await client.tryGet(ConfigMapResource, cmName, KUBESPHERE_NAMESPACE);
  if (!cm)
    throw new KsUpgradeError(`failed to get configmap ${KUBESPHERE_NAMESPACE}/${cmName}`, {
      hint: 'upgrade the host cluster first: its post-upgrade copies extension charts to every member',
    });
  const data = cm.binaryData?.['chart.tgz'];
  if (!data)
    throw new KsUpgradeError(`failed to get chart data from configmap ${KUBESPHERE_NAMESPACE}/${cmName}`);
  return Buffer.from(data, 'base64');
}

/** Creates or updates the chart ConfigMap; errors are returned, not swallowed as in the original. */
export async function writeChartConfigMap(
  client: ResourceClient,
  name: string,
  version: string,
  chart: Uint8Array,
): Promise<'created' | 'updated' | 'unchanged'> {
  const cmName = chartConfigMapName(name, version);
  const data = Buffer.from(chart).toString('base64');
  const { created } = await client.createIfAbsent(ConfigMapResource, {
    metadata: { name: cmName, namespace: KUBESPHERE_NAMESPACE },
    binaryData: { 'chart.tgz': data },
  });
  if (created) return 'created';
  const { changed } = await client.mutate(ConfigMapResource, cmName, KUBESPHERE_NAMESPACE, (cm) => {
    cm.binaryData = { ...cm.binaryData, 'chart.tgz': data };
  });
  return changed ? 'updated' : 'unchanged';
}
