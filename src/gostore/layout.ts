// The original Go ks-upgrade's backup store, key by key: which job wrote each key, in which
// format, whether it holds secrets, and where it goes in our store. This is the one table the
// import (`ks-upgrade backups import --from-go`) and `backups list` classify Go keys with.
//
// Source: the behaviour reference (§2, §4, Appendix A), checked against the Go code at HEAD 3ef3f2b
// and tag v4.1.3 (their pkg/jobs differ in no key or format). docs/backups.md lists where the two
// disagree. The Go tool runs once per cluster with its own store (the ks-core chart's PVC, or a
// bucket), so its keys are flat and carry no cluster name; the import puts them under
// `<cluster>/<job>/`.

/** How the Go tool encoded a value, which decides how the import checks and stores it. */
export type GoFormat =
  /** `json.Marshal` of a typed Kubernetes list: no apiVersion/kind on the list (nor on built-in items), zero-valued fields. */
  | 'json-list'
  /** `json.Marshal` of one object read with a typed client (no apiVersion/kind unless the job set them). */
  | 'json-object'
  /** Other JSON: a helm release record, its values, the iam phase status `{status, time}`. */
  | 'json'
  /** iam's `[{"list": base64(JSON list), "timestamp": <unix seconds>}]`, one entry per pre-upgrade run. */
  | 'iam-snapshots'
  /** A YAML mapping (`kubesphere-config`, devops' done marker). */
  | 'yaml'
  /** `<job>-done`: Go's `time.String()` of the UTC time post-upgrade finished; any non-empty text means done. */
  | 'done-marker'
  /** `true` or `false` as text. */
  | 'flag'
  /** A chart archive (`.tgz`) from the v3 app store's MinIO. */
  | 'chart';

/** Facts about the whole Go store that some keys need to be recognised. */
export interface GoStoreFacts {
  /** Names of the v3 HelmApplicationVersions: the application job stores each one's chart under its name. */
  chartNames: ReadonlySet<string>;
}

export interface GoKeyRule {
  /** The Go key, or its pattern in the reference's notation (`<C>-devops-projects`). */
  key: string;
  /** For patterns: whether a key belongs to this rule. Exact match on `key` when absent. */
  match?: (key: string, facts: GoStoreFacts) => boolean;
  /** The job that wrote it; the object goes to that job's scope. */
  job: string;
  /** Goes to the cluster's shared scope (`<cluster>/_shared/`) instead of the job's. */
  shared?: boolean;
  format: GoFormat;
  /**
   * Holds secrets whatever it contains (kubeconfigs, Secrets, password hashes, values): stored
   * encrypted, refused without `storage.encryption`. Content that looks like a Secret or a
   * kubeconfig is detected in any object as well.
   */
  sensitive: boolean;
  /** The phase of the Go tool that writes it. */
  phase: 'prepare-upgrade' | 'pre-upgrade' | 'post-upgrade' | 'none';
  /** Where the behaviour reference describes it. */
  ref: string;
  /**
   * The Go tool stores a zero-valued object (`{"metadata":{"creationTimestamp":null},…}`) when the
   * object did not exist: such a value means "nothing to back up" and is not imported.
   */
  emptyMeansAbsent?: boolean;
  /** The Go tool writes `null` for an absent map (helm values of a release installed without any). */
  nullMeansEmptyMap?: boolean;
  /**
   * Our key for this value when it is not the Go key. Used where the Go tool put two kinds under
   * one key: the notification job saved NotificationManagers under the Configs' key.
   */
  ourKey?: (goKey: string, value: unknown) => string;
  /** Known, but no job reads it: reported as skipped, never copied (`factory.kubeconfig`). */
  notImported?: string;
}

const exact = (keys: readonly string[], rule: Omit<GoKeyRule, 'key' | 'match'>): GoKeyRule[] =>
  keys.map((key) => ({ key, ...rule }));

/** A Kubernetes-style name at the start of a key (devops' `<C>`: a Cluster name, `host` or `current`). */
const CLUSTER_PREFIX = '[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?';

function clusterKey(suffix: string, rule: Omit<GoKeyRule, 'key' | 'match'>): GoKeyRule {
  const re = new RegExp(`^${CLUSTER_PREFIX}-${suffix.replace(/[.]/g, '\\.')}$`);
  return { key: `<C>-${suffix}`, match: (k) => re.test(k), ...rule };
}

const IAM_RESOURCES = [
  'users.iam.kubesphere.io',
  'rolebases.iam.kubesphere.io',
  'globalroles.iam.kubesphere.io',
  'globalrolebindings.iam.kubesphere.io',
  'workspaceroles.iam.kubesphere.io',
  'workspacerolebindings.iam.kubesphere.io',
  'roles.rbac.authorization.kubernetes.io',
  'rolebindings.rbac.authorization.kubernetes.io',
  'clusterrolebindings.rbac.authorization.kubernetes.io',
  'loginrecords.iam.kubesphere.io',
  'groups.iam.kubesphere.io',
  'groupbindings.iam.kubesphere.io',
  'workspaces.tenant.kubesphere.io',
  'workspacetemplates.tenant.kubesphere.io',
] as const;

/** The jobs whose post-upgrade ends with a `<job>-done` marker (reference §4.0 P1, Appendix A). */
const DONE_MARKER_JOBS = [
  'whizard-alerting',
  'whizard-events',
  'whizard-logging',
  'whizard-monitoring',
  'whizard-notification',
  'whizard-telemetry',
  'gateway',
  'network',
  'vector',
  'opensearch',
  'metrics-server',
  'servicemesh',
  'storage-utils',
  'kubeedge',
] as const;

/**
 * `servicemesh-<name>-<Go type name>` (§4.10): the type name comes from reflection on the typed
 * object, so only these six occur.
 */
const SERVICEMESH_OBJECT =
  /^servicemesh-[a-z0-9.-]+-(Deployment|ClusterRole|ClusterRoleBinding|ValidatingWebhookConfiguration|MutatingWebhookConfiguration|CustomResourceDefinition)$/;

/** `metrics-server-<Kind>-<namespace>-<name>.json` (§4.10; empty namespace for cluster scope). */
const METRICS_SERVER_OBJECT =
  /^metrics-server-(APIService|ServiceAccount|ClusterRole|ClusterRoleBinding|RoleBinding|Deployment|Service)-[a-z0-9-]*-[a-z0-9.:-]+\.json$/;

const ALERTING_WEBHOOK = 'rulegroups.alerting.kubesphere.io';

/**
 * `whizard-monitoring-<group>.<version>.<resource>-<namespace>.<name>`: the Go code builds the
 * resource part from a GVR (apps kinds with the core group: `.v1.daemonsets`); cluster-scoped
 * objects have an empty namespace (`-.<name>`). Secrets have their own rule (they are sensitive).
 */
const MONITORING_OBJECT =
  /^whizard-monitoring-(?!\.v1\.secrets-)[a-z0-9.-]*\.v1(?:beta1)?\.[a-z]+-[a-z0-9-]*\.[a-z0-9.:-]+$/;

/** Configs and NotificationManagers both went to `notificationConfigResource` (reference §7.2 #13). */
function notificationConfigKey(goKey: string, value: unknown): string {
  const items = (value as { items?: { kind?: unknown; spec?: Record<string, unknown> }[] } | null)?.items;
  const first = Array.isArray(items) ? items[0] : undefined;
  const isManager =
    first?.kind === 'NotificationManager' ||
    (first?.kind === undefined && first?.spec !== undefined && 'receivers' in first.spec);
  return isManager ? 'notificationManagerResource' : goKey;
}

/**
 * Every key the Go tool writes, by job, in the reference's order. First match wins, so exact keys
 * come before patterns. A Go key that matches no rule is reported as unknown and not imported.
 */
export const GO_KEY_RULES: readonly GoKeyRule[] = [
  // ---- core (§4.1) ----
  {
    key: 'kubesphere-config',
    job: 'core',
    shared: true,
    format: 'yaml',
    sensitive: true, // authentication.jwtSecret, identity-provider and S3 credentials
    phase: 'pre-upgrade',
    ref: '§4.1 pre 3',
  },
  ...exact(
    [
      'core.validatingwebhookconfigurations.admissionregistration.k8s.io',
      // Always an empty list: the Go code appends the matches to the wrong list (§7.2 #10).
      'core.mutatingwebhookconfigurations.admissionregistration.k8s.io',
    ],
    { job: 'core', format: 'json-list', sensitive: false, phase: 'prepare-upgrade', ref: '§4.1 prepare 3' },
  ),
  {
    key: 'core.cluster.kubeconfig',
    job: 'core',
    format: 'json-list',
    sensitive: true, // every member's kubeconfig
    phase: 'prepare-upgrade',
    ref: '§4.1 prepare 4',
  },
  ...exact(
    ['core-workspacetemplates.tenant.kubesphere.io.v1alpha2', 'core-workspace.tenant.kubesphere.io.v1alpha1'],
    {
      job: 'core',
      format: 'json-list',
      sensitive: false,
      phase: 'prepare-upgrade',
      ref: '§4.1 prepare 5',
    },
  ),
  {
    key: 'core.resource.kubesphere.system',
    job: 'core',
    format: 'json-list',
    sensitive: true, // pod specs of kubesphere-system (our core job encrypts it too)
    phase: 'pre-upgrade',
    ref: '§4.1 pre 5',
  },

  // ---- iam (§4.2) ----
  ...exact(
    ['prepare-upgrade', 'pre-upgrade', 'post-upgrade'].map((p) => `iam-upgrade-status-${p}`),
    { job: 'iam', format: 'json', sensitive: false, phase: 'none', ref: '§4.2 (every phase)' },
  ),
  ...exact(
    IAM_RESOURCES.map((r) => `iam-${r}`),
    // Snapshots of Users hold password hashes; the base64 hides every Secret from detection.
    { job: 'iam', format: 'iam-snapshots', sensitive: true, phase: 'pre-upgrade', ref: '§4.2 pre 1' },
  ),

  // ---- application (§4.3) ----
  ...exact(
    ['helmcategories', 'helmapplications', 'helmapplicationversions'].map(
      (r) => `application-${r}.application.kubesphere.io.v1alpha1`,
    ),
    { job: 'application', format: 'json-list', sensitive: false, phase: 'pre-upgrade', ref: '§4.3 pre' },
  ),
  ...exact(
    // Repo credentials and release values.
    ['helmrepos', 'helmreleases'].map((r) => `application-${r}.application.kubesphere.io.v1alpha1`),
    { job: 'application', format: 'json-list', sensitive: true, phase: 'pre-upgrade', ref: '§4.3 pre' },
  ),
  {
    key: '<HelmApplicationVersion name>',
    match: (k, facts) => facts.chartNames.has(k),
    job: 'application',
    format: 'chart',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.3 pre (s3Pre)',
  },

  // ---- devops (§4.4); <C> = Cluster name, `host` (single cluster) or `current` ----
  ...['kubesphere-devops-system-devops-release', 'argocd-devops-release'].map((s) =>
    clusterKey(s, { job: 'devops', format: 'json', sensitive: true, phase: 'pre-upgrade', ref: '§4.4' }),
  ),
  ...['kubesphere-devops-system-devops-values', 'argocd-devops-values'].map((s) =>
    clusterKey(s, {
      job: 'devops',
      format: 'json',
      sensitive: true,
      nullMeansEmptyMap: true,
      phase: 'pre-upgrade',
      ref: '§4.4',
    }),
  ),
  ...[
    'kubesphere-devops-system-deployments',
    'kubesphere-devops-system-configmaps',
    'kubesphere-devops-worker-configmaps',
    'argocd-configmaps',
    'devops-jenkins-pvc',
    'devops-projects',
    'devops-pipelines',
    'devops-pipelineruns',
    'devops-gitrepos',
  ].map((s) =>
    clusterKey(s, {
      job: 'devops',
      format: 'json-list',
      sensitive: false,
      phase: 'pre-upgrade',
      ref: '§4.4',
    }),
  ),
  clusterKey('devops-secrets', {
    job: 'devops',
    format: 'json-list',
    sensitive: true,
    phase: 'pre-upgrade',
    ref: '§4.4',
  }),
  clusterKey('devops-jenkins-pv', {
    job: 'devops',
    format: 'json-object',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.4',
  }),
  clusterKey('secret-devops-jenkins', {
    job: 'devops',
    format: 'json-object',
    sensitive: true,
    phase: 'pre-upgrade',
    ref: '§4.4',
  }),
  ...exact(['ks-devops-agent', 'jenkins-casc-config'], {
    job: 'devops',
    format: 'json-object',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.4 pre 4',
  }),
  {
    key: 'upgrade-devops-done',
    job: 'devops',
    format: 'yaml',
    // The Go tool's extensionRef carries the Jenkins admin password, SMTP password and Sonar
    // token in its clusterScheduling overrides (§7.3 #21).
    sensitive: true,
    phase: 'post-upgrade',
    ref: '§4.4 post 4',
  },

  // ---- whizard-monitoring (§4.5) ----
  ...exact(
    ['ks-process', 'ks-calico', 'whizard'].map(
      (n) => `whizard-monitoring.helm.release-kubesphere-monitoring-system.${n}`,
    ),
    // `helm status` JSON: manifest and values.
    { job: 'whizard-monitoring', format: 'json', sensitive: true, phase: 'pre-upgrade', ref: '§4.5 pre' },
  ),
  {
    key: 'whizard-monitoring-.v1.secrets-<ns>.<name>',
    match: (k) => k.startsWith('whizard-monitoring-.v1.secrets-'),
    job: 'whizard-monitoring',
    format: 'json-object',
    sensitive: true,
    phase: 'pre-upgrade',
    ref: '§4.5 pre',
  },
  {
    key: 'whizard-monitoring-<group>.<version>.<resource>-<ns>.<name>',
    match: (k) => MONITORING_OBJECT.test(k),
    job: 'whizard-monitoring',
    format: 'json-object',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.5 pre',
  },

  // ---- whizard-alerting (§4.6) ----
  ...exact(
    [
      ...['globalrulegroups', 'clusterrulegroups', 'rulegroups'].map(
        (r) =>
          `whizard-alerting-apiextensions.k8s.io.v1.customresourcedefinitions-.${r}.alerting.kubesphere.io`,
      ),
      `whizard-alerting-admissionregistration.k8s.io.v1.validatingwebhookconfigurations-.${ALERTING_WEBHOOK}`,
      `whizard-alerting-admissionregistration.k8s.io.v1.mutatingwebhookconfigurations-.${ALERTING_WEBHOOK}`,
    ],
    {
      job: 'whizard-alerting',
      format: 'json-object',
      sensitive: false,
      phase: 'pre-upgrade',
      ref: '§4.6 pre',
    },
  ),
  ...exact(
    ['globalrulegroups', 'clusterrulegroups', 'rulegroups'].map(
      (r) => `whizard-alerting-alerting.kubesphere.io.v2beta1.${r}`,
    ),
    { job: 'whizard-alerting', format: 'json-list', sensitive: false, phase: 'pre-upgrade', ref: '§4.6 pre' },
  ),

  // ---- gateway (§4.7) ----
  ...exact(['gateway-ingress-list', 'gateway-gateway-cr-list', 'gateway-nginx-cr-list'], {
    job: 'gateway',
    format: 'json-list',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.7 pre 2-4',
  }),
  ...exact(['gateway-gateways.gateway.kubesphere.io', 'gateway-nginxes.gateway.kubesphere.io'], {
    job: 'gateway',
    format: 'json-object',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.7 pre 5',
  }),
  {
    key: 'gateway-prometheus-ingress-rules',
    job: 'gateway',
    format: 'json-object',
    sensitive: false,
    phase: 'post-upgrade',
    ref: '§4.7 post 1',
  },

  // ---- network (§4.8) ----
  {
    key: 'network-validatingwebhookconfiguration.admissionregistration.k8s.io.v1',
    job: 'network',
    format: 'json-object',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.8 pre',
  },
  ...exact(
    ['ippools', 'ipamblocks', 'ipamhandles'].map(
      (r) => `network-${r}.network.kubesphere.io-crd.apiextensions.k8s.io.v1`,
    ),
    { job: 'network', format: 'json-object', sensitive: false, phase: 'pre-upgrade', ref: '§4.8 pre' },
  ),
  ...exact(
    [
      'network-ippools.network.kubesphere.io.v1alpha1',
      'network-ippools.crd.projectcalico.org.v1',
      'network-networkpolicies.networking.k8s.io.v1',
      'network-workspacetemplates.tenant.kubesphere.io.v1alpha2',
      'network-namespacenetworkpolicies.network.kubesphere.io.v1alpha1',
    ],
    { job: 'network', format: 'json-list', sensitive: false, phase: 'pre-upgrade', ref: '§4.8 pre' },
  ),

  // ---- whizard-notification (§4.9) ----
  {
    key: 'notificationConfigResource',
    job: 'whizard-notification',
    format: 'json-list',
    sensitive: true, // inline SMTP/webhook credentials
    ourKey: notificationConfigKey,
    phase: 'pre-upgrade',
    ref: '§4.9 pre',
  },
  {
    key: 'notificationReceiverResource',
    job: 'whizard-notification',
    format: 'json-list',
    sensitive: true,
    phase: 'pre-upgrade',
    ref: '§4.9 pre',
  },
  ...exact(['notificationRouterResource', 'notificationSilenceResource'], {
    job: 'whizard-notification',
    format: 'json-list',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.9 pre',
  }),
  {
    key: 'notification-adapter',
    job: 'whizard-notification',
    format: 'json-object',
    sensitive: false,
    emptyMeansAbsent: true,
    phase: 'pre-upgrade',
    ref: '§4.9 pre (host)',
  },

  // ---- whizard-events, whizard-logging, vector, opensearch, metrics-server, servicemesh,
  //      storage-utils, kubeedge (§4.10); kubefed, tower and whizard-telemetry store nothing ----
  ...exact(['events-Rules', 'events-Rulers', 'events-Exporters'], {
    job: 'whizard-events',
    format: 'json-list',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.10 whizard-events',
  }),
  {
    key: 'logging_logsidecar_enabled',
    job: 'whizard-logging',
    format: 'flag',
    sensitive: false,
    phase: 'post-upgrade',
    ref: '§4.10 whizard-logging',
  },
  ...exact(
    ['filter', 'parser', 'input', 'fluentbit', 'fluentbitconfig'].map((r) => `logging-${r}`),
    { job: 'vector', format: 'json-list', sensitive: false, phase: 'pre-upgrade', ref: '§4.10 vector' },
  ),
  {
    key: 'logging-output',
    job: 'vector',
    format: 'json-list',
    sensitive: true, // outputs carry sink credentials
    phase: 'pre-upgrade',
    ref: '§4.10 vector',
  },
  ...exact(['opensearch_enabled', 'opensearch_curator_enabled', 'opensearch_dashboards_enabled'], {
    job: 'opensearch',
    format: 'flag',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.10 opensearch',
  }),
  {
    key: 'metrics-server-<Kind>-<namespace>-<name>.json',
    match: (k) => METRICS_SERVER_OBJECT.test(k),
    job: 'metrics-server',
    format: 'json-object',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.10 metrics-server',
  },
  ...exact(['servicemesh-jaeger', 'servicemesh-kiali'], {
    job: 'servicemesh',
    format: 'json-object',
    sensitive: false,
    phase: 'post-upgrade',
    ref: '§4.10 servicemesh',
  }),
  {
    key: 'servicemesh-<name>-<Kind>',
    match: (k) => SERVICEMESH_OBJECT.test(k),
    job: 'servicemesh',
    format: 'json-object',
    sensitive: false,
    phase: 'post-upgrade',
    ref: '§4.10 servicemesh',
  },
  {
    key: 'old-snapshot-controller',
    job: 'storage-utils',
    format: 'json-object',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.10 storage-utils',
  },
  {
    key: 'kubeedge-configmap-list',
    job: 'kubeedge',
    format: 'json-list',
    sensitive: false,
    phase: 'pre-upgrade',
    ref: '§4.10 kubeedge',
  },
  {
    key: 'kubeedge-secret-list',
    job: 'kubeedge',
    format: 'json-list',
    sensitive: true, // cloudcore CA and tokens
    phase: 'pre-upgrade',
    ref: '§4.10 kubeedge',
  },

  // ---- completion markers (§4.0 P1) ----
  ...DONE_MARKER_JOBS.map((job): GoKeyRule => ({
    key: `${job}-done`,
    job,
    format: 'done-marker',
    sensitive: false,
    phase: 'post-upgrade',
    ref: '§4.0 P1',
  })),

  // ---- known, read by no job ----
  {
    key: 'factory.kubeconfig',
    job: 'core',
    format: 'yaml',
    sensitive: true,
    phase: 'none',
    ref: '§3.9',
    notImported:
      'written by an unused helper of the Go tool (a kubeconfig); no job reads it, so it is not copied',
  },
];

/** The rule for a Go key, or undefined when the Go tool does not write such a key. */
export function goKeyRule(key: string, facts: GoStoreFacts): GoKeyRule | undefined {
  return GO_KEY_RULES.find((r) => (r.match ? r.match(key, facts) : r.key === key));
}

/** Content types the import stores per format (the ones our jobs write for the same keys). */
export const CONTENT_TYPES: Readonly<Record<GoFormat, string>> = {
  'json-list': 'application/json',
  'json-object': 'application/json',
  json: 'application/json',
  'iam-snapshots': 'application/json',
  yaml: 'application/yaml',
  'done-marker': 'text/plain',
  flag: 'text/plain',
  chart: 'application/gzip',
};

/** The key whose list names the chart keys (`<HelmApplicationVersion name>`). */
export const CHART_INDEX_KEY = 'application-helmapplicationversions.application.kubesphere.io.v1alpha1';
