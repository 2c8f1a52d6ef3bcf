// What the devops job reads and changes (docs/rbac.md). DevOps project Secrets live in the
// projects' own namespaces (any namespace), so listing them cannot be narrowed by namespace.
import {
  createInstallPlan,
  listClusters,
  onMembers,
  readClusterConfiguration,
  readKubeSphereConfig,
  rule,
  uninstallHelmReleases,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import { ARGO_NS, JENKINS_WORKLOAD, SYSTEM_NS, WORKER_NS } from './constants.js';

/** Reading a cluster's DevOps v3 state for the backup: the host itself and each member. */
const BACKUP_READS: readonly AccessRule[] = [
  readClusterConfiguration('is DevOps enabled'),
  rule('', 'secrets', 'list', 'read the devops and ArgoCD Helm release records', {
    namespaces: [SYSTEM_NS, ARGO_NS],
  }),
  rule(
    '',
    ['persistentvolumeclaims', 'configmaps'],
    'list',
    'back up the Jenkins volume claim and the DevOps ConfigMaps',
    {
      namespaces: [SYSTEM_NS],
    },
  ),
  rule('', 'configmaps', 'list', 'back up the DevOps worker and ArgoCD ConfigMaps', {
    namespaces: [WORKER_NS, ARGO_NS],
  }),
  rule('apps', 'deployments', 'list', 'back up the DevOps Deployments', { namespaces: [SYSTEM_NS] }),
  rule('', 'secrets', 'get', 'back up the Jenkins Secret', {
    namespaces: [SYSTEM_NS],
    resourceNames: [JENKINS_WORKLOAD],
  }),
  rule('', 'persistentvolumes', 'get', "back up the Jenkins volume's PersistentVolume"),
  rule(
    'devops.kubesphere.io',
    ['devopsprojects', 'pipelines', 'pipelineruns', 'gitrepositories'],
    'list',
    'back up the DevOps objects',
  ),
  rule(
    '',
    'secrets',
    'list',
    "back up the DevOps projects' Secrets (credentials; in each project's namespace)",
  ),
];

/** Writing the Jenkins credentials Secret the extension reads, on every cluster with DevOps. */
const CREDENTIALS: readonly AccessRule[] = [
  rule('', 'namespaces', 'get,create', `create ${SYSTEM_NS} for the Jenkins credentials when it is gone`),
  rule('', 'secrets', 'get,create,update', 'write the Jenkins credentials Secret of the extension', {
    namespaces: [SYSTEM_NS],
  }),
];

export const DEVOPS_ACCESS: readonly AccessRule[] = [
  readKubeSphereConfig(),
  listClusters('back up DevOps on every cluster that has it'),
  ...BACKUP_READS,
  ...onMembers(BACKUP_READS),
  rule(
    '',
    'configmaps',
    'get,create',
    'keep the agent and Jenkins configuration as <name>-backup ConfigMaps',
    {
      namespaces: [SYSTEM_NS, WORKER_NS],
    },
  ),
  rule('', 'namespaces', 'get,list,update', 'label the DevOps project namespaces'),
  rule('', 'namespaces', 'patch', `clear the finalizers of ${WORKER_NS} before the uninstall`, {
    resourceNames: [WORKER_NS],
  }),
  rule('', 'persistentvolumes', 'update', 'keep the Jenkins volume (Retain) and re-bind it to the new claim'),
  rule('', 'persistentvolumeclaims', 'list', 'keep the volumes of the worker namespace', {
    namespaces: [WORKER_NS],
  }),
  rule(
    '',
    'persistentvolumeclaims',
    'get,create',
    're-create the Jenkins volume claim bound to the kept volume',
    {
      namespaces: [SYSTEM_NS],
    },
  ),
  ...uninstallHelmReleases([SYSTEM_NS, ARGO_NS], 'devops (DevOps and ArgoCD)', [
    SYSTEM_NS,
    WORKER_NS,
    ARGO_NS,
  ]),
  ...CREDENTIALS,
  ...onMembers(CREDENTIALS),
  ...createInstallPlan('devops'),
  rule('kubesphere.io', 'installplans', 'get', 'wait until the devops InstallPlan is Installed'),
];
