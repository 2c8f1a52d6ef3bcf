// What the kubeedge job reads and changes (docs/rbac.md).
import {
  createInstallPlan,
  readClusterConfiguration,
  readKubeSphereConfig,
  removeInstallPlan,
  rule,
  uninstallHelmReleases,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import { KUBEEDGE_NAMESPACE } from './index.js';

const NS = { namespaces: [KUBEEDGE_NAMESPACE] };

export const KUBEEDGE_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('is KubeEdge enabled, and its CloudCore settings'),
  readKubeSphereConfig(),
  rule(
    '',
    ['configmaps', 'secrets'],
    'get,list,create,update',
    'back up the CloudCore ConfigMaps and Secrets, put their data back once the extension is installed',
    NS,
  ),
  ...uninstallHelmReleases([KUBEEDGE_NAMESPACE], 'cloudcore'),
  ...createInstallPlan('kubeedge'),
  rule('kubesphere.io', 'installplans', 'get', 'wait until the kubeedge InstallPlan is Installed'),
  removeInstallPlan('kubeedge'),
];
