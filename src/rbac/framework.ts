// What ks-upgrade itself needs beyond its jobs: the validators and gates of the workflow, the
// preflight checks and the verification (job `_framework` in the access table).
import type { ValidatorConfig } from '../config/types.js';
import { KUBESPHERE_SYSTEM, readClusterConfiguration, readKubeSphereConfig, rule } from './rules.js';
import type { AccessRule } from './types.js';

/** The job name under which the framework's own rules appear. */
export const FRAMEWORK_JOB = '_framework';

/** The control-plane Deployments of KubeSphere v4 that verification checks. */
export const CORE_DEPLOYMENTS = ['ks-apiserver', 'ks-console', 'ks-controller-manager'] as const;

/** The framework's rules; `validator` decides the museum Repository's name. */
export function frameworkAccess(validator?: Pick<ValidatorConfig, 'extensionsMuseum'>): AccessRule[] {
  const museum = validator?.extensionsMuseum;
  return [
    rule(
      '',
      'secrets',
      'list',
      'read the ks-core Helm release records (ksVersion validator, detect gate, preflight, verification)',
      { namespaces: [KUBESPHERE_SYSTEM] },
    ),
    rule(
      'apps',
      'deployments',
      'get',
      'the detect gate and the verification: has the v4 control plane rolled out',
      { namespaces: [KUBESPHERE_SYSTEM], resourceNames: [...CORE_DEPLOYMENTS] },
    ),
    ...(museum?.enabled === false
      ? []
      : [
          rule(
            'kubesphere.io',
            'repositories',
            'get',
            'the extensionsMuseum validator: has the museum synced',
            {
              resourceNames: [museum?.name ?? 'extensions-museum'],
            },
          ),
        ]),
    rule(
      'authorization.k8s.io',
      'selfsubjectaccessreviews',
      'create',
      'the preflight asks the API server, rule by rule, whether this identity may do what the jobs will do',
    ),
    rule('', 'namespaces', 'get', 'the preflight skips the namespaced rules of namespaces that do not exist'),
    rule('', 'serviceaccounts', 'get', 'the preflight uses the image pull secrets of this service account', {
      namespaces: [KUBESPHERE_SYSTEM],
      resourceNames: ['default'],
    }),
    rule('', 'secrets', 'get', 'the preflight reads the image pull secrets KubeSphere pulls with', {
      namespaces: [KUBESPHERE_SYSTEM],
    }),
    readClusterConfiguration('the preflight reads the KubeSphere v3 version'),
    readKubeSphereConfig('the verification reads the cluster role (the console runs on the host only)'),
    rule('kubesphere.io', 'installplans', 'list', 'the verification checks every InstallPlan is Installed'),
  ];
}
