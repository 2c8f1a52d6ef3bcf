// What the network job reads and changes (docs/rbac.md), and the v3 objects it leaves gone.
import {
  createInstallPlan,
  crds,
  leftover,
  memberClusterConfigurations,
  readClusterConfiguration,
  readKubeSphereConfig,
  removeInstallPlan,
  rule,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import type { Leftover } from '../../verify/types.js';

const WEBHOOK = 'network.kubesphere.io';
const CRDS = [
  'ippools.network.kubesphere.io',
  'ipamblocks.network.kubesphere.io',
  'ipamhandles.network.kubesphere.io',
];

export const NETWORK_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('are network policies / IP pools enabled'),
  readKubeSphereConfig(),
  rule(
    'admissionregistration.k8s.io',
    'validatingwebhookconfigurations',
    'get,delete',
    'back up and delete the v3 network webhook',
    {
      resourceNames: [WEBHOOK],
    },
  ),
  rule('admissionregistration.k8s.io', 'validatingwebhookconfigurations', 'create', 'rollback re-creates it'),
  crds(CRDS, 'get,delete', 'back up and delete the v3 IP pool CRDs'),
  rule('apiextensions.k8s.io', 'customresourcedefinitions', 'create', 'rollback re-creates the IP pool CRDs'),
  rule(
    'network.kubesphere.io',
    'ippools',
    'list,get,patch,create',
    'back up the v3 IP pools, clear their finalizers; rollback re-creates them',
  ),
  rule(
    'crd.projectcalico.org',
    'ippools',
    'list,get,update',
    'back up the Calico IP pools, move the KubeSphere annotations onto them',
  ),
  rule(
    'network.kubesphere.io',
    'namespacenetworkpolicies',
    'list,get,update',
    'back up and label the NamespaceNetworkPolicies',
  ),
  rule('networking.k8s.io', 'networkpolicies', 'list', 'back up the NetworkPolicies'),
  rule(
    'tenant.kubesphere.io',
    'workspacetemplates',
    'list',
    'back up the WorkspaceTemplates (network isolation)',
  ),
  ...memberClusterConfigurations(),
  ...createInstallPlan('network'),
  removeInstallPlan('network'),
];

export const NETWORK_LEFTOVERS: readonly Leftover[] = [
  leftover.validatingWebhook(WEBHOOK, 'served by the v3 ks-controller-manager; v4 has no such backend'),
];
