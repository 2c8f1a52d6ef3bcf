// What the vector job reads and changes (docs/rbac.md), and the v3 objects it leaves gone.
import {
  createInstallPlan,
  crds,
  leftover,
  memberClusterConfigurations,
  readClusterConfiguration,
  readKubeSphereConfig,
  rule,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import type { Leftover } from '../../verify/types.js';

const LOGGING = { namespaces: ['kubesphere-logging-system'] };
const KINDS = ['parsers', 'filters', 'inputs', 'outputs', 'fluentbits', 'fluentbitconfigs'];

export const VECTOR_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('is logging enabled'),
  readKubeSphereConfig(),
  crds(
    KINDS.map((k) => `${k}.logging.kubesphere.io`),
    'get,delete',
    'back up and delete the fluentbit-operator CRDs, wait until they are gone',
  ),
  rule(
    'apiextensions.k8s.io',
    'customresourcedefinitions',
    'create',
    'rollback re-creates the fluentbit-operator CRDs',
  ),
  rule(
    'logging.kubesphere.io',
    KINDS,
    'get,list,create',
    'back up the fluentbit-operator objects; rollback re-creates them',
  ),
  rule('apps', 'deployments', 'get,delete', 'back up and delete the fluentbit-operator', {
    ...LOGGING,
    resourceNames: ['fluentbit-operator'],
  }),
  rule('apps', 'deployments', 'create', 'rollback re-creates the fluentbit-operator', LOGGING),
  rule('apps', 'daemonsets', 'get,delete', 'wait for fluent-bit to go, delete it when the operator did not', {
    ...LOGGING,
    resourceNames: ['fluent-bit'],
  }),
  rule('', 'secrets', 'get', 'wait for the vector extension to create its sinks Secret', {
    ...LOGGING,
    resourceNames: ['vector-sinks'],
  }),
  ...memberClusterConfigurations(),
  ...createInstallPlan('vector'),
];

export const VECTOR_LEFTOVERS: readonly Leftover[] = [
  leftover.deployment(
    'kubesphere-logging-system',
    'fluentbit-operator',
    'the v3 log collector operator; vector replaces it',
  ),
];
