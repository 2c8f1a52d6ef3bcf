// What the tower job reads and changes (docs/rbac.md).
import {
  createInstallPlan,
  readClusterConfiguration,
  readKubeSphereConfig,
  removeInstallPlan,
  rule,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';

const TOWER = { namespaces: ['kubesphere-system'], resourceNames: ['tower'] };

export const TOWER_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('is this the host'),
  readKubeSphereConfig(),
  rule(
    '',
    'services',
    'get,update',
    'back up, hand to the tower release and expose as NodePort (rollback reverts)',
    TOWER,
  ),
  rule(
    'apps',
    'deployments',
    'get,update',
    'back up and hand to the tower release (rollback reverts)',
    TOWER,
  ),
  ...createInstallPlan('tower'),
  removeInstallPlan('tower'),
];
