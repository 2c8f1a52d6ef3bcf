// What the opensearch job reads and changes (docs/rbac.md).
import {
  createInstallPlan,
  listClusters,
  readHelmReleases,
  readKubeSphereConfig,
  removeInstallPlan,
  uninstallHelmReleases,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import { LOGGING_NAMESPACE } from './index.js';

export const OPENSEARCH_ACCESS: readonly AccessRule[] = [
  readKubeSphereConfig(),
  readHelmReleases([LOGGING_NAMESPACE], 'OpenSearch (which parts are installed)'),
  ...uninstallHelmReleases([LOGGING_NAMESPACE], 'opensearch-master/data/curator/dashboard'),
  listClusters('place the extension on the host cluster'),
  ...createInstallPlan('opensearch'),
  removeInstallPlan('opensearch'),
];
