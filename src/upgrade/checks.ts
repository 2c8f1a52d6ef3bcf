// The original's validators (reference §1.3) and the detect gate: bounded, heartbeating waits on
// cluster state.
import { DeploymentResource } from '../api/core.js';
import { RepositoryResource } from '../api/v4/index.js';
import type { ValidatorConfig } from '../config/types.js';
import { KsUpgradeError } from '../errors.js';
import { lastDeployedRelease } from '../helm/release.js';
import { manifestObjects } from '../helm/uninstall.js';
import type { ResourceClient } from '../kube/client.js';
import { KUBESPHERE_NAMESPACE } from '../kubesphere/index.js';
import { sleep } from '../util/concurrency.js';

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
export class MuseumNotSyncedError extends KsUpgradeError {}

/**
 * `extensionsMuseum`: waits until the Repository has synced (within `syncInterval` when set),
 * bounded by `watchTimeout` — polled, so a dropped watch cannot stall it.
 */
export async function waitForMuseumSync(
  client: ResourceClient,
  cfg: ValidatorConfig['extensionsMuseum'],
  options: { heartbeat?: () => void; signal?: AbortSignal; intervalMs?: number } = {},
): Promise<CheckResult> {
  const deadline = Date.now() + (cfg.watchTimeout > 0 ? cfg.watchTimeout : Number.POSITIVE_INFINITY);
  for (;;) {
    const repo = await client.tryGet(RepositoryResource, cfg.name);
    const last = repo?.status?.lastSyncTime;
    if (last) {
      const age = Date.now() - Date.parse(last);
      if (cfg.syncInterval === 0 || age <= cfg.syncInterval)
        return { ok: true, reason: `Repository ${cfg.name} synced at ${last}` };
    }
    if (Date.now() >= deadline) {
      throw new MuseumNotSyncedError(
        `watch timeout after ${cfg.watchTimeout / 1000}s waiting for repository sync`,
        {
          hint: repo
            ? `check the extensions-museum pods and 'kubectl get repository ${cfg.name} -o yaml'`
            : `Repository ${cfg.name} does not exist: is KubeSphere v4 core installed on this (host) cluster?`,
        },
      );
    }
    options.heartbeat?.();
    await sleep(options.intervalMs ?? 2000, options.signal);
  }
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
