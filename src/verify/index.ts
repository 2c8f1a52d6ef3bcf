// Verification (docs/verification.md): is the upgrade of a cluster really done, judged from the
// cluster itself — the last step of `upgradeCluster`, `ks-upgrade verify`, and the fleet's wave
// gate. Helm saying "deployed" is not enough (kubesphere#6521: success while the old image ran).
import { CustomResourceDefinitionResource, DeploymentResource, type Deployment } from '../api/core.js';
import { InstallPlanResource } from '../api/v4/index.js';
import type { UpgradeConfig } from '../config/types.js';
import { describeError } from '../errors.js';
import { releaseHistory } from '../helm/release.js';
import type { JobRegistry } from '../jobs/registry.js';
import { planJobs } from '../jobs/runner.js';
import type { ResourceClient } from '../kube/client.js';
import { crdVersions } from '../kube/crd.js';
import { defineResource } from '../kube/types.js';
import { clusterRole, type ClusterRole } from '../kubesphere/index.js';
import { sleep } from '../util/concurrency.js';
import { BUILTIN_STORAGE_MIGRATIONS } from '../rbac/builtin.js';
import { CORE_DEPLOYMENTS } from '../rbac/framework.js';
import { leftoversOf } from '../rbac/table.js';
import type { Leftover, VerificationFinding, VerificationReport } from './types.js';

export type { Leftover, VerificationFinding, VerificationReport } from './types.js';

const NS = 'kubesphere-system';

/** What verification runs against. */
export interface VerifyEnv {
  cluster: string;
  client: ResourceClient;
  config: UpgradeConfig;
  registry: JobRegistry;
  /** The ks-core appVersion expected; default `checks.targetVersion`, else the deployed release's (v4). */
  targetVersion?: string;
}

const found = (check: string, evidence: string): VerificationFinding => ({ check, ok: true, evidence });
const problem = (check: string, evidence: string, fix: string): VerificationFinding => ({
  check,
  ok: false,
  evidence,
  fix,
});

/** The tag of an image reference (`…/ks-apiserver:v4.1.3@sha256:…` → `v4.1.3`). */
function imageTag(image: string): string {
  const noDigest = image.split('@')[0] ?? '';
  const colon = noDigest.lastIndexOf(':');
  return colon > noDigest.lastIndexOf('/') ? noDigest.slice(colon + 1) : 'latest';
}

/** The v4 ks-core release: deployed (newest revision), at the target version. */
async function coreRelease(env: VerifyEnv): Promise<{ finding: VerificationFinding; appVersion?: string }> {
  const check = 'ks-core-release';
  const history = await releaseHistory(env.client, NS, 'ks-core');
  const newest = history[0]?.release;
  if (!newest) {
    return {
      finding: problem(
        check,
        `no ks-core Helm release in ${NS}`,
        'run the core upgrade (`helm upgrade --install ks-core …`, or gate helm)',
      ),
    };
  }
  const appVersion = newest.chart.metadata.appVersion ?? '';
  const target = env.targetVersion ?? env.config.checks?.targetVersion;
  const what = `ks-core revision ${newest.version} is ${newest.info.status}, chart ${newest.chart.metadata.name}-${newest.chart.metadata.version} (${appVersion || 'no appVersion'})`;
  if (newest.info.status !== 'deployed') {
    return {
      finding: problem(
        check,
        what,
        `finish or roll back the Helm operation (\`helm history ks-core -n ${NS}\`; a pending-* revision blocks the next upgrade)`,
      ),
      appVersion,
    };
  }
  if (target ? appVersion !== target : !appVersion.startsWith('v4.')) {
    return {
      finding: problem(
        check,
        `${what}; expected ${target ?? 'a v4 release'}`,
        'run the core upgrade to the target chart',
      ),
      appVersion,
    };
  }
  return { finding: found(check, what), appVersion };
}

/** A control-plane Deployment rolled out on the target image: the new pods run, the old are gone. */
function rollout(name: string, d: Deployment | undefined, target: string | undefined): VerificationFinding {
  const check = `rollout/${name}`;
  if (!d)
    return problem(
      check,
      `Deployment ${NS}/${name} not found`,
      'the core upgrade did not create it: check the ks-core release',
    );
  const container =
    d.spec?.template?.spec?.containers?.find((c) => c.name === name) ??
    d.spec?.template?.spec?.containers?.[0];
  const image = container?.image ?? '';
  const tag = imageTag(image);
  const want = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  const generation = d.metadata.generation ?? 0;
  const facts = `image ${image}; generation ${generation}, observed ${s.observedGeneration ?? '-'}; ${s.updatedReplicas ?? 0}/${want} updated, ${s.availableReplicas ?? 0}/${want} available`;
  if (target && tag !== target) {
    return problem(
      check,
      `${facts}; expected tag ${target}`,
      `the Deployment still runs the old image: re-run the core upgrade (helm upgrade ks-core) and check its values`,
    );
  }
  if (!target && !tag.startsWith('v4.')) {
    return problem(check, `${facts}; expected a v4 image`, 're-run the core upgrade (helm upgrade ks-core)');
  }
  if (want < 1)
    return problem(
      check,
      `${facts}; scaled to 0`,
      `scale it up: kubectl -n ${NS} scale deployment ${name} --replicas=1`,
    );
  if (
    (s.observedGeneration ?? 0) < generation ||
    (s.updatedReplicas ?? 0) < want ||
    (s.availableReplicas ?? 0) < want
  ) {
    return problem(
      check,
      `${facts}; the rollout has not finished`,
      `see \`kubectl -n ${NS} rollout status deployment/${name}\` and its pods (image pull errors, crash loops)`,
    );
  }
  return found(check, facts);
}

/** Every InstallPlan of the plan (the enabled jobs' extensions) is Installed. */
async function installPlans(env: VerifyEnv): Promise<VerificationFinding[]> {
  const wanted = new Set<string>();
  for (const p of planJobs(env.config, env.registry)) {
    const ref = env.config.jobs[p.name]?.extensionRef;
    if (p.enabled && ref?.name) wanted.add(ref.name);
  }
  if (wanted.size === 0) return [];
  const plans = new Map(
    (await env.client.listIfServed(InstallPlanResource)).map((p) => [p.metadata.name ?? '', p]),
  );
  return [...wanted].sort().map((name) => {
    const check = `installplan/${name}`;
    const plan = plans.get(name);
    if (!plan) return found(check, `no InstallPlan ${name}: its job found nothing to migrate`);
    const state = plan.status?.state ?? '';
    const what = `InstallPlan ${name} (${plan.spec.extension.name}-${plan.spec.extension.version}) is ${state || 'pending'}`;
    if (state === 'Installed' || state === 'Upgraded') return found(check, what);
    return problem(
      check,
      what,
      `inspect \`kubectl get installplan ${name} -o yaml\`, the extension's install job and the ks-controller-manager logs (offline installs hang when an image or chart is missing)`,
    );
  });
}

/** The v3 objects the jobs removed for good are gone. */
async function leftovers(env: VerifyEnv, role: ClusterRole): Promise<VerificationFinding[]> {
  const list: Leftover[] = leftoversOf(env.config, env.registry).filter(
    (l) => !l.roles || l.roles.includes(role),
  );
  const findings: VerificationFinding[] = [];
  for (const l of list.sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`))) {
    const rt = defineResource({
      group: l.group,
      version: l.version,
      kind: l.kind,
      plural: l.resource,
      namespaced: l.namespace !== undefined,
    });
    const check = `leftover/${l.kind}/${l.namespace ? `${l.namespace}/` : ''}${l.name}`;
    const obj = await env.client.tryGet(rt, l.name, l.namespace);
    if (!obj) {
      findings.push(found(check, 'absent'));
      continue;
    }
    findings.push(
      problem(
        check,
        `${l.kind} ${l.namespace ? `${l.namespace}/` : ''}${l.name} still exists (created ${obj.metadata.creationTimestamp ?? '?'}): ${l.why}`,
        `delete it: kubectl delete ${l.resource}.${l.group || 'core'} ${l.name}${l.namespace ? ` -n ${l.namespace}` : ''} (after checking nothing of v4 uses it)`,
      ),
    );
  }
  return findings;
}

/** The CRDs a job migrated store only their storage version. */
async function storedVersions(env: VerifyEnv): Promise<VerificationFinding[]> {
  const findings: VerificationFinding[] = [];
  for (const p of planJobs(env.config, env.registry)) {
    if (!p.enabled) continue;
    for (const name of BUILTIN_STORAGE_MIGRATIONS[p.name] ?? []) {
      const crd = await env.client.tryGet(CustomResourceDefinitionResource, name);
      if (!crd) continue;
      const { storage } = crdVersions(crd);
      const stored = crd.status?.storedVersions ?? [];
      const check = `stored-versions/${name}`;
      const what = `storedVersions [${stored.join(', ')}], storage version ${storage ?? '?'}`;
      findings.push(
        stored.length === 1 && stored[0] === storage
          ? found(check, what)
          : problem(
              check,
              what,
              `run the ${p.name} job's pre-upgrade again: it re-stores every object in ${storage ?? 'the storage version'} and then drops the old version`,
            ),
      );
    }
  }
  return findings;
}

/** How long {@link verifyCluster} may wait for rollouts and installs still in progress. */
export interface VerifyWait {
  /** 0 (default): judge the state as it is now. */
  waitMs?: number;
  intervalMs?: number;
  signal?: AbortSignal;
  /** Called on every round (activities heartbeat here). */
  onPoll?: (report: VerificationReport) => void;
}

/**
 * Verifies one cluster's upgrade on its observed state; never writes. With `waitMs`, a failed
 * verification is repeated until it passes or the time is up — right after the upgrade, rollouts
 * and extension installs are often still running.
 */
export async function verifyCluster(env: VerifyEnv, wait: VerifyWait = {}): Promise<VerificationReport> {
  const deadline = Date.now() + (wait.waitMs ?? 0);
  for (;;) {
    const report = await verifyOnce(env);
    if (report.ok || Date.now() >= deadline) return report;
    wait.onPoll?.(report);
    await sleep(Math.min(wait.intervalMs ?? 2000, Math.max(0, deadline - Date.now())), wait.signal);
  }
}

async function verifyOnce(env: VerifyEnv): Promise<VerificationReport> {
  const findings: VerificationFinding[] = [];
  const guard = async (check: string, fn: () => Promise<VerificationFinding[]>): Promise<void> => {
    try {
      findings.push(...(await fn()));
    } catch (err) {
      findings.push(
        problem(
          check,
          `could not verify: ${describeError(err)}`,
          'see the error (access, API server), then verify again',
        ),
      );
    }
  };
  let appVersion: string | undefined;
  await guard('ks-core-release', async () => {
    const r = await coreRelease(env);
    appVersion = r.appVersion;
    return [r.finding];
  });
  const role: ClusterRole = await clusterRole(env.client).catch((): ClusterRole => 'host');
  const target =
    env.targetVersion ??
    env.config.checks?.targetVersion ??
    (appVersion?.startsWith('v4.') ? appVersion : undefined);
  // v4.1 runs ks-apiserver and ks-console on the host only; a member runs ks-agent and the controller.
  const deployments: readonly string[] = role === 'member' ? ['ks-controller-manager'] : CORE_DEPLOYMENTS;
  await guard('rollout', async () =>
    Promise.all(
      deployments.map(async (name) =>
        rollout(name, await env.client.tryGet(DeploymentResource, name, NS), target),
      ),
    ),
  );
  if (role !== 'member') await guard('installplans', () => installPlans(env));
  await guard('leftovers', () => leftovers(env, role));
  await guard('stored-versions', () => storedVersions(env));
  return {
    cluster: env.cluster,
    ok: findings.every((f) => f.ok),
    checkedAt: new Date().toISOString(),
    findings,
  };
}

export { formatVerification, verificationFailure, verificationMarkdown } from './format.js';
