import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  configSecrets,
  loadConfig,
  loadConfigFromText,
  redactConfig,
  type LoadedConfig,
  type UpgradeConfig,
} from '../../src/config/index.js';
import { ValidationError } from '../../src/errors.js';
import { KNOWN_JOBS, ORIGINAL_PRIORITIES } from '../helpers/original-jobs.js';

const SAMPLE = fileURLToPath(new URL('../../config.yaml', import.meta.url));
const options = { knownJobs: KNOWN_JOBS };

function load(...texts: string[]): LoadedConfig {
  return loadConfigFromText(
    texts.map((text, i) => ({ name: `file${i + 1}.yaml`, text })),
    options,
  );
}

function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

/** The run order of the original: priority descending, then name ascending (byte order). */
function runOrder(config: UpgradeConfig): string[] {
  return Object.entries(config.jobs)
    .sort(([a, x], [b, y]) => y.priority - x.priority || (a < b ? -1 : a > b ? 1 : 0))
    .map(([name]) => name);
}

describe('config: defaults', () => {
  const defaults: UpgradeConfig = {
    storage: { local: { path: '/tmp/ks-upgrade' } },
    validator: {
      ksVersion: { enabled: false },
      extensionsMuseum: {
        enabled: false,
        namespace: 'kubesphere-system',
        name: 'extensions-museum',
        syncInterval: 0,
        watchTimeout: 300_000,
      },
    },
    jobs: {},
    upgrade: { gate: 'signal' },
  };

  it('no file, an empty file and a comment-only file all give the original code defaults', async () => {
    assert.deepEqual((await loadConfig([], options)).config, defaults);
    assert.deepEqual(load('').config, defaults);
    assert.deepEqual(load('# nothing yet\n').config, defaults);
    assert.deepEqual(load('---\n').config, defaults);
  });

  it('fills job defaults: enabled false, priority 0, dynamicOptions {}', () => {
    const { config } = load('jobs:\n  core:\n  iam:\n    priority: 999\n');
    assert.deepEqual(config.jobs.core, { enabled: false, priority: 0, dynamicOptions: {} });
    assert.deepEqual(config.jobs.iam, { enabled: false, priority: 999, dynamicOptions: {} });
  });

  it('fills museum namespace/name when empty and watchTimeout when 0, as the original does', () => {
    const { config } = load(
      'validator:\n  extensionsMuseum:\n    enabled: true\n    namespace: ""\n    name: ""\n    watchTimeout: 0\n',
    );
    assert.deepEqual(config.validator.extensionsMuseum, {
      ...defaults.validator.extensionsMuseum,
      enabled: true,
    });
  });

  it('fills S3 defaults and normalises the prefix', () => {
    const { config } = load('storage:\n  s3:\n    bucket: backups\n    prefix: /clusters/prod\n');
    assert.deepEqual(config.storage.s3, {
      endpoint: '',
      region: '',
      bucket: 'backups',
      disableSSL: false,
      forcePathStyle: false,
      prefix: 'clusters/prod/',
      createBucket: false,
      multipartThreshold: 8 * 1024 * 1024,
    });
    assert.equal(load('storage: {s3: {bucket: b, prefix: a/}}').config.storage.s3?.prefix, 'a/');
    assert.equal(load('storage: {s3: {bucket: b, prefix: ""}}').config.storage.s3?.prefix, '');
  });

  it('reads the new keys: gate, retry, timeout, encryption', () => {
    const { config } = load(
      [
        'upgrade: {gate: detect}',
        'storage: {encryption: {keyEnv: KS_UPGRADE_KEY}}',
        'jobs:',
        '  core:',
        '    timeout: 10m',
        '    retry: {maximumAttempts: 3, initialInterval: 1s, maximumInterval: 1m}',
        '  iam:',
        '    retry: {maximumAttempts: 5}',
      ].join('\n'),
    );
    assert.equal(config.upgrade.gate, 'detect');
    assert.deepEqual(config.storage.encryption, { keyEnv: 'KS_UPGRADE_KEY' });
    assert.equal(config.jobs.core?.timeout, 600_000);
    assert.deepEqual(config.jobs.core.retry, {
      maximumAttempts: 3,
      initialInterval: 1_000,
      maximumInterval: 60_000,
    });
    assert.deepEqual(config.jobs.iam?.retry, { maximumAttempts: 5 });
  });

  it('parses durations in Go syntax', () => {
    const { config } = load(
      'validator:\n  extensionsMuseum:\n    syncInterval: 1h30m\n    watchTimeout: 1.5s\n',
    );
    assert.equal(config.validator.extensionsMuseum.syncInterval, 5_400_000);
    assert.equal(config.validator.extensionsMuseum.watchTimeout, 1_500);
  });
});

describe('config: merging several files', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ks-upgrade-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("the original's test: the second file's devops extensionRef and enabled win, and storage.local.path", async () => {
    const custom = join(dir, 'custom-config.yaml');
    await writeFile(
      custom,
      'storage:\n  local:\n    path: /ks-upgrade\njobs:\n  devops:\n    extensionRef:\n      name: devops\n      version: 1.0.0\n    enabled: true\n',
    );
    const loaded = await loadConfig([SAMPLE, custom], options);
    const devops = loaded.config.jobs.devops;
    assert.equal(devops?.extensionRef?.name, 'devops');
    assert.equal(devops.extensionRef.version, '1.0.0');
    assert.equal(devops.enabled, true);
    assert.equal(loaded.config.storage.local.path, '/ks-upgrade');
    // Untouched keys of the first file survive the merge.
    assert.equal(devops.priority, 800);
    assert.match(devops.extensionRef.config ?? '', /kubesphereCoreApi: "http:\/\/ks-apiserver:30880"/);
    assert.deepEqual(loaded.files, [SAMPLE, custom]);
  });

  it('replaces lists instead of merging them', () => {
    const base =
      'jobs:\n  gateway:\n    extensionRef:\n      version: 1.0.2\n      clusterScheduling:\n        placement:\n          clusters: [host, member1, member2]\n';
    const patch =
      'jobs:\n  gateway:\n    extensionRef:\n      clusterScheduling:\n        placement:\n          clusters: [member3]\n';
    const scheduling = load(base, patch).config.jobs.gateway?.extensionRef?.clusterScheduling;
    assert.deepEqual(scheduling, { placement: { clusters: ['member3'] } });
  });

  it('lets an explicit null replace (and so remove) what an earlier file set', () => {
    const base = [
      'storage:',
      '  s3: {bucket: backups}',
      '  encryption: {keyFile: /keys/backup.key}',
      'jobs:',
      '  gateway:',
      '    extensionRef:',
      '      version: 1.0.2',
      '      clusterScheduling: {placement: {clusters: [host]}}',
      '    dynamicOptions: {rerun: true, gatewayName: all}',
    ].join('\n');
    const patch = [
      'storage:',
      '  s3: null',
      '  encryption: {keyFile: null, keyEnv: BACKUP_KEY}',
      'jobs:',
      '  gateway:',
      '    extensionRef: {clusterScheduling: null}',
      '    dynamicOptions: {rerun: null}',
    ].join('\n');
    const { config } = load(base, patch);
    assert.equal(config.storage.s3, undefined);
    assert.deepEqual(config.storage.encryption, { keyEnv: 'BACKUP_KEY' });
    assert.deepEqual(config.jobs.gateway?.extensionRef, { name: 'gateway', version: '1.0.2' });
    // dynamicOptions is free-form: a null value is kept as the job's to interpret.
    assert.deepEqual(config.jobs.gateway.dynamicOptions, { rerun: null, gatewayName: 'all' });
  });

  it('points at the right file and line after a merge', () => {
    const base =
      'jobs:\n  core:\n    enabled: true\n    retry:\n      initialInterval: 10m\nstorage:\n  local:\n    pth: /x\n';
    const patch = 'jobs:\n  core:\n    priority: high\n    retry:\n      maximumInterval: 1m\n';
    const err = problemsOf(() => load(base, patch));
    assert.deepEqual(err.message.split('\n'), [
      'file1.yaml:5: jobs.core.retry.initialInterval: 10m is longer than maximumInterval 1m (file2.yaml:5); make initialInterval at most maximumInterval (the retry delay grows from the first to the second)',
      "file1.yaml:8: storage.local.pth: unknown key; did you mean 'path'?",
      'file2.yaml:3: jobs.core.priority: expected a whole number, got the string "high"; write a whole number without quotes or fraction, e.g. 100',
    ]);
  });

  it('reports a missing file among several, together with the other files’ problems', async () => {
    const good = join(dir, 'good.yaml');
    const bad = join(dir, 'bad.yaml');
    const missing = join(dir, 'missing.yaml');
    await writeFile(good, 'jobs:\n  core:\n    enabled: true\n');
    await writeFile(bad, 'jobs:\n  core:\n    enabled: maybe\n');
    await assert.rejects(loadConfig([good, missing, bad], options), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(
        err.problems.map((p) => [p.file, p.line, p.path]),
        [
          [missing, 0, ''],
          [bad, 3, 'jobs.core.enabled'],
        ],
      );
      assert.ok(err.message.startsWith(`${missing}: file not found; `));
      return true;
    });
  });
});

describe('config: compatibility spellings', () => {
  it("accepts the README's snake_case S3 keys as aliases", () => {
    const { config } = load(
      'storage:\n  s3:\n    bucket: b\n    access_key_id: AK\n    secret_access_key: SK\n    session_token: ST\n    disable_ssl: true\n    force_path_style: true\n',
    );
    assert.equal(config.storage.s3?.accessKeyID, 'AK');
    assert.equal(config.storage.s3.secretAccessKey, 'SK');
    assert.equal(config.storage.s3.sessionToken, 'ST');
    assert.equal(config.storage.s3.disableSSL, true);
    assert.equal(config.storage.s3.forcePathStyle, true);
  });

  it('lets a later file override an alias with the canonical key (and vice versa)', () => {
    const s3 = (text: string) => `storage:\n  s3:\n    bucket: b\n${text}\n`;
    assert.equal(
      load(s3('    disable_ssl: true'), s3('    disableSSL: false')).config.storage.s3?.disableSSL,
      false,
    );
    assert.equal(
      load(s3('    disableSSL: false'), s3('    disable_ssl: true')).config.storage.s3?.disableSSL,
      true,
    );
  });

  it('rejects the alias and the canonical key in the same mapping', () => {
    const err = problemsOf(() =>
      load('storage:\n  s3:\n    bucket: b\n    forcePathStyle: true\n    force_path_style: true\n'),
    );
    assert.equal(err.problems.length, 1);
    assert.equal(err.problems[0]?.path, 'storage.s3.force_path_style');
  });

  it('honours disabled: true as enabled: false, and disabled: false as enabled: true', () => {
    const { config } = load(
      'jobs:\n  core:\n    disabled: true\n  iam:\n    disabled: false\n  devops:\n    enabled: true\n    disabled: false\n  network:\n    enabled: false\n    disabled: true\n',
    );
    assert.equal(config.jobs.core?.enabled, false);
    assert.equal(config.jobs.iam?.enabled, true);
    assert.equal(config.jobs.devops?.enabled, true);
    assert.equal(config.jobs.network?.enabled, false);
  });

  it('lets a later file decide with disabled after an earlier enabled', () => {
    const { config } = load(
      'jobs:\n  devops:\n    enabled: true\n',
      'jobs:\n  devops:\n    disabled: true\n',
    );
    assert.equal(config.jobs.devops?.enabled, false);
  });

  it("accepts the seed README's extensionRef keys and keeps YAML types in dynamicOptions", () => {
    const { config } = load(
      [
        'jobs:',
        '  iam:',
        '    disabled: false',
        '    priority: 10',
        '    extensionRef:',
        '      name: iam-ext',
        '      version: 0.1.0',
        '      namespace: extension-iam',
        '      chartsPath: /charts',
        '      installationMode: HostOnly',
        '      config: ""',
        '      clusterScheduling:',
        '        placement:',
        '          clusters: [host]',
        '          clusterSelector:',
        '            matchLabels:',
        '              node-role.kubernetes.io/master: ""',
        '            matchExpressions:',
        '              - key: kubernetes.io/arch',
        '                operator: In',
        '                values: [amd64]',
        '        overrides:',
        '          host: |',
        '            replicas: 2',
        '    dynamicOptions:',
        '      k: v',
        '      n: 3',
        '      flag: true',
        '      list: [1, two]',
        '      nested: {a: {b: null}}',
      ].join('\n'),
    );
    const iam = config.jobs.iam;
    assert.deepEqual(iam?.extensionRef, {
      name: 'iam-ext',
      version: '0.1.0',
      config: '',
      clusterScheduling: {
        placement: {
          clusters: ['host'],
          clusterSelector: {
            matchLabels: { 'node-role.kubernetes.io/master': '' },
            matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] }],
          },
        },
        overrides: { host: 'replicas: 2\n' },
      },
      namespace: 'extension-iam',
      chartsPath: '/charts',
      installationMode: 'HostOnly',
    });
    assert.deepEqual(iam.dynamicOptions, {
      k: 'v',
      n: 3,
      flag: true,
      list: [1, 'two'],
      nested: { a: { b: null } },
    });
  });

  it('reads JSON files', () => {
    const { config } = loadConfigFromText(
      [{ name: 'config.json', text: '{"jobs": {"core": {"enabled": true, "priority": 10000}}}' }],
      options,
    );
    assert.deepEqual(config.jobs.core, { enabled: true, priority: 10000, dynamicOptions: {} });
  });

  it('supports anchors and merge keys', () => {
    const merged = load(
      'jobs:\n  network:\n    dynamicOptions: &opts\n      rerun: true\n  kubeedge:\n    dynamicOptions:\n      updateCrds: false\n      <<: *opts\n',
    );
    assert.deepEqual(merged.config.jobs.kubeedge?.dynamicOptions, { updateCrds: false, rerun: true });
  });

  it('keeps a __proto__ key an ordinary key', () => {
    const { config } = load('jobs:\n  core:\n    dynamicOptions:\n      __proto__: {polluted: true}\n');
    assert.equal(Object.getPrototypeOf(config.jobs.core?.dynamicOptions), Object.prototype);
    assert.ok(Object.hasOwn(config.jobs.core?.dynamicOptions ?? {}, '__proto__'));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('config: the sample config.yaml (the original repository defaults)', () => {
  it('loads with all 20 jobs in the original run order', async () => {
    const { config } = await loadConfig([SAMPLE], options);
    assert.equal(Object.keys(config.jobs).length, 20);
    assert.deepEqual(runOrder(config), [...KNOWN_JOBS]);
    const priorities = Object.fromEntries(Object.entries(config.jobs).map(([n, j]) => [n, j.priority]));
    assert.deepEqual(priorities, ORIGINAL_PRIORITIES);
    const enabled = Object.entries(config.jobs).filter(([, j]) => j.enabled);
    assert.deepEqual(
      enabled.map(([n]) => n),
      ['core', 'iam'],
    );
  });

  it('has the original validators, storage and per-job values', async () => {
    const { config } = await loadConfig([SAMPLE], options);
    assert.deepEqual(config.validator, {
      ksVersion: { enabled: true },
      extensionsMuseum: {
        enabled: true,
        namespace: 'kubesphere-system',
        name: 'extensions-museum',
        syncInterval: 0,
        watchTimeout: 1_800_000,
      },
    });
    assert.deepEqual(config.storage, { local: { path: '/tmp/ks-upgrade' } });
    const { jobs } = config;
    assert.equal(jobs.core?.extensionRef, undefined);
    assert.deepEqual(jobs.application?.extensionRef, { name: 'openpitrix', version: '2.0.1' });
    assert.equal(jobs.devops?.extensionRef?.name, 'devops');
    assert.equal(jobs.devops.extensionRef.version, '1.1.2');
    assert.equal(jobs.devops.extensionRef.installationMode, 'Multicluster');
    assert.equal(jobs.devops.extensionRef.clusterScheduling, undefined);
    assert.match(jobs.devops.extensionRef.config ?? '', /jenkinsURL: "http:\/\/devops-jenkins:30180"/);
    assert.equal(jobs.tower?.extensionRef?.config, 'tower:\n  service:\n    create: false\n');
    assert.deepEqual(jobs.kubeedge?.dynamicOptions, { rerun: 'false' });
    assert.deepEqual(jobs['whizard-monitoring']?.dynamicOptions, { rerun: false, updateCrds: true });
    assert.deepEqual(jobs['whizard-alerting']?.dynamicOptions, { rerun: false, updateCrds: true });
    assert.equal(jobs['metrics-server']?.extensionRef?.version, '0.7.1');
    for (const name of ['whizard-events', 'whizard-logging', 'whizard-notification']) {
      assert.match(
        jobs[name]?.extensionRef?.config ?? '',
        /strategy: basic\n\s+user: admin\n\s+password: admin/,
      );
    }
    assert.match(jobs['whizard-logging']?.extensionRef?.config ?? '', /prefix: "\{\{ \.cluster \}\}-logs"/);
  });
});

describe('config: errors', () => {
  it('collects every problem and throws one ConfigError', () => {
    const err = problemsOf(() =>
      load(
        'storage:\n  local:\n    path: 5\njobs:\n  devop:\n    enabled: "yes"\n  core:\n    priority: -1\nupgrade:\n  gate: later\n',
      ),
    );
    assert.equal(err.name, 'ConfigError');
    assert.ok(err instanceof ValidationError);
    assert.ok(err.hint !== undefined);
    assert.deepEqual(
      err.problems.map((p) => `${p.line} ${p.path}`),
      [
        '3 storage.local.path',
        '5 jobs.devop',
        '6 jobs.devop.enabled',
        '8 jobs.core.priority',
        '10 upgrade.gate',
      ],
    );
    assert.equal(err.message.split('\n').length, 5);
    for (const problem of err.problems) {
      assert.ok(!problem.message.includes('; '), `"; " separates what from how: ${problem.message}`);
      assert.ok(problem.hint.length > 0);
    }
  });

  it('rejects a job that is not registered', () => {
    const err = problemsOf(() => load('jobs:\n  ks-autoscaling:\n    enabled: false\n'));
    assert.match(
      err.message,
      /^file1\.yaml:2: jobs\.ks-autoscaling: "ks-autoscaling" is not a registered job; use one of/,
    );
  });

  it('points an error inside a literal block at its own line', () => {
    const err = problemsOf(() =>
      load(
        'jobs:\n  tower:\n    extensionRef:\n      version: 1.0.0\n      config: |\n        a: 1\n        b: [\n',
      ),
    );
    assert.equal(err.problems[0]?.line, 7);
  });
});

describe('config: secrets', () => {
  const text =
    'storage:\n  s3:\n    bucket: b\n    accessKeyID: AKIDEXAMPLE\n    secretAccessKey: wJalrXUtnFEMI\n    sessionToken: FwoGZXIvYXdzEXAMPLE\n';

  it('redactConfig replaces inline credentials and leaves the input alone', () => {
    const { config } = load(text);
    const redacted = redactConfig(config);
    assert.equal(redacted.storage.s3?.accessKeyID, '<redacted>');
    assert.equal(redacted.storage.s3.secretAccessKey, '<redacted>');
    assert.equal(redacted.storage.s3.sessionToken, '<redacted>');
    assert.equal(redacted.storage.s3.bucket, 'b');
    assert.equal(config.storage.s3?.secretAccessKey, 'wJalrXUtnFEMI');
    const json = JSON.stringify(redacted);
    for (const secret of configSecrets(config)) assert.ok(!json.includes(secret));
  });

  it('configSecrets lists the literal secrets, and nothing without inline credentials', () => {
    assert.deepEqual(configSecrets(load(text).config), [
      'AKIDEXAMPLE',
      'wJalrXUtnFEMI',
      'FwoGZXIvYXdzEXAMPLE',
    ]);
    assert.deepEqual(
      configSecrets(load('storage: {s3: {bucket: b, credentialsFile: /creds.yaml}}').config),
      [],
    );
    assert.deepEqual(redactConfig(load('').config), load('').config);
  });

  it('never repeats a credential in an error message', () => {
    const err = problemsOf(() =>
      load('storage:\n  s3:\n    bucket: b\n    accessKeyID: 12345678\n    secretAccessKey: x\n'),
    );
    assert.ok(!err.message.includes('12345678'), err.message);
  });
});

describe('config: sha256', () => {
  it('is the same for the same settings written differently, and differs otherwise', () => {
    const a = load('jobs: {core: {enabled: true, priority: 1}}\nstorage: {local: {path: /x}}\n');
    const b = load('storage:\n  local:\n    path: /x\njobs:\n  core:\n    priority: 1\n    enabled: true\n');
    const c = load('jobs: {core: {enabled: true, priority: 2}}\nstorage: {local: {path: /x}}\n');
    assert.match(a.sha256, /^[0-9a-f]{64}$/);
    assert.equal(a.sha256, b.sha256);
    assert.notEqual(a.sha256, c.sha256);
  });
});
