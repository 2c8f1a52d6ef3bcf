// What the whizard-events job reads and changes (docs/rbac.md).
import {
  createInstallPlan,
  crds,
  memberClusterConfigurations,
  readClusterConfiguration,
  readKubeSphereConfig,
  rule,
  uninstallHelmReleases,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';

const KINDS = ['exporters', 'rulers', 'rules'];

export const WHIZARD_EVENTS_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('are events enabled'),
  readKubeSphereConfig(),
  crds(
    KINDS.map((k) => `${k}.events.kubesphere.io`),
    'get,delete',
    'back up and delete the kube-events CRDs, wait until they are gone',
  ),
  rule(
    'apiextensions.k8s.io',
    'customresourcedefinitions',
    'create',
    'rollback re-creates the kube-events CRDs',
  ),
  rule(
    'events.kubesphere.io',
    KINDS,
    'get,list,create',
    'back up the kube-events objects; rollback re-creates them',
  ),
  ...uninstallHelmReleases(['kubesphere-logging-system'], 'ks-events'),
  ...memberClusterConfigurations(),
  ...createInstallPlan('whizard-events'),
];
