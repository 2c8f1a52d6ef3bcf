// The fleet's checks on a member as the host sees it and on upgraded gateways (the cluster itself is
// verified by src/verify, the same as a single upgrade), and the manual steps of the original
// upgrade guide the fleet does itself: removing the member's `Schedulable=False (Upgrading)` mark on
// the host, and checking each upgraded gateway. Read-only except clearMemberSchedulable.
import { ClusterResource, GatewayResource, InstallPlanResource, type InstallPlan } from '../api/v4/index.js';
import { KsUpgradeError } from '../errors.js';
import { releaseHistory } from '../helm/release.js';
import { MEMBER_CONDITIONS } from '../jobs/core/constants.js';
import { mutateCluster } from '../jobs/core/clusters.js';
import {
  KEYS,
  V2_APP_VERSION,
  V3_RELEASE_SUFFIX,
  type GatewayV1,
  type StoredList,
} from '../jobs/gateway/constants.js';
import { v2Name } from '../jobs/gateway/convert.js';
import type { ResourceClient } from '../kube/client.js';
import { BackupKeyNotFound, type ResourceStore } from '../store/index.js';
import type { VerificationFinding, VerificationReport } from '../verify/types.js';

const DONE: readonly string[] = ['Installed', 'Upgraded'];

function report(cluster: string, findings: VerificationFinding[]): VerificationReport {
  return { cluster, ok: findings.every((f) => f.ok), checkedAt: new Date().toISOString(), findings };
}

interface SchedulingStatus {
  state?: string;
}

/** The members an InstallPlan places its extension on, and their install states. */
function memberStates(plan: InstallPlan): { placed: string[]; states: Record<string, SchedulingStatus> } {
  const states = (plan.status?.clusterSchedulingStatuses ?? {}) as Record<string, SchedulingStatus>;
  const placed = plan.spec.clusterScheduling?.placement?.clusters ?? [];
  return { placed, states };
}

/**
 * What the host says about a member: its Cluster object no longer carries the upgrade's
 * `Schedulable=False` mark, and every extension placed on it is Installed there
 * (`InstallPlan.status.clusterSchedulingStatuses[member]`).
 */
export async function verifyMemberOnHost(host: ResourceClient, member: string): Promise<VerificationReport> {
  const findings: VerificationFinding[] = [];
  const cluster = await host.tryGet(ClusterResource, member);
  const mark = cluster?.status?.conditions?.find((c) => isUpgradeMark(c));
  findings.push({
    check: 'schedulable',
    ok: cluster !== undefined && !mark,
    evidence: !cluster
      ? `no Cluster ${member} on the host`
      : mark
        ? `Cluster ${member} still has Schedulable=False (${mark.reason ?? ''})`
        : `Cluster ${member} is schedulable`,
    ...(!cluster
      ? { fix: `set the cluster's kubesphereName in the fleet file to its Cluster object's name on the host` }
      : {}),
  });
  for (const plan of await host.listIfServed(InstallPlanResource)) {
    const { placed, states } = memberStates(plan);
    if (!placed.includes(member) && states[member] === undefined) continue;
    const name = plan.metadata.name ?? '';
    const state = states[member]?.state ?? '';
    const ok = DONE.includes(state);
    findings.push({
      check: `installplan/${name}@${member}`,
      ok,
      evidence: `InstallPlan ${name} on ${member} is ${state || 'not yet reported'}`,
      ...(ok
        ? {}
        : {
            fix: `inspect 'kubectl get installplan ${name} -o yaml' (status.clusterSchedulingStatuses.${member}) on the host`,
          }),
    });
  }
  return report(member, findings);
}

const SCHEDULABLE = MEMBER_CONDITIONS.find((c) => c.type === 'Schedulable');

function isUpgradeMark(c: { type: string; status: string; reason?: string }): boolean {
  return c.type === SCHEDULABLE?.type && c.status === SCHEDULABLE.status && c.reason === SCHEDULABLE.reason;
}

/**
 * Removes the `Schedulable=False (Upgrading)` condition the core job's pre-upgrade put on the
 * member's Cluster object on the host — the step the original's docs leave to the operator.
 * Only that exact mark: a Schedulable condition someone else set stays. Idempotent.
 */
export async function clearMemberSchedulable(
  host: ResourceClient,
  member: string,
): Promise<{ cleared: boolean; evidence: string }> {
  if (!(await host.tryGet(ClusterResource, member))) {
    throw new KsUpgradeError(`no Cluster ${member} on the host`, {
      hint: "set the cluster's kubesphereName in the fleet file to the name of its Cluster object on the host",
    });
  }
  const cleared = await mutateCluster(host, member, (c) => {
    const conditions = c.status?.conditions;
    if (c.status && conditions?.some(isUpgradeMark))
      c.status.conditions = conditions.filter((x) => !isUpgradeMark(x));
  });
  return {
    cleared,
    evidence: cleared
      ? `removed Schedulable=False (Upgrading) from Cluster ${member} on the host`
      : `Cluster ${member} on the host had no Schedulable=False (Upgrading) mark`,
  };
}

/** The v1 Gateways the gateway job backed up on a cluster (empty when it backed up none). */
export async function backedUpGateways(store: ResourceStore, cluster: string): Promise<GatewayV1[]> {
  try {
    return (await store.scope(cluster, 'gateway').load<StoredList<GatewayV1>>(KEYS.gateways)).items ?? [];
  } catch (err) {
    if (err instanceof BackupKeyNotFound) return [];
    throw err;
  }
}

/**
 * One gateway after its dynamic-upgrade: the v2 Gateway exists at the v4 chart version, its helm
 * release is deployed, and the v3 release `<name>-ingress` is gone.
 */
export async function verifyGatewayState(
  kube: ResourceClient,
  cluster: string,
  gw: GatewayV1,
): Promise<VerificationReport> {
  const name = gw.metadata.name ?? '';
  const namespace = gw.metadata.namespace ?? '';
  const v2 = v2Name(gw);
  const gateway = (await kube.tryGet(GatewayResource, v2, namespace)) as
    { spec?: { appVersion?: string } } | undefined;
  const appVersion = gateway?.spec?.appVersion;
  const latest = (await releaseHistory(kube, namespace, v2))[0]?.release;
  const old = (await releaseHistory(kube, namespace, `${name}${V3_RELEASE_SUFFIX}`))[0]?.release;
  return report(cluster, [
    {
      check: `gateway/${name}/v2`,
      ok: appVersion === V2_APP_VERSION,
      evidence: gateway
        ? `Gateway ${namespace}/${v2} (v2alpha1) at ${appVersion ?? 'no appVersion'}`
        : `no v2 Gateway ${namespace}/${v2}`,
      ...(appVersion === V2_APP_VERSION
        ? {}
        : { fix: `retry the gateway's dynamic-upgrade (ks-upgrade-${cluster}-gateway-${name})` }),
    },
    {
      check: `gateway/${name}/release`,
      ok: latest?.info.status === 'deployed',
      evidence: latest
        ? `helm release ${namespace}/${v2} r${latest.version} is ${latest.info.status}`
        : `no helm release ${namespace}/${v2}`,
      ...(latest?.info.status === 'deployed'
        ? {}
        : { fix: 'check the gateway extension controller (InstallPlan gateway) and its logs' }),
    },
    {
      check: `gateway/${name}/v3-release`,
      ok: !old || old.info.status === 'uninstalled',
      evidence: old
        ? `v3 release ${namespace}/${name}${V3_RELEASE_SUFFIX} is ${old.info.status}`
        : `no v3 release ${namespace}/${name}${V3_RELEASE_SUFFIX}`,
      ...(!old || old.info.status === 'uninstalled'
        ? {}
        : { fix: `helm -n ${namespace} uninstall ${name}${V3_RELEASE_SUFFIX}` }),
    },
  ]);
}
