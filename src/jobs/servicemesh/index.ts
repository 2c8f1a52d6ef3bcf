// The `servicemesh` job (priority 90): KubeSphere v3 service mesh (Istio 1.14.6, Jaeger, Kiali in
// istio-system) to the v4 servicemesh extension (reference §4.10). Fixed: each object is deleted on
// every run, not only when its backup was just written (the original skipped the delete after a
// crash between backup and delete, leaving the object forever). Docs: docs/jobs/servicemesh.md.
import {
  CustomResourceDefinitionResource,
  DeploymentResource,
  MutatingWebhookConfigurationResource,
  RbacClusterRoleBindingResource,
  RbacClusterRoleResource,
  ValidatingWebhookConfigurationResource,
  type CustomResourceDefinition,
} from '../../api/core.js';
import { JaegerResource, KialiResource, type ClusterConfiguration } from '../../api/v3/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { ValidationError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { waitForCrdEstablished } from '../../kube/crd.js';
import type { KubeObject, ResourceType } from '../../kube/types.js';
import { getClusterConfiguration } from '../../kubesphere/index.js';
import { DoneMarker, backupOnce, ccEnabled, loadBackup, onHost, placementFromClusters } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { checkKnownOptions, checkRerun, forCreate, removePendingInstallPlan } from '../helpers.js';

const JOB = 'servicemesh';
const ISTIO = 'istio-system';

interface Target {
  rt: ResourceType;
  name: string;
  /** The Go type name the original put in the key. */
  kind: string;
}

const ROLES = [
  'istio-reader-clusterrole-1-14-6-istio-system',
  'istio-reader-istio-system',
  'istiod-clusterrole-1-14-6-istio-system',
  'istiod-gateway-controller-1-14-6-istio-system',
  'istiod-istio-system',
  'kiali',
  'kiali-operator',
];

/** The v3 objects removed, in the original's order. Deployments are in istio-system. */
export const SERVICEMESH_OBJECTS: readonly Target[] = [
  ...[
    'jaeger-query',
    'jaeger-collector',
    'jaeger-operator',
    'kiali-operator',
    'istiod-1-14-6',
    'kiali',
    'istio-ingressgateway',
  ].map((name) => ({ rt: DeploymentResource, name, kind: 'Deployment' })),
  ...ROLES.map((name) => ({ rt: RbacClusterRoleResource, name, kind: 'ClusterRole' })),
  ...ROLES.map((name) => ({ rt: RbacClusterRoleBindingResource, name, kind: 'ClusterRoleBinding' })),
  ...['istio-validator-1-14-6-istio-system', 'istiod-default-validator'].map((name) => ({
    rt: ValidatingWebhookConfigurationResource,
    name,
    kind: 'ValidatingWebhookConfiguration',
  })),
  ...['istio-revision-tag-default', 'istio-sidecar-injector-1-14-6'].map((name) => ({
    rt: MutatingWebhookConfigurationResource,
    name,
    kind: 'MutatingWebhookConfiguration',
  })),
];

/** The Jaeger and Kiali CRs (keys `servicemesh-jaeger`, `servicemesh-kiali`), finalizers cleared. */
export const SERVICEMESH_CRS = [
  { rt: JaegerResource, name: 'jaeger', key: 'servicemesh-jaeger' },
  { rt: KialiResource, name: 'kiali', key: 'servicemesh-kiali' },
] as const;
export const SERVICEMESH_CRDS = ['kialis.kiali.io', 'jaegers.jaegertracing.io'];

/** The original's key: `servicemesh-<name>-<Kind>`. */
export function servicemeshKey(name: string, kind: string): string {
  return `${JOB}-${name}-${kind}`;
}

const enabled = (cc: ClusterConfiguration) => ccEnabled(cc, ['spec', 'servicemesh', 'enabled']);
const nsOf = (rt: ResourceType) => (rt.namespaced ? ISTIO : undefined);

async function clean(ctx: JobContext): Promise<void> {
  for (const t of SERVICEMESH_OBJECTS) {
    const obj = await backupOnce(
      ctx,
      servicemeshKey(t.name, t.kind),
      () => ctx.v3.tryGet(t.rt, t.name, nsOf(t.rt)),
      {
        absent: `${t.kind} ${t.name} not found`,
      },
    );
    // Always — whether or not the backup was just written.
    if (obj && (await ctx.v3.delete(t.rt, t.name, nsOf(t.rt))))
      ctx.logger.info(`${t.kind} ${t.name} deleted`);
  }
  for (const cr of SERVICEMESH_CRS) {
    const obj = await backupOnce(ctx, cr.key, () => ctx.v3.tryGet(cr.rt, cr.name, ISTIO), {
      absent: `${cr.rt.kind} ${ISTIO}/${cr.name} not found (or not served)`,
    });
    if (obj && (await ctx.v3.delete(cr.rt, cr.name, ISTIO, { clearFinalizers: true }))) {
      ctx.logger.info(`${cr.rt.kind} ${ISTIO}/${cr.name} deleted`);
    }
  }
  for (const name of SERVICEMESH_CRDS) {
    const crd = await backupOnce(
      ctx,
      servicemeshKey(name, 'CustomResourceDefinition'),
      () => ctx.v3.tryGet(CustomResourceDefinitionResource, name),
      { absent: `CRD ${name} not found` },
    );
    if (crd && (await ctx.v4.delete(CustomResourceDefinitionResource, name)))
      ctx.logger.info(`CRD ${name} deleted`);
  }
}

class ServicemeshJob implements UpgradeJob {
  constructor(private readonly ref: ExtensionRef) {}

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const actions: PlannedAction[] = [];
    if (enabled(await getClusterConfiguration(ctx.v3))) {
      for (const t of SERVICEMESH_OBJECTS) {
        if (await ctx.v3.tryGet(t.rt, t.name, nsOf(t.rt))) {
          actions.push({
            phase: 'post-upgrade',
            action: 'back up and delete',
            target: `${t.kind} ${t.name}`,
          });
        }
      }
      actions.push(
        {
          phase: 'post-upgrade',
          action: 'back up and delete (finalizers cleared)',
          target: 'Jaeger/Kiali CRs',
        },
        ...SERVICEMESH_CRDS.map((c) => ({
          phase: 'post-upgrade' as const,
          action: 'back up and delete',
          target: `CRD ${c}`,
        })),
      );
    }
    if (await onHost(ctx))
      actions.push({ phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` });
    return actions;
  }

  /** Nothing to do before the core upgrade (as the original). */
  async preUpgrade(): Promise<void> {
    // intentionally empty
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    if (enabled(await getClusterConfiguration(ctx.v3))) await clean(ctx);
    if (await onHost(ctx)) {
      const ref = structuredClone(this.ref);
      const scheduling = await placementFromClusters(ctx, ref, enabled);
      if (scheduling) ref.clusterScheduling = scheduling;
      const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
      ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
    }
    await marker.mark();
  }

  /** Removes a pending InstallPlan, then re-creates what was deleted: CRDs, CRs, then the rest. */
  async rollback(ctx: JobContext): Promise<void> {
    await removePendingInstallPlan(ctx, this.ref.name);
    for (const name of SERVICEMESH_CRDS) {
      const crd = await loadBackup<CustomResourceDefinition>(
        ctx,
        servicemeshKey(name, 'CustomResourceDefinition'),
        { takenIn: 'post-upgrade' },
      );
      if (!crd) continue;
      await ctx.v4.createIfAbsent(CustomResourceDefinitionResource, forCreate(crd));
      await waitForCrdEstablished(ctx.v4, name, { reporter: ctx });
    }
    for (const cr of SERVICEMESH_CRS) {
      const obj = await loadBackup<KubeObject>(ctx, cr.key, { takenIn: 'post-upgrade' });
      if (obj) await ctx.v3.createIfAbsent(cr.rt, forCreate(obj));
    }
    let restored = 0;
    for (const t of SERVICEMESH_OBJECTS) {
      const obj = await loadBackup<KubeObject>(ctx, servicemeshKey(t.name, t.kind), {
        takenIn: 'post-upgrade',
      });
      if (obj && (await ctx.v3.createIfAbsent(t.rt, forCreate(obj))).created) restored++;
    }
    ctx.logger.info(`restored ${restored} service mesh objects`);
  }
}

export const servicemeshJobFactory: JobFactory = {
  name: JOB,
  description: 'KubeSphere v3 service mesh (Istio, Jaeger, Kiali) to the v4 servicemesh extension',
  create(options, extensionRef) {
    checkKnownOptions(JOB, options, ['rerun']);
    checkRerun(JOB, options);
    if (!extensionRef?.version) {
      throw new ValidationError('jobs.servicemesh.extensionRef.version is required', {
        hint: 'e.g. extensionRef: { name: servicemesh, version: 1.0.0 } (the sample config.yaml has it)',
      });
    }
    return new ServicemeshJob({ ...extensionRef, name: extensionRef.name || JOB });
  },
};
