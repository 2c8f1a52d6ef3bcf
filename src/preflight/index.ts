// The preflight (docs/preflight.md): read-only checks before anything changes — the first step of
// `upgradeCluster`, of `ks-upgrade plan` and of each cluster in a fleet plan. A failing check stops
// the upgrade; `--skip-check NAME` (recorded with who and why) is the only way past one.
import { readFile } from 'node:fs/promises';
import { KsUpgradeError, describeError } from '../errors.js';
import { lastDeployedRelease } from '../helm/release.js';
import { isRecord } from '../util/object.js';
import {
  checkAccess,
  checkApiServer,
  checkCharts,
  checkConcurrentUpgrade,
  checkImages,
  checkKubeSphereVersion,
  checkStore,
  fetchCharts,
  pullCredentials,
  registryClient,
  type PreflightEnv,
} from './checks.js';
import type { SkipCheck } from '../upgrade/input.js';
import { preflightFailure } from './format.js';
import type { RegistryClient } from './registry.js';
import {
  PREFLIGHT_CHECKS,
  type PreflightCheckName,
  type PreflightCheckResult,
  type PreflightReport,
} from './types.js';

export type { ConcurrentUpgrades, PreflightEnv } from './checks.js';
export type { PreflightCheckResult, PreflightReport } from './types.js';

export { PREFLIGHT_CHECKS, type PreflightCheckName } from './types.js';

export type { SkipCheck } from '../upgrade/input.js';

/** Runs every check against one cluster; skips mark failing checks as passed-by-decision. */
export async function runPreflight(
  env: PreflightEnv,
  skipChecks: readonly SkipCheck[] = [],
): Promise<PreflightReport> {
  const results = new Map<string, PreflightCheckResult>();
  const guard = async (
    name: PreflightCheckName,
    fn: () => Promise<PreflightCheckResult> | PreflightCheckResult,
  ) => {
    env.heartbeat?.(name);
    try {
      results.set(name, await fn());
    } catch (err) {
      results.set(name, {
        name,
        ok: false,
        evidence: `the check failed: ${describeError(err)}`,
        fix: 'see the error; retry',
      });
    }
  };
  // Charts first: the api-server check compares with the ks-core chart's kubeVersion, and the
  // image check reads the charts' values.
  let charts: Awaited<ReturnType<typeof fetchCharts>> = [];
  let registry: RegistryClient | undefined;
  let pull: Awaited<ReturnType<typeof pullCredentials>> | undefined;
  let setupError: string | undefined;
  try {
    const secrets = await chartPullSecrets(env);
    pull = await pullCredentials(env, secrets);
    registry = await registryClient(env, pull.auth);
    const ca = env.config.checks?.caFile ? await readFile(env.config.checks.caFile) : undefined;
    charts = await fetchCharts(env, registry, ca);
  } catch (err) {
    setupError = describeError(err);
  }
  const core = charts.find((c) => c.what === 'ks-core')?.chart;
  await guard('api-server', () => checkApiServer(env, core));
  await guard('kubesphere-version', () => checkKubeSphereVersion(env));
  await guard('access', () => checkAccess(env));
  await guard('charts', () =>
    setupError
      ? {
          name: 'charts',
          ok: false,
          evidence: setupError,
          fix: 'fix checks.coreChart / checks.caFile / checks.registryAuthFile',
        }
      : checkCharts(charts),
  );
  await guard('images', () =>
    registry && pull
      ? checkImages(env, charts, registry, pull.auth, pull.notes)
      : { name: 'images', ok: false, evidence: setupError ?? 'not set up', fix: 'see the charts check' },
  );
  await guard('store', () => checkStore(env));
  await guard('concurrent-upgrade', () => checkConcurrentUpgrade(env));
  const checks = PREFLIGHT_CHECKS.map((name) => results.get(name) as PreflightCheckResult).map((r) => {
    const skip = skipChecks.find((s) => s.name === r.name);
    return skip && !r.ok ? { ...r, skipped: { by: skip.by, reason: skip.reason } } : r;
  });
  return {
    cluster: env.cluster,
    ok: checks.every((c) => c.ok || c.skipped !== undefined),
    checkedAt: new Date().toISOString(),
    checks,
  };
}

/**
 * The image pull secrets in the values of the deployed ks-core release (`global.imagePullSecrets`,
 * or the v3 chart's top-level `imagePullSecrets`): `helm upgrade` carries them over, so the new
 * pods pull with them.
 */
async function chartPullSecrets(env: PreflightEnv): Promise<string[]> {
  const release = await lastDeployedRelease(env.client, 'kubesphere-system', 'ks-core').catch(
    () => undefined,
  );
  const values = release?.config ?? {};
  const global = isRecord(values.global) ? values.global : {};
  const list: unknown[] = [
    ...((Array.isArray(global.imagePullSecrets) ? global.imagePullSecrets : []) as unknown[]),
    ...((Array.isArray(values.imagePullSecrets) ? values.imagePullSecrets : []) as unknown[]),
  ];
  return list.flatMap((s: unknown) =>
    typeof s === 'string' ? [s] : isRecord(s) && typeof s.name === 'string' ? [s.name] : [],
  );
}

/** The preflight found a problem: the upgrade must not start. */
export class PreflightFailedError extends KsUpgradeError {
  constructor(readonly report: PreflightReport) {
    const { error, hint } = preflightFailure(report);
    super(error, { hint });
  }
}

export { formatPreflight, preflightFailure, preflightMarkdown } from './format.js';
