// What the whizard-alerting job reads and changes (docs/rbac.md).
import {
  applyExtensionCrds,
  createInstallPlan,
  crds,
  memberClusterConfigurations,
  readClusterConfiguration,
  readKubeSphereConfig,
  rule,
  syncExtensionChart,
} from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';

const WEBHOOK = 'rulegroups.alerting.kubesphere.io';
const GROUPS = ['globalrulegroups', 'clusterrulegroups', 'rulegroups'];

export const WHIZARD_ALERTING_ACCESS: readonly AccessRule[] = [
  readClusterConfiguration('is alerting enabled'),
  readKubeSphereConfig(),
  crds(
    GROUPS.map((g) => `${g}.alerting.kubesphere.io`),
    'get',
    'back up the v3 rule group CRDs',
  ),
  rule('alerting.kubesphere.io', GROUPS, 'list', "back up the users' rule groups"),
  rule(
    'admissionregistration.k8s.io',
    ['validatingwebhookconfigurations', 'mutatingwebhookconfigurations'],
    'get,delete',
    'back up and delete the v3 rule group webhooks',
    { resourceNames: [WEBHOOK] },
  ),
  rule(
    'admissionregistration.k8s.io',
    ['validatingwebhookconfigurations', 'mutatingwebhookconfigurations'],
    'create',
    'rollback re-creates the rule group webhooks',
  ),
  applyExtensionCrds('whizard-alerting'),
  ...syncExtensionChart('whizard-alerting'),
  ...memberClusterConfigurations(),
  ...createInstallPlan('whizard-alerting'),
];
