// The `network` job (priority 100): KubeSphere v3 networking (Calico IP pools managed through
// network.kubesphere.io, namespace network policies) to the v4 network extension (reference §4.8).
// Fixed: the wait for a Cluster object is bounded (the original looped forever), the user's
// extension config wins over the derived values, re-runs after the CRDs are gone still merge the
// pool annotations (from the backup). Keys, steps and limits: docs/jobs/network.md.
import {
  CustomResourceDefinitionResource,
  NetworkPolicyResource,
  ValidatingWebhookConfigurationResource,
  type CustomResourceDefinition,
  type WebhookConfiguration,
} from '../../api/core.js';
import {
  CalicoIPPoolResource,
  KsIPPoolResource,
  NamespaceNetworkPolicyResource,
  WorkspaceTemplateResource,
  type ClusterConfiguration,
} from '../../api/v3/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { KsUpgradeError, ValidationError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { waitForCrdEstablished } from '../../kube/crd.js';
import { NoKindError } from '../../kube/errors.js';
import type { KubeObject, OwnerReference, ResourceType } from '../../kube/types.js';
import { listClusters } from '../../kubesphere/clusters.js';
import { getClusterConfiguration } from '../../kubesphere/index.js';
import { sleep } from '../../util/concurrency.js';
import { getPath } from '../../util/object.js';
import {
  DoneMarker,
  backupOnce,
  clustersWhere,
  extensionValues,
  hasConfiguredPlacement,
  onHost,
  setIfAbsent,
  valuesText,
} from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import {
  asList,
  checkKnownOptions,
  checkRerun,
  forCreate,
  loadOptional,
  removePendingInstallPlan,
  type StoredList,
} from '../helpers.js';

const JOB = 'network';
const WEBHOOK = 'network.kubesphere.io';
const KS_API_VERSION = 'network.kubesphere.io/v1alpha1';
const CRDS = [
  'ippools.network.kubesphere.io',
  'ipamblocks.network.kubesphere.io',
  'ipamhandles.network.kubesphere.io',
];
const TYPE_LABEL = 'kubesphere.io/policy-type';
const TRAFFIC_LABEL = 'kubesphere.io/policy-traffic';

/** Store keys (the original's, inside the job's scope). */
export const NETWORK_KEYS = {
  webhook: 'network-validatingwebhookconfiguration.admissionregistration.k8s.io.v1',
  crds: Object.fromEntries(CRDS.map((name) => [name, `network-${name}-crd.apiextensions.k8s.io.v1`])),
  ksIPPools: 'network-ippools.network.kubesphere.io.v1alpha1',
  calicoIPPools: 'network-ippools.crd.projectcalico.org.v1',
  networkPolicies: 'network-networkpolicies.networking.k8s.io.v1',
  workspaceTemplates: 'network-workspacetemplates.tenant.kubesphere.io.v1alpha2',
  namespaceNetworkPolicies: 'network-namespacenetworkpolicies.network.kubesphere.io.v1alpha1',
} as const;

/** `jobs.network.dynamicOptions`. */
export interface NetworkOptions {
  /** How long post-upgrade waits on the host for the first Cluster object. Default 300 s. */
  clusterWaitMs: number;
}

export function parseNetworkOptions(options: Record<string, unknown>): NetworkOptions {
  checkKnownOptions(JOB, options, ['rerun', 'clusterWaitSeconds']);
  checkRerun(JOB, options);
  const raw = options.clusterWaitSeconds ?? 300;
  const seconds = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) {
    throw new ValidationError(
      `jobs.network.dynamicOptions.clusterWaitSeconds must be a positive number, got ${JSON.stringify(raw)}`,
      { hint: 'seconds post-upgrade waits for the v4 host Cluster object, e.g. 300' },
    );
  }
  return { clusterWaitMs: seconds * 1000 };
}

/** The cc flags the original reads: `spec.network.networkpolicy.enabled`, `spec.network.ippool.type == calico`. */
export function networkFlags(cc: ClusterConfiguration): { networkPolicy: boolean; ippool: boolean } {
  const np = getPath(cc, ['spec', 'network', 'networkpolicy', 'enabled']);
  return {
    networkPolicy: np === true || np === 'true',
    ippool: getPath(cc, ['spec', 'network', 'ippool', 'type']) === 'calico',
  };
}

interface IPPool extends KubeObject {
  spec?: Record<string, unknown>;
}
/**
 * A peer of a v1alpha1 NamespaceNetworkPolicy rule. Its JSON names are `namespace` and `service`
 * (Go fields NamespaceSelector/ServiceSelector, namespacenetworkpolicy_types.go of v3.4.1).
 */
interface Peer {
  ipBlock?: unknown;
  namespace?: { name?: string };
  service?: { name?: string; namespace?: string };
}
interface NamespaceNetworkPolicy extends KubeObject {
  spec?: { egress?: { to?: Peer[] }[]; ingress?: { from?: Peer[] }[] };
}

function trafficOf(peer: Peer | undefined, current: string): string {
  if (!peer) return current;
  let traffic = current;
  if (peer.ipBlock) traffic = 'outside';
  if (peer.namespace || peer.service) traffic = 'inside';
  return traffic;
}

/** The v4 labels of a namespace network policy, exactly as the original derives them. */
export function policyLabels(nnp: NamespaceNetworkPolicy): { type: string; traffic: string } {
  let type = '';
  let traffic = '';
  const egress = nnp.spec?.egress ?? [];
  const ingress = nnp.spec?.ingress ?? [];
  if (egress.length > 0) {
    type = 'egress';
    traffic = trafficOf(egress[0]?.to?.[0], traffic);
  }
  if (ingress.length > 0) {
    type = 'ingress';
    traffic = trafficOf(ingress[0]?.from?.[0], traffic);
  }
  return { type, traffic };
}

async function listOrUndefined<T extends KubeObject>(
  ctx: JobContext,
  rt: ResourceType<T>,
  apiVersion: string,
  kind: string,
): Promise<StoredList<T> | undefined> {
  try {
    return asList(apiVersion, kind, await ctx.v3.listAll(rt));
  } catch (err) {
    if (err instanceof NoKindError) return undefined;
    throw err;
  }
}

async function preUpgrade(ctx: JobContext): Promise<void> {
  await backupOnce(ctx, NETWORK_KEYS.webhook, () =>
    ctx.v3.tryGet(ValidatingWebhookConfigurationResource, WEBHOOK),
  );
  for (const name of CRDS) {
    await backupOnce(ctx, NETWORK_KEYS.crds[name] ?? '', () =>
      ctx.v3.tryGet(CustomResourceDefinitionResource, name),
    );
  }
  await backupOnce(ctx, NETWORK_KEYS.ksIPPools, () =>
    listOrUndefined(ctx, KsIPPoolResource, KS_API_VERSION, 'IPPool'),
  );
  await backupOnce(ctx, NETWORK_KEYS.calicoIPPools, () =>
    listOrUndefined(ctx, CalicoIPPoolResource, 'crd.projectcalico.org/v1', 'IPPool'),
  );
  await backupOnce(ctx, NETWORK_KEYS.networkPolicies, () =>
    listOrUndefined(ctx, NetworkPolicyResource, 'networking.k8s.io/v1', 'NetworkPolicy'),
  );
  await backupOnce(ctx, NETWORK_KEYS.workspaceTemplates, () =>
    listOrUndefined(ctx, WorkspaceTemplateResource, 'tenant.kubesphere.io/v1alpha2', 'WorkspaceTemplate'),
  );
  await backupOnce(ctx, NETWORK_KEYS.namespaceNetworkPolicies, () =>
    listOrUndefined(ctx, NamespaceNetworkPolicyResource, KS_API_VERSION, 'NamespaceNetworkPolicy'),
  );
}

/**
 * The IP pools: Calico pools lose their KubeSphere owner (or deleting the KubeSphere pools would
 * garbage-collect them) and take the KubeSphere pools' annotations; the KubeSphere pools lose their
 * finalizers; the validating webhook and the three CRDs go. Order matters and is the original's.
 */
async function upgradeIPPools(ctx: JobContext): Promise<void> {
  await ctx.v4.delete(ValidatingWebhookConfigurationResource, WEBHOOK);
  let ksPools: IPPool[];
  try {
    ksPools = await ctx.v3.listAll(KsIPPoolResource);
    for (const pool of ksPools) {
      if (pool.metadata.finalizers?.length) {
        await ctx.v3.clearFinalizers(KsIPPoolResource, pool.metadata.name ?? '');
      }
    }
  } catch (err) {
    if (!(err instanceof NoKindError)) throw err;
    // A re-run after the CRD went: the annotations come from the pre-upgrade backup.
    ksPools = (await loadOptional<StoredList<IPPool>>(ctx, NETWORK_KEYS.ksIPPools))?.items ?? [];
  }
  const annotationsByName = new Map(
    ksPools.map((p) => [p.metadata.name ?? '', p.metadata.annotations ?? {}]),
  );
  for (const pool of await ctx.v3.listIfServed(CalicoIPPoolResource)) {
    const name = pool.metadata.name ?? '';
    const { changed } = await ctx.v3.mutate(CalicoIPPoolResource, name, undefined, (obj) => {
      const refs: OwnerReference[] = obj.metadata.ownerReferences ?? [];
      const kept = refs.filter((r) => r.apiVersion !== KS_API_VERSION);
      if (kept.length !== refs.length) {
        if (kept.length > 0) obj.metadata.ownerReferences = kept;
        else delete obj.metadata.ownerReferences;
      }
      const ks = annotationsByName.get(name);
      if (ks && Object.keys(ks).length > 0) obj.metadata.annotations = { ...obj.metadata.annotations, ...ks };
    });
    if (changed) ctx.logger.info(`Calico IPPool ${name} updated`);
  }
  for (const crd of CRDS) {
    if (await ctx.v4.delete(CustomResourceDefinitionResource, crd)) ctx.logger.info(`CRD ${crd} deleted`);
  }
}

async function upgradeNamespaceNetworkPolicies(ctx: JobContext): Promise<void> {
  let updated = 0;
  for (const nnp of await ctx.v3.listIfServed(NamespaceNetworkPolicyResource)) {
    const { changed } = await ctx.v3.mutate(
      NamespaceNetworkPolicyResource,
      nnp.metadata.name ?? '',
      nnp.metadata.namespace,
      (obj) => {
        const { type, traffic } = policyLabels(obj);
        obj.metadata.labels = { ...obj.metadata.labels, [TYPE_LABEL]: type, [TRAFFIC_LABEL]: traffic };
      },
    );
    if (changed) updated++;
  }
  ctx.logger.info(`labelled ${updated} NamespaceNetworkPolicies`);
}

/** Waits, bounded, until the v4 controller has created at least one Cluster object. */
async function waitForClusters(ctx: JobContext, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await listClusters(ctx.kube)).length === 0) {
    if (Date.now() >= deadline) {
      throw new KsUpgradeError(`no Cluster object after ${Math.round(timeoutMs / 1000)}s`, {
        hint: 'KubeSphere v4 ks-controller-manager creates the host Cluster object: check that it runs, then retry (or raise jobs.network.dynamicOptions.clusterWaitSeconds)',
      });
    }
    ctx.heartbeat({ step: 'wait for a Cluster object' });
    await sleep(Math.min(5000, Math.max(200, timeoutMs / 10)), ctx.signal);
  }
}

/** The extensionRef of the InstallPlan: placement and the two feature flags from every cluster's cc. */
export async function networkInstallPlanRef(ctx: JobContext, base: ExtensionRef): Promise<ExtensionRef> {
  const ref = structuredClone(base);
  const { clusters, ccs } = await clustersWhere(ctx, (cc) => {
    const f = networkFlags(cc);
    return f.networkPolicy || f.ippool;
  });
  const flags = [...ccs.values()].map(networkFlags);
  const values = extensionValues(ref);
  setIfAbsent(
    values,
    'global.ippool.enable',
    flags.some((f) => f.ippool),
  );
  setIfAbsent(values, 'global.ippool.type', 'calico');
  setIfAbsent(values, 'global.ippool.webhook', true);
  setIfAbsent(
    values,
    'global.networkpolicy.enabled',
    flags.some((f) => f.networkPolicy),
  );
  const text = valuesText(values);
  if (text !== undefined) ref.config = text;
  if (!hasConfiguredPlacement(ref)) {
    ref.clusterScheduling = { ...ref.clusterScheduling, placement: { clusters } };
  }
  return ref;
}

class NetworkJob implements UpgradeJob {
  constructor(
    private readonly options: NetworkOptions,
    private readonly ref: ExtensionRef,
  ) {}

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const enabled = networkFlags(await getClusterConfiguration(ctx.v3));
    const actions: PlannedAction[] = [
      {
        phase: 'pre-upgrade',
        action: 'back up webhook, CRDs, IP pools, network policies, workspace templates',
      },
    ];
    if (enabled.ippool || enabled.networkPolicy) {
      actions.push(
        { phase: 'post-upgrade', action: 'delete', target: `ValidatingWebhookConfiguration ${WEBHOOK}` },
        {
          phase: 'post-upgrade',
          action: 'drop KubeSphere owner, merge annotations',
          target: 'Calico IPPools',
        },
        ...CRDS.map((c) => ({ phase: 'post-upgrade' as const, action: 'delete', target: `CRD ${c}` })),
        {
          phase: 'post-upgrade',
          action: 'label policy-type/policy-traffic',
          target: 'NamespaceNetworkPolicies',
        },
      );
    }
    if (await onHost(ctx))
      actions.push({ phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` });
    return actions;
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    // As the original: no done-marker check in pre-upgrade (backups are taken once anyway).
    await preUpgrade(ctx);
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    const flags = networkFlags(await getClusterConfiguration(ctx.v3));
    if (flags.ippool || flags.networkPolicy) {
      await upgradeIPPools(ctx);
      await upgradeNamespaceNetworkPolicies(ctx);
    }
    if (await onHost(ctx)) {
      await waitForClusters(ctx, this.options.clusterWaitMs);
      const ref = await networkInstallPlanRef(ctx, this.ref);
      const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
      ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
    }
    await marker.mark();
  }

  /**
   * Puts back the webhook, the three CRDs and the KubeSphere IP pools. Not restored: the Calico
   * pools' owner references (they would name the old pools' uids and get the Calico pools
   * garbage-collected) and the policy labels (harmless in v3).
   */
  async rollback(ctx: JobContext): Promise<void> {
    await removePendingInstallPlan(ctx, this.ref.name);
    for (const name of CRDS) {
      const crd = await loadOptional<CustomResourceDefinition>(ctx, NETWORK_KEYS.crds[name] ?? '');
      if (crd && (await ctx.v4.createIfAbsent(CustomResourceDefinitionResource, forCreate(crd))).created) {
        ctx.logger.info(`CRD ${name} restored`);
      }
    }
    const pools = (await loadOptional<StoredList<IPPool>>(ctx, NETWORK_KEYS.ksIPPools))?.items ?? [];
    if (pools.length > 0) {
      await waitForCrdEstablished(ctx.v4, 'ippools.network.kubesphere.io');
      for (const pool of pools) await ctx.v3.createIfAbsent(KsIPPoolResource, forCreate(pool));
    }
    const webhook = await loadOptional<WebhookConfiguration>(ctx, NETWORK_KEYS.webhook);
    if (webhook) await ctx.v4.createIfAbsent(ValidatingWebhookConfigurationResource, forCreate(webhook));
  }
}

export const networkJobFactory: JobFactory = {
  name: JOB,
  description: 'KubeSphere v3 IP pools and namespace network policies to the v4 network extension',
  create(options, extensionRef) {
    const parsed = parseNetworkOptions(options);
    if (!extensionRef?.version) {
      throw new ValidationError('jobs.network.extensionRef.version is required', {
        hint: 'e.g. extensionRef: { name: network, version: 1.1.0 } (the sample config.yaml has it)',
      });
    }
    return new NetworkJob(parsed, { ...extensionRef, name: extensionRef.name || JOB });
  },
};
