/**
 * The validated, defaulted configuration. The file format is the original ks-upgrade's
 * (`storage`, `validator`, `jobs`), plus additive keys; see `config.schema.json` and
 * docs/configuration.md. Durations are milliseconds here (YAML takes Go-style strings: `30m`).
 */
export interface UpgradeConfig {
  storage: StorageConfig;
  validator: ValidatorConfig;
  /** Every `jobs.<name>` entry of the merged files, keyed by job name. */
  jobs: Record<string, JobConfig>;
  upgrade: UpgradeOptions;
  /** Inputs of the preflight and the verification (docs/preflight.md); absent: none configured. */
  checks?: ChecksConfig;
}

/** Where the preflight finds the charts and images of the upgrade, and what verification expects. */
export interface ChecksConfig {
  /** The ks-core appVersion the upgrade installs (e.g. `v4.1.3`); default: the core chart's. */
  targetVersion?: string;
  /** The v4 ks-core chart: a .tgz path, an https:// URL, `oci://…:version`, or a chart name with `coreChartRepo`. */
  coreChart?: string;
  /** The Helm repository `coreChart` is in (as `helm --repo`). */
  coreChartRepo?: string;
  /** The chart version in `coreChartRepo` (as `helm --version`). */
  coreChartVersion?: string;
  /** Where extension charts are: `oci://registry/path`, or a Helm repository / extensions-museum URL. */
  extensionCharts?: string;
  /** `global.imageRegistry` the charts will be installed with (an air-gapped mirror). */
  imageRegistry?: string;
  /** More images that must be pullable. */
  images: string[];
  /** Image pull secrets (`namespace/name`) besides those of the kubesphere-system default ServiceAccount. */
  pullSecrets: string[];
  /** A Docker config.json with the worker's own registry credentials (OCI charts). */
  registryAuthFile?: string;
  /** Registries spoken to over plain HTTP (loopback always is). */
  insecureRegistries: string[];
  /** PEM bundle of the CA of private registries and chart repositories. */
  caFile?: string;
}

export interface StorageConfig {
  /** Used when `s3` is absent. Default path `/tmp/ks-upgrade`. */
  local: { path: string };
  /** When present, backups go to S3 instead of the local directory. */
  s3?: S3StorageConfig;
  /** AES-256-GCM encryption at rest; required to store Secrets or kubeconfigs. */
  encryption?: EncryptionConfig;
}

export interface S3StorageConfig {
  /** `host:port` or a URL. Empty: the AWS default endpoint for the region. */
  endpoint: string;
  region: string;
  bucket: string;
  disableSSL: boolean;
  forcePathStyle: boolean;
  /** Prefix under which all keys are stored (no leading `/`, ends with `/` when non-empty). */
  prefix: string;
  /** Create the bucket when it does not exist (default false: a missing bucket is an error). */
  createBucket: boolean;
  /** Multipart upload above this size in bytes (default 8 MiB). */
  multipartThreshold: number;
  /**
   * Static credentials. Inline in the config (the original's keys, accepted for compatibility),
   * from `credentialsFile`, or, when both are absent, from the environment / AWS default chain.
   */
  accessKeyID?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** YAML/JSON file with `accessKeyID`, `secretAccessKey` and optionally `sessionToken`. */
  credentialsFile?: string;
}

export interface EncryptionConfig {
  /** File holding the 32-byte key (raw, hex or base64). */
  keyFile?: string;
  /** Name of an environment variable holding the key (hex or base64). */
  keyEnv?: string;
}

export interface ValidatorConfig {
  ksVersion: { enabled: boolean };
  extensionsMuseum: {
    enabled: boolean;
    namespace: string;
    name: string;
    /** 0: "synced at least once". */
    syncInterval: number;
    watchTimeout: number;
  };
}

/** Cluster placement of an extension, as in the v4 InstallPlan `spec.clusterScheduling`. */
export interface ClusterScheduling {
  placement?: {
    clusters?: string[];
    clusterSelector?: {
      matchLabels?: Record<string, string>;
      matchExpressions?: { key: string; operator: string; values?: string[] }[];
    };
  };
  /** Per-cluster values override, YAML text keyed by cluster name. */
  overrides?: Record<string, string>;
}

export interface ExtensionRef {
  name: string;
  version: string;
  /** Extension values, YAML text (becomes `InstallPlan.spec.config`). */
  config?: string;
  clusterScheduling?: ClusterScheduling;
  /** Accepted for compatibility with the seed README; not used by the original either. */
  namespace?: string;
  chartsPath?: string;
  installationMode?: string;
}

/** Free-form per-job options; values keep their YAML types. */
export type DynamicOptions = Record<string, unknown>;

export interface RetryConfig {
  maximumAttempts: number;
  initialInterval: number;
  maximumInterval: number;
}

export interface JobConfig {
  enabled: boolean;
  priority: number;
  extensionRef?: ExtensionRef;
  dynamicOptions: DynamicOptions;
  /** Temporal retry policy of this job's phase activities; defaults apply where absent. */
  retry?: Partial<RetryConfig>;
  /** Start-to-close timeout of one phase activity of this job, ms. */
  timeout?: number;
}

/**
 * How the workflow passes from pre-upgrade to post-upgrade (the Helm upgrade of ks-core): it waits
 * for a signal, detects v4 core, runs the upgrade itself (`helm`), or does not wait at all.
 */
export type GateMode = 'signal' | 'detect' | 'helm' | 'none';

/** The core upgrade gate `helm` runs: which ks-core chart, how, with which values. */
export interface HelmUpgradeConfig {
  /**
   * The target ks-core chart: a local `.tgz` or chart directory, an `oci://` reference, a chart
   * URL, or a chart name in {@link repo}. Required for gate `helm`.
   */
  chart?: string;
  /** A Helm chart repository URL: {@link chart} is then a chart name in it. */
  repo?: string;
  /** Chart version (`--version`); required with {@link repo} and for `oci://` charts. */
  version?: string;
  /** Values files, in order (later wins), applied before the generated values. */
  values: string[];
  /** Values by dotted path (`global.imageRegistry`), applied last: they win over everything mapped. */
  set: Record<string, unknown>;
  /** Helm's `--timeout` for the upgrade and for a rollback, ms. */
  timeout: number;
  /** Path of the helm binary; default: `helm` on PATH. */
  binary?: string;
  /** Talk plain HTTP to an OCI registry (`--plain-http`): registries without TLS only. */
  plainHttp: boolean;
}

export interface UpgradeOptions {
  gate: GateMode;
  /** Present when the config has an `upgrade.helm` section (defaults filled in). */
  helm?: HelmUpgradeConfig;
}
