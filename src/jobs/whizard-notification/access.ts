// What the whizard-notification job reads and changes (docs/rbac.md), and what it leaves gone.
import {
  createInstallPlan,
  crds,
  leftover,
  readClusterConfiguration,
  readKubeSphereConfig,
  rule,
  uninstallHelmReleases,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import type { Leftover } from '../../verify/types.js';

const NS = 'kubesphere-monitoring-system';
const OLD_NS = 'kubesphere-monitoring-federated';
const KINDS = ['notificationmanagers', 'configs', 'receivers', 'routers', 'silences'];
const FEDERATED = ['silences', 'routers', 'configs', 'receivers', 'managers'].map(
  (k) => `federatednotification${k}.types.kubefed.io`,
);

export const WHIZARD_NOTIFICATION_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('is notification history enabled'),
  readKubeSphereConfig(),
  crds(
    [...KINDS.map((k) => `${k}.notification.kubesphere.io`), ...FEDERATED],
    'get,delete',
    'back up and delete the v3 notification CRDs (the extension brings its own), wait until they are gone',
  ),
  rule(
    'apiextensions.k8s.io',
    'customresourcedefinitions',
    'create',
    'rollback re-creates the notification CRDs',
  ),
  rule(
    'notification.kubesphere.io',
    KINDS,
    'get,list,create',
    'back up the notification objects, re-create them in the extension',
  ),
  rule(
    '',
    ['secrets', 'configmaps'],
    'list',
    'copy the Secrets and ConfigMaps of kubesphere-monitoring-federated',
    {
      namespaces: [OLD_NS],
    },
  ),
  rule(
    '',
    ['secrets', 'configmaps'],
    'get,create,delete',
    'the copies in kubesphere-monitoring-system (rollback removes them)',
    {
      namespaces: [NS],
    },
  ),
  rule(
    'apps',
    'deployments',
    'get,delete,create',
    'back up and delete notification-adapter, wait for the new operator; rollback re-creates the adapter',
    {
      namespaces: [NS],
    },
  ),
  ...uninstallHelmReleases([NS], 'notification-manager'),
  rule(
    'kubesphere.io',
    'installplans',
    'get',
    'is the extension installed already (its CRDs must then stay)',
  ),
  ...createInstallPlan('whizard-notification'),
];

export const WHIZARD_NOTIFICATION_LEFTOVERS: readonly Leftover[] = [
  leftover.deployment(
    NS,
    'notification-adapter',
    'the v3 notification adapter; the v4 extension has no adapter',
  ),
];
