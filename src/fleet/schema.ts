// The shape of a fleet file: one source of truth for the loader (interpreted by the config
// validator, src/config/validate.ts) and for docs/fleet.schema.json (scripts/gen-fleet-schema.ts;
// a unit test fails when the committed file is stale). Rules a schema cannot say — one host, waves
// naming known clusters once, windows that open, contexts that exist — live in load.ts.
import { DURATION_PATTERN } from '../config/duration.js';
import type { JsonSchema } from '../config/schema.js';
import { GATES } from '../upgrade/input.js';
import { MAX_CONCURRENCY, WEEKDAYS } from './input.js';

const str = (description: string, extra: JsonSchema = {}): JsonSchema => ({
  type: 'string',
  description,
  ...extra,
});
const duration = (description: string): JsonSchema => ({ $ref: '#/$defs/duration', description });
const strings = (description: string): JsonSchema => ({
  type: 'array',
  description,
  items: { type: 'string' },
});

const tuning: JsonSchema = {
  type: 'object',
  description: 'Timing knobs of each cluster upgrade (workflow input `tuning`).',
  additionalProperties: false,
  properties: {
    heartbeatTimeout: duration('How fast a dead worker is noticed. Default 60s.'),
    gateTimeout: duration('How long the signal gate waits for coreUpgraded. Default: no limit.'),
    detectTimeout: duration('How long the detect gate polls for KubeSphere v4. Default 2h.'),
    operatorTimeout: duration('How long to wait for an operator decision. Default: no limit.'),
  },
};

const overrides: JsonSchema = {
  type: 'object',
  description: 'Secret-free config overrides merged last (workflow input `overrides`).',
  additionalProperties: false,
  properties: {
    jobs: {
      type: 'object',
      description: 'Per job: enabled, priority, dynamicOptions.',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          enabled: { type: 'boolean', description: 'Run this job.' },
          priority: { type: 'integer', minimum: 0, description: 'Higher runs first.' },
          dynamicOptions: {
            type: 'object',
            additionalProperties: true,
            description: 'Options read by the job.',
          },
        },
      },
    },
    upgrade: {
      type: 'object',
      additionalProperties: false,
      properties: { gate: { type: 'string', enum: [...GATES], description: 'Gate mode.' } },
    },
  },
};

/** What a cluster takes from `defaults` unless it sets its own. */
const settings: Record<string, JsonSchema> = {
  configFiles: strings(
    'Config files on the worker (the original ks-upgrade format), merged after the built-in defaults. Relative paths are relative to the fleet file.',
  ),
  useDefaults: { type: 'boolean', description: 'Start from the built-in defaults. Default true.' },
  kubeconfig: str('A kubeconfig file on the worker holding the contexts of the clusters.'),
  overrides,
  phases: {
    type: 'array',
    description: 'Phases of each upgrade, in order. Default prepare-upgrade, pre-upgrade, post-upgrade.',
    items: { type: 'string', enum: ['prepare-upgrade', 'pre-upgrade', 'post-upgrade', 'dynamic-upgrade'] },
  },
  gate: {
    type: 'string',
    enum: [...GATES],
    description: 'Gate between pre- and post-upgrade of each cluster (see docs/workflow-input.md).',
  },
  failurePolicy: {
    type: 'string',
    enum: ['ask', 'abort'],
    description: 'On a failed step: ask an operator (default) or abort, rolling back.',
  },
  tuning,
  skipChecks: {
    type: 'array',
    description:
      'Failing preflight checks (api-server, kubesphere-version, access, charts, images, store, concurrent-upgrade) or `verification` each upgrade goes past; recorded in history (docs/preflight.md).',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'by', 'reason'],
      properties: {
        name: str('The check to go past.', { minLength: 1 }),
        by: str('Who decided.', { minLength: 1 }),
        reason: str('Why.', { minLength: 1 }),
      },
    },
  },
};

const selector: JsonSchema = {
  type: 'object',
  description: 'Label selector over the clusters’ labels.',
  additionalProperties: false,
  properties: {
    matchLabels: {
      type: 'object',
      description: 'Label → value.',
      additionalProperties: { type: 'string' },
    },
    matchExpressions: {
      type: 'array',
      description: 'Requirements: key, operator (In, NotIn, Exists, DoesNotExist), values.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'operator'],
        properties: {
          key: str('Label key.', { minLength: 1 }),
          operator: {
            type: 'string',
            enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'],
            description: 'Operator.',
          },
          values: strings('Values for In and NotIn.'),
        },
      },
    },
  },
};

/** JSON Schema of a fleet file (draft 2020-12). */
export const FLEET_SCHEMA: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'ks-upgrade fleet file',
  description:
    'A KubeSphere fleet to upgrade with `ks-upgrade fleet run` (workflow upgradeFleet): the host first, then the members in waves. See docs/fleet.md.',
  type: 'object',
  additionalProperties: false,
  required: ['fleet', 'clusters'],
  properties: {
    fleet: str(
      'Fleet name (a DNS label): workflow ks-upgrade-fleet-<fleet>, search attribute UpgradeFleet.',
      {
        pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
      },
    ),
    defaults: {
      type: 'object',
      description: 'Settings every cluster takes unless it sets its own.',
      additionalProperties: false,
      properties: settings,
    },
    clusters: {
      type: 'array',
      description: 'The clusters: exactly one host; every member in one wave.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'role'],
        properties: {
          name: str(
            'Logical cluster name (a DNS label): workflow ks-upgrade-<name>, backups under <name>/.',
            {
              pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
            },
          ),
          role: { type: 'string', enum: ['host', 'member'], description: 'The KubeSphere role.' },
          kubesphereName: str('Name of its Cluster object on the host. Default: name.', { minLength: 1 }),
          context: str('Kube context in the worker’s kubeconfig (one worker reaching all clusters).', {
            minLength: 1,
          }),
          taskQueue: str(
            'Task queue of a worker of this cluster’s own (`ks-upgrade worker --cluster <name>` polls ks-upgrade-cluster-<name>), using credentials that never leave the cluster.',
            { minLength: 1 },
          ),
          labels: {
            type: 'object',
            description: 'Labels for wave selectors.',
            additionalProperties: { type: 'string' },
          },
          window: str('Maintenance window (a key of windows). Default: the fleet’s window.', {
            minLength: 1,
          }),
          gateways: {
            type: ['string', 'array'],
            description:
              'Gateways to upgrade one at a time after the cluster is verified: "auto" (every gateway the gateway job backed up; the default), "none", or a list of names.',
            items: { type: 'string' },
          },
          ...settings,
        },
      },
    },
    waves: {
      type: 'array',
      description:
        'Member waves in order, each a list of clusters or a label selector. The host runs alone before them (it may be written as the first wave). Not with rollout.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: str('Wave name (used by approveWave).', { minLength: 1 }),
          clusters: strings('Cluster names, in start order.'),
          selector,
          approval: {
            type: 'boolean',
            description: 'Wait for approveWave before this wave. Default: the fleet’s approval.',
          },
        },
      },
    },
    rollout: {
      type: 'object',
      description:
        'Waves made from the members in file order: a canary of N, then batches of M. Not with waves.',
      additionalProperties: false,
      required: ['batchSize'],
      properties: {
        canary: {
          type: 'integer',
          minimum: 0,
          description: 'Members in the first wave (0: none). Default 1.',
        },
        batchSize: { type: 'integer', minimum: 1, description: 'Members per later wave.' },
      },
    },
    approval: {
      type: 'string',
      enum: ['none', 'betweenWaves'],
      description: 'betweenWaves: every member wave after the first waits for approveWave. Default none.',
    },
    maxConcurrency: {
      type: 'integer',
      minimum: 1,
      description: `Clusters in flight at once (1 to ${MAX_CONCURRENCY}). Default 1.`,
    },
    failureBudget: {
      type: ['integer', 'string'],
      description:
        'Failed clusters tolerated before no new cluster starts: a count, or a percentage of the clusters such as "10%". Default 0.',
    },
    windows: {
      type: 'object',
      description: 'Named maintenance windows: no cluster starts outside its window.',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['start', 'end'],
        properties: {
          timeZone: str('IANA time zone. Default UTC.', { examples: ['Europe/Berlin'] }),
          days: {
            type: 'array',
            description: 'Weekdays (default: every day).',
            items: { type: 'string', enum: [...WEEKDAYS] },
          },
          start: str('Local opening time, HH:MM or HH:MM:SS.'),
          end: str('Local closing time (at or before start: the next day); 24:00 is midnight.'),
          notBefore: str('Not before this instant (ISO 8601).'),
          notAfter: str('Not after this instant (ISO 8601).'),
        },
      },
    },
    window: str('The window of every cluster that names none (a key of windows).', { minLength: 1 }),
    tuning: {
      type: 'object',
      description: 'Timing knobs of the fleet.',
      additionalProperties: false,
      properties: {
        historyLimit: {
          type: 'integer',
          minimum: 100,
          description: 'Continue-as-new once the history has this many events. Default 4000.',
        },
        verifyTimeout: duration(
          'How long the wave gate re-verifies a cluster before asking an operator. Default 15m.',
        ),
        verifyInterval: duration('Pause between verifications of a cluster. Default 15s.'),
        observeInterval: duration('How often the fleet looks at the upgrades in flight. Default 5s.'),
        observeMaxWait: duration('Longest single look when nothing changes. Default 1m.'),
      },
    },
  },
  $defs: {
    duration: {
      description: 'Go duration: `30s`, `5m`, `1h30m`.',
      anyOf: [{ type: 'string', pattern: DURATION_PATTERN }],
    },
  },
};
