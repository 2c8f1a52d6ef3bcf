// What the core job reads and changes (docs/rbac.md), and the v3 objects it leaves gone.
import { leftover, readKubeSphereConfig, rule } from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import type { Leftover } from '../../verify/types.js';
import {
  KS_INSTALLER,
  KUBESPHERE_SYSTEM,
  NAMESPACE_NETWORK_POLICY_CRD,
  PRE_UPGRADE_JOB,
} from './constants.js';

const SYS = { namespaces: [KUBESPHERE_SYSTEM] };

export const CORE_ACCESS: readonly AccessRule[] = [
  readKubeSphereConfig('read the cluster role, and back up kubesphere.yaml'),
  rule('', 'configmaps', 'get', 'read the cluster CA for the host kubeconfig', {
    ...SYS,
    resourceNames: ['kube-root-ca.crt'],
  }),
  rule(
    'apps',
    'deployments',
    'get,list,update,create',
    'scale the v3 control plane to 0 and wait, back up kubesphere-system Deployments; rollback scales up and re-creates ks-installer',
    SYS,
  ),
  rule('apps', 'deployments', 'patch,delete', 'delete ks-installer (finalizers cleared first)', {
    ...SYS,
    resourceNames: [KS_INSTALLER],
  }),
  rule(
    '',
    'namespaces',
    'get,list,update',
    'remove Workspace owner references, label workspace namespaces kubesphere.io/managed (rollback reverts both)',
  ),
  rule(
    'admissionregistration.k8s.io',
    ['validatingwebhookconfigurations', 'mutatingwebhookconfigurations'],
    'get,list,patch,delete,create',
    'back up and delete the KubeSphere v3 webhooks (finalizers cleared first); rollback re-creates them',
  ),
  rule(
    'cluster.kubesphere.io',
    'clusters',
    'get,list,update',
    'back up Clusters, point the host Cluster at the kubesphere service account, mark members as upgrading',
  ),
  rule(
    'cluster.kubesphere.io',
    'clusters/status',
    'update',
    'set the upgrading conditions of member Clusters',
  ),
  rule('', 'services', 'get', 'the in-cluster API server address for the host kubeconfig', {
    namespaces: ['default'],
    resourceNames: ['kubernetes'],
  }),
  rule('', 'secrets', 'list', "find the kubesphere service account's token Secret (host kubeconfig)", SYS),
  rule(
    'tenant.kubesphere.io',
    'workspacetemplates',
    'get,list,update,create,delete',
    'protect system-workspace, set placements and managers; delete it on members; rollback re-creates it',
  ),
  rule(
    'tenant.kubesphere.io',
    'workspaces',
    'get,list,update',
    'back up Workspaces, annotate network isolation (rollback removes it)',
  ),
  rule(
    'apiextensions.k8s.io',
    'customresourcedefinitions',
    'get,update',
    'label the NamespaceNetworkPolicy CRD kubesphere.io/resource-served',
    { resourceNames: [NAMESPACE_NETWORK_POLICY_CRD] },
  ),
  rule('batch', 'jobs', 'get', 'find the volume of the ks-core pre-upgrade Job', {
    ...SYS,
    resourceNames: [PRE_UPGRADE_JOB],
  }),
  rule('', 'persistentvolumeclaims', 'get', 'find the volume of the ks-core pre-upgrade Job', SYS),
  rule('', 'persistentvolumes', 'get,patch', 'keep the pre-upgrade volume (reclaim policy Retain)'),
];

const WEBHOOK_WHY =
  'a v3 ks-controller-manager webhook; v4 does not serve it, so the API server calls a backend that is ' +
  'gone (x509 / connection errors on every matching request)';

/** The webhooks of the v3.4 ks-core chart (its webhook.yaml) that v4.1 does not have. */
export const CORE_LEFTOVERS: readonly Leftover[] = [
  leftover.validatingWebhook('users.iam.kubesphere.io', WEBHOOK_WHY),
  leftover.validatingWebhook('network.kubesphere.io', WEBHOOK_WHY),
  leftover.validatingWebhook('cluster.kubesphere.io', WEBHOOK_WHY),
  leftover.deployment(
    KUBESPHERE_SYSTEM,
    KS_INSTALLER,
    'the v3 installer; left running it reverts the v4 configuration',
  ),
];
