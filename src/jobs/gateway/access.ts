// What the gateway job reads and changes (docs/rbac.md). Gateways live in kubesphere-controls-system
// and in any project namespace, so their Services, Ingresses and Helm releases cannot be narrowed
// to a list of namespaces.
import {
  KUBESPHERE_SYSTEM,
  applyExtensionCrds,
  createInstallPlan,
  crds,
  listClusters,
  readKubeSphereConfig,
  removeInstallPlan,
  rule,
  syncExtensionChart,
  uninstallHelmReleases,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import { GATEWAY_CRD, MONITORING_NAMESPACE, NGINX_CRD, PROMETHEUS_RULE } from './constants.js';

export const GATEWAY_ACCESS: readonly AccessRule[] = [
  readKubeSphereConfig(),
  rule(
    '',
    'configmaps',
    'get,create',
    'keep the v3 gateway configuration in a ConfigMap for the dynamic upgrade',
    {
      namespaces: [KUBESPHERE_SYSTEM],
    },
  ),
  rule(
    'gateway.kubesphere.io',
    ['gateways', 'nginxes'],
    'list,get,patch,delete,create',
    'back up and remove the v1 Gateways; create the v2 ones; rollback re-creates v1',
  ),
  rule('gateway.kubesphere.io', 'gateways', 'update', 'update a v2 Gateway ks-upgrade created'),
  rule('', 'services', 'get', "read each gateway's Service (ports, type) for its v2 form"),
  rule(
    'networking.k8s.io',
    'ingresses',
    'list,get,update',
    'back up the Ingresses, bind them to the new gateway (rollback unbinds)',
  ),
  rule('', 'namespaces', 'get,list', 'find the workspace of a project gateway and its namespaces'),
  rule(
    'monitoring.coreos.com',
    'prometheusrules',
    'get,delete',
    'back up and delete the v3 ingress PrometheusRule',
    {
      namespaces: [MONITORING_NAMESPACE],
      resourceNames: [PROMETHEUS_RULE],
    },
  ),
  rule('monitoring.coreos.com', 'prometheusrules', 'create', 'rollback re-creates it', {
    namespaces: [MONITORING_NAMESPACE],
  }),
  crds([GATEWAY_CRD, NGINX_CRD], 'get,delete', 'back up the gateway CRDs, delete the v1 Gateway CRD'),
  rule(
    'apiextensions.k8s.io',
    'customresourcedefinitions',
    'create',
    'rollback re-creates the v1 Gateway CRD',
  ),
  applyExtensionCrds('gateway'),
  ...syncExtensionChart('gateway'),
  ...uninstallHelmReleases([], 'of each v3 gateway (<gateway>-ingress, in its namespace)'),
  rule('', 'secrets', 'list', 'read the Helm release of each v4 gateway'),
  listClusters('place the extension on every cluster'),
  ...createInstallPlan('gateway'),
  removeInstallPlan('gateway'),
];
