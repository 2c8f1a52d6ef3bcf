// What the metrics-server job reads and changes (docs/rbac.md).
import {
  createInstallPlan,
  createKinds,
  memberClusterConfigurations,
  namedObjects,
  readClusterConfiguration,
  readKubeSphereConfig,
  removeInstallPlan,
  rule,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import { METRICS_SERVER_OBJECTS } from './index.js';

const objects = METRICS_SERVER_OBJECTS.map((t) => ({ rt: t.rt, name: t.name, namespace: t.namespace }));
const roles = objects.filter((o) => o.rt.plural === 'clusterroles').map((o) => o.name);

export const METRICS_SERVER_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('is metrics-server enabled'),
  readKubeSphereConfig(),
  ...namedObjects(objects, 'get,delete', 'back up and delete the v3 metrics-server'),
  ...createKinds(objects, 'rollback re-creates the v3 metrics-server'),
  rule('rbac.authorization.k8s.io', 'clusterroles', 'escalate', 'rollback re-creates its ClusterRoles', {
    resourceNames: roles,
  }),
  rule(
    'rbac.authorization.k8s.io',
    'clusterroles',
    'bind',
    'rollback re-creates the bindings to its ClusterRoles and to system:auth-delegator',
    { resourceNames: [...roles, 'system:auth-delegator'] },
  ),
  rule(
    'rbac.authorization.k8s.io',
    'roles',
    'bind',
    'rollback re-creates the binding to the authentication reader',
    {
      namespaces: ['kube-system'],
      resourceNames: ['extension-apiserver-authentication-reader'],
    },
  ),
  ...memberClusterConfigurations(),
  ...createInstallPlan('metrics-server'),
  removeInstallPlan('metrics-server'),
];
