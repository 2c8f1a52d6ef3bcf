// What the whizard-logging job reads and changes (docs/rbac.md).
import {
  createInstallPlan,
  memberClusterConfigurations,
  readClusterConfiguration,
  readKubeSphereConfig,
  uninstallHelmReleases,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';

export const WHIZARD_LOGGING_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('is logging / the log sidecar enabled'),
  readKubeSphereConfig(),
  ...uninstallHelmReleases(['kubesphere-logging-system'], 'logsidecar-injector'),
  ...memberClusterConfigurations(),
  ...createInstallPlan('whizard-logging'),
];
