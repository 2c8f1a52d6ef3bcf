// What the servicemesh job reads and changes (docs/rbac.md).
import {
  createInstallPlan,
  createKinds,
  crds,
  memberClusterConfigurations,
  namedObjects,
  readClusterConfiguration,
  readKubeSphereConfig,
  removeInstallPlan,
  rule,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import { SERVICEMESH_CRDS, SERVICEMESH_CRS, SERVICEMESH_OBJECTS } from './index.js';

const ISTIO = 'istio-system';
const objects = SERVICEMESH_OBJECTS.map((t) => ({
  rt: t.rt,
  name: t.name,
  ...(t.rt.namespaced ? { namespace: ISTIO } : {}),
}));
const crs = SERVICEMESH_CRS.map((c) => ({ rt: c.rt, name: c.name, namespace: ISTIO }));
const roles = objects.filter((o) => o.rt.plural === 'clusterroles').map((o) => o.name);

export const SERVICEMESH_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('is the service mesh enabled'),
  readKubeSphereConfig(),
  ...namedObjects(objects, 'get,delete', 'back up and delete the v3 Istio, Kiali and Jaeger objects'),
  ...namedObjects(
    crs,
    'get,patch,delete',
    'back up and delete the Kiali and Jaeger CRs (finalizers cleared)',
  ),
  crds(SERVICEMESH_CRDS, 'get,delete', 'back up and delete the Kiali and Jaeger CRDs'),
  rule(
    'apiextensions.k8s.io',
    'customresourcedefinitions',
    'create',
    'rollback re-creates the Kiali and Jaeger CRDs',
  ),
  ...createKinds([...objects, ...crs], 'rollback re-creates the v3 objects'),
  rule(
    'rbac.authorization.k8s.io',
    'clusterroles',
    'escalate,bind',
    'rollback re-creates the v3 ClusterRoles and their bindings',
    {
      resourceNames: roles,
    },
  ),
  ...memberClusterConfigurations(),
  ...createInstallPlan('servicemesh'),
  removeInstallPlan('servicemesh'),
];
