// What the kubefed job reads and changes (docs/rbac.md).
import { createInstallPlan, crds, readKubeSphereConfig, removeInstallPlan, rule } from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import { KUBEFED_NAMESPACE, SERVED_CRDS } from './index.js';

export const KUBEFED_ACCESS: readonly AccessRule[] = [
  readKubeSphereConfig(),
  crds(['kubefedclusters.core.kubefed.io'], 'get', 'is KubeFed installed'),
  crds(SERVED_CRDS, 'get,update', 'label the federated type CRDs kubesphere.io/resource-served'),
  rule(
    'core.kubefed.io',
    'federatedtypeconfigs',
    'get,update,patch,delete,create',
    'remove the FederatedTypeConfigs v4 drops, hand the others to the kubefed release; rollback restores both',
    { namespaces: [KUBEFED_NAMESPACE] },
  ),
  ...createInstallPlan('kubefed'),
  removeInstallPlan('kubefed'),
];
