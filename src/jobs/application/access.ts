// What the application (app store) job reads and changes (docs/rbac.md).
import { createInstallPlan, readClusterConfiguration, readKubeSphereConfig, rule } from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import { APPLICATION_NAMESPACE, MINIO_NAME } from './constants.js';

const V2 = ['categories', 'applications', 'applicationversions', 'repos', 'applicationreleases'];

export const APPLICATION_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('is the app store enabled; the host cluster name'),
  readKubeSphereConfig('read the cluster role and the v4 S3 settings for uploaded charts'),
  rule(
    'application.kubesphere.io',
    ['helmcategories', 'helmapplications', 'helmapplicationversions', 'helmrepos', 'helmreleases'],
    'list',
    'back up the v3 app store',
  ),
  rule('application.kubesphere.io', V2, 'get,list,create', 'create the v4 app store objects'),
  rule(
    'application.kubesphere.io',
    V2.map((r) => `${r}/status`),
    'patch',
    'set the status of the v4 app store objects',
  ),
  rule(
    '',
    ['services', 'secrets'],
    'get',
    'find the v3 MinIO and its credentials, to keep the uploaded charts',
    {
      namespaces: ['kubesphere-system'],
      resourceNames: [MINIO_NAME],
    },
  ),
  rule('', 'namespaces', 'get,create', `create ${APPLICATION_NAMESPACE} for the uploaded charts`),
  // The job creates extension-openpitrix itself: no Role can be bound there beforehand.
  rule(
    '',
    'configmaps',
    'get,create',
    `store the uploaded charts where v4 reads them (ConfigMaps in ${APPLICATION_NAMESPACE}, which the job creates)`,
  ),
  ...createInstallPlan('openpitrix'),
];
