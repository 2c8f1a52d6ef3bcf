// The original's validators (reference §1.3) and the detect gate: bounded, heartbeating waits on
// cluster state.
import { DeploymentResource } from '../api/core.js';
import { RepositoryResource } from '../api/v4/index.js';
import type { ValidatorConfig } from '../config/types.js';
import { CONFIG_DEFAULTS } from '../config/defaults.js';
import { lastDeployedRelease } from '../helm/release.js';
import { manifestObjects } from '../helm/uninstall.js';
import type { ResourceClient } from '../kube/client.js';
import { KUBESPHERE_NAMESPACE } from '../kubesphere/index.js';
import { WaitTimeoutError, formatDuration, notYet, waitFor, type WaitReporter } from '../util/wait.js';

export interface CheckResult {
  ok: boolean;
  reason: string;
}

/**
 * `ksVersion`: the phases prepare and pre-upgrade run only while the deployed ks-core is v3. A
 * cluster without ks-core release history passes (as in the original), with an honest reason.
 */
export async function checkKsVersion(client: ResourceClient): Promise<CheckResult> {
  const release = await lastDeployedRelease(client, KUBESPHERE_NAMESPACE, 'ks-core');
  if (!release) return { ok: true, reason: 'no deployed ks-core release found; assuming KubeSphere v3' };
  const appVersion = release.chart.metadata.appVersion ?? '';
  return appVersion.startsWith('v3.')
    ? { ok: true, reason: `deployed ks-core is ${appVersion}` }
    : {
        ok: false,
        reason: `deployed ks-core is ${appVersion || 'of unknown version'}, not v3: already upgraded`,
      };
}

/** The extensions-museum Repository did not sync in time. */
export class MuseumNotSyncedError extends WaitTimeoutError {}

/**
 * `extensionsMuseum`: waits until the Repository has synced (within `syncInterval` when set),
 * bounded by `watchTimeout` (the config default when unset) — polled, so a dropped watch cannot
 * stall it.
 */
export async function waitForMuseumSync(
  client: ResourceClient,
  cfg: ValidatorConfig['extensionsMuseum'],
  options: { intervalMs?: number; reporter?: WaitReporter } = {},
): Promise<CheckResult> {
  const within = cfg.syncInterval > 0 ? ` within the last ${formatDuration(cfg.syncInterval)}` : '';
  return waitFor(
    {
      what: `extensions museum Repository ${cfg.name} to sync${within}`,
      timeoutMs: cfg.watchTimeout > 0 ? cfg.watchTimeout : CONFIG_DEFAULTS.museumWatchTimeoutMs,
      intervalMs: options.intervalMs ?? 2000,
      check: async () => {
        const repo = await client.tryGet(RepositoryResource, cfg.name);
        const last = repo?.status?.lastSyncTime;
        if (last) {
          const age = Date.now() - Date.parse(last);
          if (cfg.syncInterval === 0 || age <= cfg.syncInterval)
            return { ok: true, reason: `Repository ${cfg.name} synced at ${last}` };
          return notYet(`last synced at ${last}`);
        }
        return notYet(repo ? 'not synced yet' : `Repository ${cfg.name} does not exist`);
      },
      hint:
        `if Repository ${cfg.name} does not exist, is KubeSphere v4 core installed on this (host) cluster? ` +
        `Otherwise check the extensions-museum pods and 'kubectl get repository ${cfg.name} -o yaml'`,
      timeoutError: MuseumNotSyncedError,
    },
    options.reporter,
  );
}

/**
 * The detect gate: KubeSphere v4 core is running when the newest deployed ks-core release is v4
 * and its API server has rolled out (ready, all replicas updated) — "helm said success" alone is not
 * enough (kubesphere#6521: success reported while the old image still ran). That is ks-apiserver on
 * a host; on a member the v4 chart deploys ks-agent instead (and removes ks-apiserver).
 */
export async function detectCoreUpgrade(client: ResourceClient): Promise<CheckResult> {
  const release = await lastDeployedRelease(client, KUBESPHERE_NAMESPACE, 'ks-core');
  const appVersion = release?.chart.metadata.appVersion ?? '';
  if (!release || !appVersion.startsWith('v4.')) {
    return { ok: false, reason: `deployed ks-core is ${appVersion || 'not found'}; waiting for v4` };
  }
  const agent = manifestObjects(release).some(
    (o) => o.kind === 'Deployment' && o.metadata.name === 'ks-agent',
  );
  const name = agent ? 'ks-agent' : 'ks-apiserver';
  const apiserver = await client.tryGet(DeploymentResource, name, KUBESPHERE_NAMESPACE);
  const want = apiserver?.spec?.replicas ?? 1;
  const s = apiserver?.status;
  // A status older than the spec describes the previous rollout: not evidence of the new one.
  const current = (s?.observedGeneration ?? 0) >= (apiserver?.metadata.generation ?? 1);
  if (
    !apiserver ||
    !current ||
    (s?.updatedReplicas ?? 0) < want ||
    (s?.readyReplicas ?? 0) < Math.max(want, 1)
  ) {
    return { ok: false, reason: `ks-core ${appVersion} deployed; ${name} not rolled out yet` };
  }
  return { ok: true, reason: `ks-core ${appVersion} deployed and ${name} ready` };
}

/** The detect gate's bound passed without KubeSphere v4 core running. */
export class CoreUpgradeTimeoutError extends WaitTimeoutError {}

/** The detect gate: polls {@link detectCoreUpgrade} until v4 core runs, bounded by `timeoutMs`. */
export async function waitForCoreUpgrade(
  client: ResourceClient,
  options: { timeoutMs: number; intervalMs?: number; reporter?: WaitReporter },
): Promise<CheckResult> {
  return waitFor(
    {
      what: 'KubeSphere v4 core (a deployed v4 ks-core release and a rolled-out ks-apiserver)',
      timeoutMs: options.timeoutMs,
      intervalMs: options.intervalMs ?? 5000,
      check: async () => {
        const res = await detectCoreUpgrade(client);
        return res.ok ? res : notYet(res.reason);
      },
      hint: 'run the helm upgrade of ks-core (see the upgrade guide), then retry this step',
      timeoutError: CoreUpgradeTimeoutError,
    },
    options.reporter,
  );
}
