// The Jenkins credentials of a cluster (admin password, SMTP password, SonarQube token) go into a
// Secret on that cluster — never into the InstallPlan, whose spec anyone who may read InstallPlans
// can read (reference §7.3 item 21). The InstallPlan's values name the Secret and its keys.
import { NamespaceResource, SecretResource, type Secret } from '../../api/core.js';
import type { ResourceClient } from '../../kube/client.js';
import { deepEqual } from '../../util/object.js';
import { CREDENTIALS_SECRET, JENKINS_WORKLOAD, SYSTEM_NS } from './constants.js';
import type { JenkinsCredentials } from './values.js';

export const CREDENTIALS_LABELS = {
  app: JENKINS_WORKLOAD,
  'app.kubernetes.io/managed-by': 'ks-upgrade',
} as const;

/**
 * Creates or updates `kubesphere-devops-system/devops-jenkins-credentials` on the cluster (and its
 * namespace if needed). Returns what it did; no write when the Secret already holds these values.
 */
export async function writeCredentialsSecret(
  client: ResourceClient,
  credentials: JenkinsCredentials,
): Promise<'created' | 'updated' | 'unchanged'> {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(credentials)) {
    data[k] = Buffer.from(v, 'utf8').toString('base64');
  }
  await client.createIfAbsent(NamespaceResource, { metadata: { name: SYSTEM_NS } });
  const desired: Secret = {
    metadata: {
      name: CREDENTIALS_SECRET,
      namespace: SYSTEM_NS,
      labels: { ...CREDENTIALS_LABELS },
      annotations: {
        'kubesphere.io/description':
          'Jenkins credentials migrated from KubeSphere DevOps v3 by ks-upgrade; referenced by the devops InstallPlan values (agent.jenkins.Master.credentialsSecret)',
      },
    },
    type: 'Opaque',
    data,
  };
  const { created } = await client.createIfAbsent(SecretResource, desired);
  if (created) return 'created';
  const { changed } = await client.mutate(SecretResource, CREDENTIALS_SECRET, SYSTEM_NS, (s) => {
    if (deepEqual(s.data ?? {}, data)) return;
    s.data = data;
    s.metadata.labels = { ...s.metadata.labels, ...CREDENTIALS_LABELS };
  });
  return changed ? 'updated' : 'unchanged';
}
