import { CONFIG_DEFAULTS, MIN_MULTIPART_THRESHOLD } from './defaults.js';
import { DURATION_PATTERN, formatDuration } from './duration.js';

// The single source of truth for the shape of config.yaml. The loader validates with it
// (src/config/validate.ts interprets the subset of JSON Schema used here), and
// scripts/gen-config-schema.ts writes it to config.schema.json for editors; a unit test fails when
// the committed file is stale. Checks a schema cannot express (merge provenance, enabled/disabled,
// registered job names, YAML inside `config`) live in load.ts and validate.ts.
//
// Every optional setting also accepts null, which means "not set": the default applies. That is
// what lets a later file remove a setting of an earlier one (`keyFile: null`).

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';

/** The subset of JSON Schema draft 2020-12 this project uses. */
export interface JsonSchema {
  $schema?: string;
  $id?: string;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  title?: string;
  description?: string;
  default?: unknown;
  examples?: unknown[];
  deprecated?: boolean;
  /** Credentials: the validator never repeats such a value in a message. */
  writeOnly?: boolean;
  type?: JsonType | JsonType[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  minimum?: number;
  anyOf?: JsonSchema[];
}

function optional(type: JsonType, description: string, extra: JsonSchema = {}): JsonSchema {
  return { type: [type, 'null'], description, ...extra };
}

function section(description: string, properties: Record<string, JsonSchema>, extra: JsonSchema = {}) {
  return optional('object', description, { additionalProperties: false, properties, ...extra });
}

function duration(description: string, defaultMs?: number): JsonSchema {
  const schema: JsonSchema = { $ref: '#/$defs/duration', description };
  if (defaultMs !== undefined) schema.default = formatDuration(defaultMs);
  return schema;
}

function alias(type: JsonType, canonical: string, extra: JsonSchema = {}): JsonSchema {
  return optional(
    type,
    `Alias of \`${canonical}\` (the spelling in the original README). Giving both in one file is an error.`,
    { deprecated: true, ...extra },
  );
}

/** Credentials: `writeOnly` keeps their values out of validation messages. */
const secret: JsonSchema = { writeOnly: true };

const s3 = section(
  'Back up to an S3-compatible bucket instead of storage.local. Credentials: prefer credentialsFile or ' +
    'the AWS environment/default chain over inline keys; they are never put into workflow input.',
  {
    endpoint: optional('string', '`host:port` or URL of the S3 endpoint. Empty: AWS for the region.', {
      default: '',
      examples: ['minio.storage:9000', 'https://s3.eu-central-1.amazonaws.com'],
    }),
    region: optional('string', 'Bucket region.', { default: '' }),
    bucket: { type: 'string', minLength: 1, description: 'Bucket name (required).' },
    disableSSL: optional('boolean', 'Talk plain HTTP to the endpoint.', { default: false }),
    forcePathStyle: optional(
      'boolean',
      'Path-style URLs (`endpoint/bucket/key`); needed by most non-AWS servers.',
      {
        default: false,
      },
    ),
    accessKeyID: optional(
      'string',
      'Inline access key (compatibility). Prefer credentialsFile or the environment.',
      secret,
    ),
    secretAccessKey: optional(
      'string',
      'Inline secret key (compatibility). Prefer credentialsFile or the environment.',
      secret,
    ),
    sessionToken: optional('string', 'Inline session token for temporary credentials.', secret),
    credentialsFile: optional(
      'string',
      'YAML/JSON file with accessKeyID, secretAccessKey and optionally sessionToken (e.g. a mounted Secret).',
      { minLength: 1 },
    ),
    prefix: optional(
      'string',
      'Key prefix for everything ks-upgrade stores; normalised to `a/b/` (no leading /).',
      {
        default: '',
      },
    ),
    createBucket: optional(
      'boolean',
      'Create the bucket when it does not exist (otherwise that is an error).',
      {
        default: CONFIG_DEFAULTS.s3CreateBucket,
      },
    ),
    multipartThreshold: optional(
      'integer',
      'Objects above this many bytes are uploaded in parts (min 5 MiB).',
      {
        minimum: MIN_MULTIPART_THRESHOLD,
        default: CONFIG_DEFAULTS.s3MultipartThreshold,
      },
    ),
    access_key_id: alias('string', 'accessKeyID', secret),
    secret_access_key: alias('string', 'secretAccessKey', secret),
    session_token: alias('string', 'sessionToken', secret),
    disable_ssl: alias('boolean', 'disableSSL'),
    force_path_style: alias('boolean', 'forcePathStyle'),
  },
  { required: ['bucket'] },
);

const storage = section('Where backups are kept.', {
  local: section('Local directory backend (used when storage.s3 is not set).', {
    path: optional('string', 'Directory for backups.', { minLength: 1, default: CONFIG_DEFAULTS.localPath }),
  }),
  s3,
  encryption: section(
    'AES-256-GCM encryption at rest. Set exactly one of keyFile and keyEnv. Required before Secrets or ' +
      'kubeconfigs can be backed up.',
    {
      keyFile: optional(
        'string',
        'File holding the 32-byte key (raw, hex or base64), e.g. a mounted Secret.',
        {
          minLength: 1,
        },
      ),
      keyEnv: optional('string', 'Name of the environment variable holding the key (hex or base64).', {
        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      }),
    },
  ),
});

const validator = section('Checks run before a phase (as in the original).', {
  ksVersion: section('Run prepare/pre/post only while the deployed ks-core Helm release is v3.x.', {
    enabled: optional('boolean', 'Enable the check.', { default: CONFIG_DEFAULTS.ksVersionEnabled }),
  }),
  extensionsMuseum: section('Before post-upgrade, wait until the extensions-museum Repository has synced.', {
    enabled: optional('boolean', 'Enable the check.', { default: CONFIG_DEFAULTS.museumEnabled }),
    namespace: optional('string', 'Namespace of the museum (empty: default).', {
      default: CONFIG_DEFAULTS.museumNamespace,
    }),
    name: optional('string', 'Name of the Repository (empty: default).', {
      default: CONFIG_DEFAULTS.museumName,
    }),
    syncInterval: duration(
      'Maximum age of the last sync; 0 means "synced at least once".',
      CONFIG_DEFAULTS.museumSyncIntervalMs,
    ),
    watchTimeout: duration(
      'How long to wait for a sync; 0 means the default.',
      CONFIG_DEFAULTS.museumWatchTimeoutMs,
    ),
  }),
});

const clusterScheduling = section(
  'InstallPlan spec.clusterScheduling. When null, jobs that support it derive the placement from the v3 ClusterConfiguration.',
  {
    placement: section('Clusters the extension is installed on.', {
      clusters: optional('array', 'Cluster names.', { items: { type: 'string' } }),
      clusterSelector: section('Label selector over Cluster objects.', {
        matchLabels: optional('object', 'Label key → value (values are strings: quote numbers).', {
          additionalProperties: { type: 'string' },
        }),
        matchExpressions: optional('array', 'Label selector requirements.', {
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['key', 'operator'],
            properties: {
              key: { type: 'string', minLength: 1, description: 'Label key.' },
              operator: {
                type: 'string',
                enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'],
                description: 'Operator.',
              },
              values: optional('array', 'Values for In / NotIn.', { items: { type: 'string' } }),
            },
          },
        }),
      }),
    }),
    overrides: optional('object', 'Per-cluster values override: cluster name → YAML text.', {
      additionalProperties: { $ref: '#/$defs/yamlText' },
    }),
  },
);

const extensionRef = section(
  'The v4 extension this job installs (becomes an InstallPlan). `version` is required when extensionRef is set.',
  {
    name: optional('string', 'Extension name. Default: the job name (the original defaulted only devops).', {
      minLength: 1,
    }),
    version: {
      type: 'string',
      minLength: 1,
      description: 'Extension version; must be served by extensions-museum.',
      examples: ['1.1.2'],
    },
    config: {
      $ref: '#/$defs/yamlText',
      description: 'Extension values as YAML text (InstallPlan spec.config).',
    },
    clusterScheduling,
    namespace: optional('string', 'Accepted for compatibility with the original README; not used.'),
    chartsPath: optional('string', 'Accepted for compatibility with the original README; not used.'),
    installationMode: optional('string', 'Accepted for compatibility (HostOnly or Multicluster); not used.'),
  },
  { required: ['version'] },
);

const job = section('One upgrade job. Keys must be registered job names.', {
  enabled: optional('boolean', 'Run this job.', { default: CONFIG_DEFAULTS.jobEnabled }),
  disabled: optional('boolean', '`disabled: true` means `enabled: false` (the seed README spelling).', {
    deprecated: true,
  }),
  priority: optional('integer', 'Higher runs first; ties run in name order.', {
    minimum: 0,
    default: CONFIG_DEFAULTS.jobPriority,
  }),
  extensionRef,
  dynamicOptions: optional('object', 'Free-form options read by the job (e.g. rerun, updateCrds).', {
    additionalProperties: true,
    default: {},
  }),
  retry: section('Temporal retry policy for this job’s phase activities (defaults apply where absent).', {
    maximumAttempts: optional('integer', 'Attempts before the operator is asked (retry/skip/abort).', {
      minimum: 1,
    }),
    initialInterval: duration('Delay before the first retry.'),
    maximumInterval: duration('Upper bound of the backoff delay; not less than initialInterval.'),
  }),
  timeout: duration('Start-to-close timeout of one phase activity of this job.'),
});

const helmUpgrade = section(
  'The ks-core upgrade run by gate `helm` (with the real helm binary). See docs/operations.md.',
  {
    chart: optional(
      'string',
      'Target ks-core chart: a local .tgz or directory, an oci:// reference, a chart URL, or a chart name in `repo`. Required for gate helm.',
      {
        minLength: 1,
        examples: ['oci://registry.example.com/kubesphere/ks-core', './ks-core-1.1.4.tgz'],
      },
    ),
    repo: optional('string', 'Helm chart repository URL; `chart` is then the chart name in it.', {
      minLength: 1,
      examples: ['https://charts.kubesphere.io/main'],
    }),
    version: optional('string', 'Chart version (required with `repo` and for oci:// charts).', {
      minLength: 1,
      examples: ['1.1.4'],
    }),
    values: optional('array', 'Values files (e.g. the upgrade guide’s ks-core-values.yaml), in order.', {
      items: { type: 'string', minLength: 1 },
      default: [],
    }),
    set: optional(
      'object',
      'Values by dotted path, applied last (e.g. `global.imageRegistry: registry.local`).',
      { additionalProperties: true, default: {} },
    ),
    timeout: duration('Helm --timeout of the upgrade and of a rollback.', CONFIG_DEFAULTS.helmTimeoutMs),
    binary: optional('string', 'Path of the helm binary (Helm v3.13+ or v4). Default: helm on PATH.', {
      minLength: 1,
    }),
    plainHttp: optional('boolean', 'Plain HTTP to the OCI registry (registries without TLS only).', {
      default: false,
    }),
  },
);

/** JSON Schema of config.yaml (draft 2020-12). */
export const CONFIG_SCHEMA: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'ks-upgrade configuration',
  description:
    'Configuration of ks-upgrade (the original tool’s format plus additive keys). Several files ' +
    'deep-merge in order. See docs/configuration.md.',
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    storage,
    validator,
    jobs: optional('object', 'Upgrade jobs by name.', { additionalProperties: { $ref: '#/$defs/job' } }),
    upgrade: section('How the upgrade workflow runs.', {
      gate: {
        type: ['string', 'null'],
        enum: ['signal', 'detect', 'helm', 'none', null],
        default: CONFIG_DEFAULTS.gate,
        description:
          'Between pre- and post-upgrade: `signal` (wait for the coreUpgraded signal), `detect` (poll until ' +
          'KubeSphere v4 core runs), `helm` (run the ks-core upgrade itself, see upgrade.helm) or `none`.',
      },
      helm: helmUpgrade,
    }),
    checks: section(
      'Inputs of the preflight (charts and images that must be reachable) and of the verification. See docs/preflight.md.',
      {
        targetVersion: optional(
          'string',
          'The ks-core appVersion the upgrade installs; default: the core chart’s.',
          {
            examples: ['v4.1.3'],
          },
        ),
        coreChart: optional(
          'string',
          'The v4 ks-core chart: a .tgz path, an https:// URL of one, oci://registry/path/ks-core:<version>, or its name in coreChartRepo.',
          { minLength: 1, examples: ['oci://registry.local:5000/kubesphere/ks-core:1.1.4'] },
        ),
        coreChartRepo: optional('string', 'The Helm repository coreChart is in (as `helm --repo`).', {
          minLength: 1,
        }),
        coreChartVersion: optional(
          'string',
          'The version of coreChart in coreChartRepo (as `helm --version`).',
          {
            minLength: 1,
          },
        ),
        extensionCharts: optional(
          'string',
          'Where extension charts are: oci://registry/path, or the URL of a Helm repository or extensions museum.',
          { minLength: 1 },
        ),
        imageRegistry: optional(
          'string',
          'global.imageRegistry the charts are installed with (an air-gapped mirror).',
          {
            minLength: 1,
          },
        ),
        images: optional('array', 'More images that must be pullable.', { items: { type: 'string' } }),
        pullSecrets: optional(
          'array',
          'Image pull secrets (namespace/name) besides those of the kubesphere-system default ServiceAccount.',
          {
            items: {
              type: 'string',
              pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$',
            },
          },
        ),
        registryAuthFile: optional(
          'string',
          'Docker config.json with the worker’s own registry credentials.',
          {
            minLength: 1,
          },
        ),
        insecureRegistries: optional('array', 'Registries spoken to over plain HTTP (loopback always is).', {
          items: { type: 'string' },
        }),
        caFile: optional('string', 'PEM bundle of the CA of private registries and chart repositories.', {
          minLength: 1,
        }),
      },
    ),
  },
  $defs: {
    job,
    duration: {
      description:
        'Go duration: a number and a unit (h, m, s, ms, us, ns), combinable: `30s`, `5m`, `1h30m`, `1.5h`. ' +
        'Bare numbers other than 0 are rejected (the original read them as nanoseconds).',
      anyOf: [{ type: 'string', pattern: DURATION_PATTERN }, { enum: [0] }, { type: 'null' }],
    },
    yamlText: {
      type: ['string', 'null'],
      description: 'YAML text, written as a block scalar: `config: |` followed by indented lines.',
    },
  },
};
