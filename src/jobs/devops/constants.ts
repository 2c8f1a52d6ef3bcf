// Names the devops job shares with KubeSphere DevOps v3 and with the original tool's backups.
// Store keys are the original's (reference §4.4), so a store written by the Go tool stays readable.

export const DEVOPS_JOB_NAME = 'devops';

/** The v3 DevOps namespaces and the ArgoCD namespace. */
export const SYSTEM_NS = 'kubesphere-devops-system';
export const WORKER_NS = 'kubesphere-devops-worker';
export const ARGO_NS = 'argocd';

/** Both v3 helm releases are called `devops` (one in each namespace). */
export const SYSTEM_RELEASE = 'devops';
export const ARGO_RELEASE = 'devops';

export const APISERVER_WORKLOAD = 'devops-apiserver';
export const CONTROLLER_WORKLOAD = 'devops-controller';
export const JENKINS_WORKLOAD = 'devops-jenkins';

/** The Jenkins PVC, and its name before KubeSphere 3.3. */
export const JENKINS_PVC = 'devops-jenkins';
export const LEGACY_JENKINS_PVC = 'ks-jenkins';

/** ConfigMaps restored by hand after the upgrade; copied to `<name>-backup` in the system namespace. */
export const AGENT_CONFIGMAP = 'ks-devops-agent';
export const CASC_CONFIGMAP = 'jenkins-casc-config';

/** cc path of the DevOps switch. */
export const DEVOPS_ENABLED_PATH = ['spec', 'devops', 'enabled'] as const;

/** Labels the v4 DevOps extension expects on project namespaces. */
export const DEVOPS_MANAGED_LABEL = 'devops.kubesphere.io/managed';
export const WORKSPACE_LABEL = 'kubesphere.io/workspace';

/** The Secret (on each cluster running Jenkins) that holds the migrated Jenkins credentials. */
export const CREDENTIALS_SECRET = 'devops-jenkins-credentials';
/** Its keys: the names the v3 chart and Jenkins use for the same values. */
export const CREDENTIAL_KEYS = {
  adminPassword: 'jenkins-admin-password',
  smtpPassword: 'EMAIL_FROM_PASS',
  sonarToken: 'SONAR_AUTH_TOKEN',
} as const;

/** Store key of the completion marker (content: YAML of the extensionRef the InstallPlan got). */
export const DONE_KEY = 'upgrade-devops-done';
/** Backups of "this cluster" taken by its own pre-upgrade (members included). */
export const CURRENT = 'current';

/** The original's per-cluster store keys (`<C>` = Cluster name, `host` on a single cluster). */
export const keys = {
  release: (c: string, ns: string, name: string) => `${c}-${ns}-${name}-release`,
  values: (c: string, ns: string, name: string) => `${c}-${ns}-${name}-values`,
  deployments: (c: string) => `${c}-${SYSTEM_NS}-deployments`,
  configMaps: (c: string, ns: string) => `${c}-${ns}-configmaps`,
  pvcs: (c: string) => `${c}-${JENKINS_WORKLOAD}-pvc`,
  pv: (c: string) => `${c}-${JENKINS_WORKLOAD}-pv`,
  jenkinsSecret: (c: string) => `${c}-secret-${JENKINS_WORKLOAD}`,
  projects: (c: string) => `${c}-devops-projects`,
  pipelines: (c: string) => `${c}-devops-pipelines`,
  pipelineRuns: (c: string) => `${c}-devops-pipelineruns`,
  gitRepos: (c: string) => `${c}-devops-gitrepos`,
  projectSecrets: (c: string) => `${c}-devops-secrets`,
} as const;

/** Timeouts of the original: helm uninstall 20 min, PVC re-bind 300 s (poll 3 s), InstallPlan 10 min (poll 2 s). */
export const UNINSTALL_TIMEOUT_MS = 20 * 60_000;
export const PVC_BIND_TIMEOUT_MS = 300_000;
export const PVC_BIND_INTERVAL_MS = 3_000;
export const INSTALL_TIMEOUT_MS = 10 * 60_000;
export const INSTALL_INTERVAL_MS = 2_000;
