// Property tests of the config loader (docs/fuzzing.md): YAML noise, schema-shaped trees as YAML and
// JSON, several files merged, duplicate keys, alias bombs, the size cap, big numbers, the round trip
// of an accepted config, and the same through real files.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CONFIG_SCHEMA,
  ConfigError,
  formatDuration,
  loadConfig,
  loadConfigFromText,
  parseDuration,
  type LoadedConfig,
  type UpgradeConfig,
} from '../../src/config/index.js';
import { MAX_ALIAS_COPIES, MAX_CONFIG_BYTES } from '../../src/config/parse.js';
import {
  acceptOrRejectAsync,
  boundedAsync,
  fileLoaderProperties,
  fuzzParameters,
  junk,
  toYaml,
  trackUnhandledRejections,
  yamlNoise,
} from '../helpers/fuzz.js';

const unhandled = trackUnhandledRejections();
const knownJobs = ['core', 'iam', 'devops'];

/** The config as a config file again: durations as Go durations, one storage backend. */
function configToText(config: UpgradeConfig): string {
  const copy = structuredClone(config);
  const text: Record<string, unknown> = { ...copy };
  const museum = copy.validator.extensionsMuseum;
  const jobs = Object.fromEntries(
    Object.entries(copy.jobs).map(([name, job]) => {
      const { retry, timeout, ...rest } = job;
      const out: Record<string, unknown> = { ...rest };
      if (timeout !== undefined) out.timeout = formatDuration(timeout);
      if (retry !== undefined) {
        out.retry = {
          ...(retry.maximumAttempts !== undefined ? { maximumAttempts: retry.maximumAttempts } : {}),
          ...(retry.initialInterval !== undefined
            ? { initialInterval: formatDuration(retry.initialInterval) }
            : {}),
          ...(retry.maximumInterval !== undefined
            ? { maximumInterval: formatDuration(retry.maximumInterval) }
            : {}),
        };
      }
      return [name, out];
    }),
  );
  text.jobs = jobs;
  text.validator = {
    ...copy.validator,
    extensionsMuseum: {
      ...museum,
      syncInterval: formatDuration(museum.syncInterval),
      watchTimeout: formatDuration(museum.watchTimeout),
    },
  };
  const { local, ...storage } = copy.storage;
  text.storage = storage.s3 !== undefined ? storage : { ...storage, local };
  const helm = copy.upgrade.helm;
  if (helm !== undefined)
    text.upgrade = { ...copy.upgrade, helm: { ...helm, timeout: formatDuration(helm.timeout) } };
  return JSON.stringify(text);
}

/** Valid or invalid YAML text for `extensionRef.config` and cluster overrides. */
const yamlText = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 6 }), junk, { maxKeys: 3 }).map(toYaml),
  yamlNoise,
  fc.constant(null),
);

describe('fuzz: config loader', () => {
  fileLoaderProperties<LoadedConfig, ConfigError>({
    name: 'config',
    schema: CONFIG_SCHEMA,
    schemaOptions: {
      keysAt: { '#/properties/jobs': fc.constantFrom(...knownJobs, 'unknown-job', '__proto__', 'a.b') },
      valuesAt: { '#/$defs/yamlText': yamlText },
    },
    errorClass: ConfigError,
    problems: (error) => [...error.problems],
    load: (sources) => loadConfigFromText(sources, { knownJobs }),
    comparable: (loaded) => loaded.config,
    reserialize: (loaded) => configToText(loaded.config),
    freeFormPath: ['jobs', 'core', 'dynamicOptions'],
    integerPath: { path: ['jobs', 'core', 'priority'], valid: 1 },
    maxBytes: MAX_CONFIG_BYTES,
    maxAliasCopies: MAX_ALIAS_COPIES,
    entryMaps: ['jobs'],
  });

  describe('through files', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'ks-fuzz-config-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('loadConfig of files agrees with loadConfigFromText of their texts', async () => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.oneof(yamlNoise, junk.map(toYaml)), { minLength: 1, maxLength: 3 }),
          async (texts) => {
            const files = await Promise.all(
              texts.map(async (text, i) => {
                const file = path.join(dir, `case-${n}-${i}.yaml`);
                await writeFile(file, text);
                return file;
              }),
            );
            n++;
            const options = { knownJobs, checkStoragePath: false };
            const fromFiles = await boundedAsync('loadConfig', () =>
              acceptOrRejectAsync(ConfigError, () => loadConfig(files, options)),
            );
            const fromText = await acceptOrRejectAsync(ConfigError, () =>
              Promise.resolve(
                loadConfigFromText(
                  texts.map((text, i) => ({ name: files[i] ?? '', text })),
                  options,
                ),
              ),
            );
            assert.equal(fromFiles.ok, fromText.ok);
            if (fromFiles.ok && fromText.ok) assert.deepEqual(fromFiles.value, fromText.value);
            if (!fromFiles.ok && !fromText.ok) assert.equal(fromFiles.error.message, fromText.error.message);
          },
        ),
        fuzzParameters(30),
      );
    });
  });

  it('regression: a duration beyond 2^53 ns keeps its value through formatDuration', () => {
    // 36,030,000 s + 5.868001 ms: the milliseconds, a double, hold it to about 4 ns; formatting
    // them through ms * 1e6 lost a nanosecond, so a reserialized config reloaded different.
    const ms = parseDuration('.00000163h36030000s1ns');
    assert.equal(parseDuration(formatDuration(ms)), ms);
  });

  it('leaves no unhandled rejection', () => {
    unhandled.assertNone();
  });
});
