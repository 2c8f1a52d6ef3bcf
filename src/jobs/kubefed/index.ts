// The `kubefed` job (priority 100): KubeFed on a KubeSphere v3 host to the v4 kubefed extension
// (reference §4.10). Runs on a host with CRD kubefedclusters.core.kubefed.io only. pre-upgrade
// deletes the FederatedTypeConfigs of types v4 no longer federates, post-upgrade labels the
// federated CRDs as served and hands the remaining FederatedTypeConfigs to the extension's helm
// release. Added: both changes are backed up first (new keys below) so rollback can undo them, and
// finalizers are cleared on delete (the kubefed controller is gone by then). Docs: docs/jobs/kubefed.md.
import { CustomResourceDefinitionResource } from '../../api/core.js';
import { FederatedTypeConfigResource } from '../../api/v3/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { ValidationError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import type { KubeObject } from '../../kube/types.js';
import { backupOnce, loadBackup, onHost } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import {
  asList,
  checkKnownOptions,
  forCreate,
  removePendingInstallPlan,
  type StoredList,
} from '../helpers.js';

const JOB = 'kubefed';
export const KUBEFED_NAMESPACE = 'kube-federation-system';
const KUBEFED_CLUSTERS_CRD = 'kubefedclusters.core.kubefed.io';
const SERVED_LABEL = 'kubesphere.io/resource-served';

/** FederatedTypeConfigs of types KubeSphere v4 no longer federates (deleted in pre-upgrade). */
export const REMOVED_TYPE_CONFIGS = [
  'configs.notification.kubesphere.io',
  'notificationmanagers.notification.kubesphere.io',
  'receivers.notification.kubesphere.io',
  'routers.notification.kubesphere.io',
  'silences.notification.kubesphere.io',
  'globalrolebindings.iam.kubesphere.io',
  'globalroles.iam.kubesphere.io',
  'groupbindings.iam.kubesphere.io',
  'groups.iam.kubesphere.io',
  'users.iam.kubesphere.io',
  'workspacerolebindings.iam.kubesphere.io',
  'workspaceroles.iam.kubesphere.io',
  'workspaces.tenant.kubesphere.io',
];

/** FederatedTypeConfigs handed to the kubefed extension's helm release in post-upgrade. */
export const ADOPTED_TYPE_CONFIGS = [
  'applications.app.k8s.io',
  'clusterrolebindings.rbac.authorization.k8s.io',
  'clusterroles.rbac.authorization.k8s.io',
  'configmaps',
  'deployments.apps',
  'ingresses.networking.k8s.io',
  'jobs.batch',
  'limitranges',
  'namespaces',
  'persistentvolumeclaims',
  'replicasets.apps',
  'secrets',
  'serviceaccounts',
  'services',
  'statefulsets.apps',
];

/** Federated type CRDs labelled `kubesphere.io/resource-served: "true"` in post-upgrade. */
export const SERVED_CRDS = [
  'applications',
  'clusterrolebindings',
  'clusterroles',
  'configmaps',
  'deployments',
  'ingresses',
  'jobs',
  'limitranges',
  'namespaces',
  'persistentvolumeclaims',
  'replicasets',
  'secrets',
  'serviceaccounts',
  'services',
  'statefulsets',
].map((t) => `federated${t}.types.kubefed.io`);

/** Store keys — the original backed up nothing; these are ks-upgrade's. */
export const KUBEFED_KEYS = {
  /** FederatedTypeConfigList of the configs pre-upgrade deletes. */
  removed: 'kubefed-removed-federatedtypeconfigs',
  /** `{<name>: {labels, annotations}}` of the configs post-upgrade relabels. */
  metadata: 'kubefed-federatedtypeconfigs-metadata',
} as const;

const HELM_LABELS = { 'app.kubernetes.io/managed-by': 'Helm' };
const HELM_ANNOTATIONS = {
  'meta.helm.sh/release-name': 'kubefed',
  'meta.helm.sh/release-namespace': KUBEFED_NAMESPACE,
};

type Metadata = Record<string, { labels?: Record<string, string>; annotations?: Record<string, string> }>;

async function existing(ctx: JobContext, names: readonly string[]): Promise<KubeObject[]> {
  const found: KubeObject[] = [];
  for (const name of names) {
    const ftc = await ctx.v3.tryGet(FederatedTypeConfigResource, name, KUBEFED_NAMESPACE);
    if (ftc) found.push(ftc);
  }
  return found;
}

class KubefedJob implements UpgradeJob {
  constructor(private readonly ref: ExtensionRef) {}

  /** The original's condition: a host with the KubeFed cluster registry CRD. */
  async isEnabled(ctx: JobContext): Promise<boolean> {
    if (!(await onHost(ctx))) return false;
    return (await ctx.v3.tryGet(CustomResourceDefinitionResource, KUBEFED_CLUSTERS_CRD)) !== undefined;
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    return [
      ...(await existing(ctx, REMOVED_TYPE_CONFIGS)).map((f) => ({
        phase: 'pre-upgrade' as const,
        action: 'back up and delete',
        target: `FederatedTypeConfig ${KUBEFED_NAMESPACE}/${f.metadata.name ?? ''}`,
      })),
      {
        phase: 'post-upgrade',
        action: `label ${SERVED_LABEL}=true`,
        target: `${SERVED_CRDS.length} federated CRDs`,
      },
      { phase: 'post-upgrade', action: 'hand to helm release kubefed', target: 'FederatedTypeConfigs' },
      { phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` },
    ];
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    const backup = await backupOnce(ctx, KUBEFED_KEYS.removed, async () =>
      asList('core.kubefed.io/v1beta1', 'FederatedTypeConfig', await existing(ctx, REMOVED_TYPE_CONFIGS)),
    );
    let deleted = 0;
    for (const name of new Set([
      ...REMOVED_TYPE_CONFIGS,
      ...(backup?.items ?? []).map((f) => f.metadata.name ?? ''),
    ])) {
      if (
        await ctx.v3.delete(FederatedTypeConfigResource, name, KUBEFED_NAMESPACE, { clearFinalizers: true })
      )
        deleted++;
    }
    ctx.logger.info(`deleted ${deleted} FederatedTypeConfigs`);
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    for (const name of SERVED_CRDS) {
      if (!(await ctx.v4.tryGet(CustomResourceDefinitionResource, name))) continue;
      await ctx.v4.mutate(CustomResourceDefinitionResource, name, undefined, (crd) => {
        crd.metadata.labels = { ...crd.metadata.labels, [SERVED_LABEL]: 'true' };
      });
    }
    const adopted = await existing(ctx, ADOPTED_TYPE_CONFIGS);
    await backupOnce(ctx, KUBEFED_KEYS.metadata, () =>
      Promise.resolve(
        Object.fromEntries(
          adopted.map((f) => [
            f.metadata.name ?? '',
            { labels: f.metadata.labels, annotations: f.metadata.annotations },
          ]),
        ) as Metadata,
      ),
    );
    for (const f of adopted) {
      // As the original: labels and annotations are replaced, not merged.
      await ctx.v4.mutate(FederatedTypeConfigResource, f.metadata.name ?? '', KUBEFED_NAMESPACE, (obj) => {
        obj.metadata.labels = { ...HELM_LABELS };
        obj.metadata.annotations = { ...HELM_ANNOTATIONS };
      });
    }
    const { action } = await ensureInstallPlan(ctx.v4, this.ref, { logger: ctx.logger, assumeHost: true });
    ctx.logger.info(`InstallPlan ${this.ref.name}: ${action}`);
  }

  /**
   * Removes a pending InstallPlan, gives the adopted FederatedTypeConfigs their labels and
   * annotations back and re-creates the deleted ones. The CRD labels stay (harmless in v3).
   */
  async rollback(ctx: JobContext): Promise<void> {
    await removePendingInstallPlan(ctx, this.ref.name);
    const metadata =
      (await loadBackup<Metadata>(ctx, KUBEFED_KEYS.metadata, { takenIn: 'post-upgrade' })) ?? {};
    for (const [name, meta] of Object.entries(metadata)) {
      if (!(await ctx.v4.tryGet(FederatedTypeConfigResource, name, KUBEFED_NAMESPACE))) continue;
      await ctx.v4.mutate(FederatedTypeConfigResource, name, KUBEFED_NAMESPACE, (obj) => {
        if (meta.labels) obj.metadata.labels = meta.labels;
        else delete obj.metadata.labels;
        if (meta.annotations) obj.metadata.annotations = meta.annotations;
        else delete obj.metadata.annotations;
      });
    }
    const removed = (await loadBackup<StoredList<KubeObject>>(ctx, KUBEFED_KEYS.removed))?.items ?? [];
    for (const f of removed) await ctx.v3.createIfAbsent(FederatedTypeConfigResource, forCreate(f));
  }
}

export const kubefedJobFactory: JobFactory = {
  name: JOB,
  description: 'KubeFed of a KubeSphere v3 host to the v4 kubefed extension',
  create(options, extensionRef) {
    checkKnownOptions(JOB, options, []);
    if (!extensionRef?.version) {
      throw new ValidationError('jobs.kubefed.extensionRef.version is required', {
        hint: 'e.g. extensionRef: { name: kubefed, version: 1.0.0 } (the sample config.yaml has it)',
      });
    }
    return new KubefedJob({ ...extensionRef, name: extensionRef.name || JOB });
  },
};
