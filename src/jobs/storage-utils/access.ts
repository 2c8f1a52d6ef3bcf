// What the storage-utils job reads and changes (docs/rbac.md), and the v3 objects it leaves gone.
import {
  createInstallPlan,
  crds,
  leftover,
  listClusters,
  readKubeSphereConfig,
  removeInstallPlan,
  rule,
  uninstallHelmReleases,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import type { Leftover } from '../../verify/types.js';
import { STORAGE_UTILS_CRDS } from './index.js';

const WEBHOOK = 'storageclass-accessor.storage.kubesphere.io';

export const STORAGE_UTILS_ACCESS: readonly AccessRule[] = [
  readKubeSphereConfig(),
  rule('apps', 'statefulsets', 'get', 'back up the v3 snapshot-controller', {
    namespaces: ['kube-system'],
    resourceNames: ['snapshot-controller'],
  }),
  rule('apps', 'statefulsets', 'create', 'rollback re-creates the v3 snapshot-controller', {
    namespaces: ['kube-system'],
  }),
  crds(STORAGE_UTILS_CRDS, 'get,update', 'label the snapshot CRDs kubesphere.io/resource-served'),
  ...uninstallHelmReleases(['kube-system'], 'snapshot-controller'),
  rule(
    'admissionregistration.k8s.io',
    'validatingwebhookconfigurations',
    'get,delete',
    'back up and delete the v3 storage class accessor webhook',
    { resourceNames: [WEBHOOK] },
  ),
  rule('admissionregistration.k8s.io', 'validatingwebhookconfigurations', 'create', 'rollback re-creates it'),
  listClusters('place the extension on every cluster'),
  ...createInstallPlan('storage-utils'),
  removeInstallPlan('storage-utils'),
];

export const STORAGE_UTILS_LEFTOVERS: readonly Leftover[] = [
  leftover.validatingWebhook(
    WEBHOOK,
    'served by the v3 ks-controller-manager; v4 has no such backend, PVC requests fail on it',
  ),
];
