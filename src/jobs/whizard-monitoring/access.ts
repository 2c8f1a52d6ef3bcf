// What the whizard-monitoring job reads and changes (docs/rbac.md).
import {
  applyExtensionCrds,
  createInstallPlan,
  createKinds,
  memberClusterConfigurations,
  namedObjects,
  readClusterConfiguration,
  readKubeSphereConfig,
  rule,
  syncExtensionChart,
  uninstallHelmReleases,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import { MONITORING_NS, OBJECT_GROUPS, RELEASES } from './objects.js';

const objects = OBJECT_GROUPS.flatMap((g) =>
  g.objects.map(([namespace, name]) => ({ rt: g.rt, name, ...(namespace ? { namespace } : {}) })),
);
const roles = objects.filter((o) => o.rt.plural === 'clusterroles').map((o) => o.name);

export const WHIZARD_MONITORING_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('which exporters and whizard are enabled'),
  readKubeSphereConfig(),
  ...namedObjects(
    objects,
    'get,delete',
    'back up and delete the v3 monitoring stack (kube-prometheus objects)',
  ),
  ...createKinds(objects, 'rollback re-creates the v3 monitoring objects'),
  rule(
    'rbac.authorization.k8s.io',
    'clusterroles',
    'escalate,bind',
    'rollback re-creates the v3 monitoring ClusterRoles and their bindings',
    {
      resourceNames: roles,
    },
  ),
  ...uninstallHelmReleases([MONITORING_NS], RELEASES.map((r) => r.name).join(', ')),
  applyExtensionCrds('whizard-monitoring'),
  ...syncExtensionChart('whizard-monitoring'),
  ...memberClusterConfigurations(),
  ...createInstallPlan('whizard-monitoring'),
];
