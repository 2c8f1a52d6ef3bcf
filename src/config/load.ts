import { createHash } from 'node:crypto';
import { canonicalJson } from '../util/object.js';
import { readFile } from 'node:fs/promises';
import { CONFIG_DEFAULTS, S3_KEY_ALIASES } from './defaults.js';
import { parseDuration } from './duration.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { parseSource } from './parse.js';
import { ProblemCollector } from './problems.js';
import { CONFIG_SCHEMA } from './schema.js';
import { closestMatch } from './suggest.js';
import {
  childMap,
  isUnset,
  joinPath,
  mergeNodes,
  toPlain,
  type ConfigNode,
  type MapNode,
  type ScalarNode,
} from './tree.js';
import type {
  ClusterScheduling,
  ExtensionRef,
  JobConfig,
  RetryConfig,
  S3StorageConfig,
  StorageConfig,
  UpgradeConfig,
  ChecksConfig,
} from './types.js';
import { validateAgainstSchema } from './validate.js';

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /**
   * Names of the registered jobs; any other `jobs.<name>` is an error. Omit only in tools that
   * read other sections (e.g. `ks-upgrade backups` reads `storage`); job names are then not checked.
   */
  knownJobs?: readonly string[];
  /**
   * Texts merged after the files (later wins), e.g. the secret-free overrides of a workflow input.
   * `name` stands in for a file name in error messages.
   */
  extraSources?: readonly ConfigSource[];
}

/** A validated configuration and where it came from. */
export interface LoadedConfig {
  config: UpgradeConfig;
  /** The files (or source names) in merge order, as given. */
  files: string[];
  /** sha256 (hex) of the canonical JSON of `config` (sorted keys): equal configs, equal hashes. */
  sha256: string;
}

/** A config text that does not come from a file (tests, workflow input, ConfigMaps). */
export interface ConfigSource {
  /** Used in problem messages in place of a file name. */
  name: string;
  text: string;
}

type Input = ConfigSource | { name: string; problem: ConfigProblem };

/**
 * Reads, merges (in order, later wins), defaults and validates config files. Reads only the given
 * files. Throws a {@link ConfigError} listing every problem of every file, including files that
 * are missing or unreadable (the original silently ran with defaults in that case).
 */
export async function loadConfig(
  files: readonly string[],
  options: LoadConfigOptions = {},
): Promise<LoadedConfig> {
  const inputs = await Promise.all(
    files.map(async (name): Promise<Input> => {
      try {
        return { name, text: await readFile(name, 'utf8') };
      } catch (err) {
        return { name, problem: readProblem(name, err) };
      }
    }),
  );
  return loadInputs([...inputs, ...(options.extraSources ?? [])], options);
}

/** {@link loadConfig} for texts already in memory; `name` stands in for the file name in messages. */
export function loadConfigFromText(
  sources: readonly ConfigSource[],
  options: LoadConfigOptions = {},
): LoadedConfig {
  return loadInputs(sources, options);
}

function readProblem(file: string, err: unknown): ConfigProblem {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const base = { file, line: 0, path: '' };
  switch (code) {
    case 'ENOENT':
      return {
        ...base,
        message: 'file not found',
        hint: 'check the path given with --config (the original tool silently ignored a missing file and ran with defaults)',
      };
    case 'EISDIR':
      return {
        ...base,
        message: 'cannot read the file: it is a directory',
        hint: 'pass the path of a YAML file',
      };
    case 'EACCES':
    case 'EPERM':
      return {
        ...base,
        message: 'cannot read the file: permission denied',
        hint: 'make the file readable by the user running ks-upgrade',
      };
    default:
      return {
        ...base,
        message: `cannot read the file: ${err instanceof Error ? err.message : String(err)}`,
        hint: 'check the path and that the file is readable',
      };
  }
}

function loadInputs(inputs: readonly Input[], options: LoadConfigOptions): LoadedConfig {
  const problems = new ProblemCollector();
  let merged: ConfigNode | undefined;
  inputs.forEach((input, index) => {
    if ('problem' in input) {
      problems.add(input.problem, index);
      return;
    }
    const parsed = parseSource(input.name, index, input.text);
    for (const problem of parsed.problems) problems.add(problem, index);
    if (parsed.root === null) return;
    normalizeFile(parsed.root, problems);
    merged = merged === undefined ? parsed.root : mergeNodes(merged, parsed.root);
  });
  if (merged !== undefined) {
    validateAgainstSchema(merged, CONFIG_SCHEMA, problems);
    checkSemantics(merged, options, problems);
  }
  if (problems.size > 0) throw new ConfigError(problems.sorted());
  const config = buildConfig(merged === undefined ? {} : toPlain(merged));
  return { config, files: inputs.map((i) => i.name), sha256: sha256(canonicalJson(config)) };
}

// ---------------------------------------------------------------------------------------------
// Per-file normalisation. Aliases are resolved inside each file, before merging, so that a later
// file can override an earlier one in either spelling, and "both spellings" is only an error
// where it is ambiguous: in one mapping of one file.

function normalizeFile(root: MapNode, problems: ProblemCollector): void {
  const s3 = childMap(childMap(root, 'storage'), 's3');
  if (s3 !== undefined) {
    for (const [alias, canonical] of S3_KEY_ALIASES)
      renameAlias(s3, alias, canonical, 'storage.s3', problems);
  }
  const jobs = childMap(root, 'jobs');
  for (const [name, job] of jobs?.entries ?? []) {
    if (job.kind === 'map') normalizeDisabled(job, joinPath('jobs', name), problems);
  }
}

function renameAlias(
  map: MapNode,
  alias: string,
  canonical: string,
  path: string,
  problems: ProblemCollector,
): void {
  const aliased = map.entries.get(alias);
  if (aliased === undefined) return;
  const existing = map.entries.get(canonical);
  if (existing !== undefined) {
    problems.at(
      aliased.at,
      joinPath(path, alias),
      `set together with ${canonical} (line ${existing.at.line}), which is the same setting`,
      `keep only ${canonical} (${alias} is the original README's spelling of it)`,
    );
    map.entries.delete(alias);
    return;
  }
  // Rebuild to keep the key's position, so later messages list keys in file order.
  const entries = [...map.entries].map(([k, v]): [string, ConfigNode] =>
    k === alias ? [canonical, { ...v, spelledAs: alias }] : [k, v],
  );
  map.entries = new Map(entries);
}

function normalizeDisabled(job: MapNode, path: string, problems: ProblemCollector): void {
  const disabled = job.entries.get('disabled');
  if (disabled === undefined) return;
  if (disabled.kind !== 'scalar' || typeof disabled.value !== 'boolean') {
    if (isUnset(disabled)) job.entries.delete('disabled');
    return; // a wrong type is reported by the schema, under the name the operator wrote
  }
  const enabled = job.entries.get('enabled');
  job.entries.delete('disabled');
  if (isUnset(enabled)) {
    const node: ScalarNode = { kind: 'scalar', at: disabled.at, value: !disabled.value };
    job.entries.set('enabled', node);
    return;
  }
  if (enabled?.kind === 'scalar' && typeof enabled.value === 'boolean' && enabled.value === disabled.value) {
    problems.at(
      disabled.at,
      joinPath(path, 'disabled'),
      `contradicts enabled: ${enabled.value} on line ${enabled.at.line} (disabled: ${disabled.value} means enabled: ${!disabled.value})`,
      'keep only enabled (disabled is the seed README spelling of enabled: false)',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Checks the schema cannot express.

function durationOf(node: ConfigNode | undefined): number | undefined {
  if (node?.kind !== 'scalar') return undefined;
  if (node.value === 0) return 0;
  if (typeof node.value !== 'string') return undefined;
  try {
    return parseDuration(node.value);
  } catch {
    return undefined; // reported by the schema check
  }
}

/** Set to something other than '' (a wrong type counts as set: the schema check reports it). */
function isGiven(node: ConfigNode | undefined): node is ConfigNode {
  return !isUnset(node) && !(node?.kind === 'scalar' && node.value === '');
}

function checkSemantics(root: ConfigNode, options: LoadConfigOptions, problems: ProblemCollector): void {
  const jobs = childMap(root, 'jobs');
  for (const [name, job] of jobs?.entries ?? []) {
    const path = joinPath('jobs', name);
    const known = options.knownJobs;
    if (known && !known.includes(name)) {
      const guess = closestMatch(name, known);
      problems.at(
        job.at,
        path,
        `"${name}" is not a registered job`,
        guess !== undefined
          ? `did you mean '${guess}'?`
          : `use one of the registered jobs: ${[...known].sort().join(', ')}`,
      );
    }
    if (job.kind === 'map') checkJobTimings(job, path, problems);
  }
  const storage = childMap(root, 'storage');
  checkEncryption(childMap(storage, 'encryption'), problems);
  checkS3Credentials(childMap(storage, 's3'), problems);
}

function checkJobTimings(job: MapNode, path: string, problems: ProblemCollector): void {
  const mustBePositive = (node: ConfigNode | undefined, nodePath: string, what: string): void => {
    if (node !== undefined && durationOf(node) === 0) {
      problems.at(
        node.at,
        nodePath,
        'must be greater than 0',
        `remove it to use the default ${what}, or give e.g. "10s"`,
      );
    }
  };
  const timeout = job.entries.get('timeout');
  mustBePositive(timeout, joinPath(path, 'timeout'), 'timeout');
  const retry = childMap(job, 'retry');
  if (retry === undefined) return;
  const retryPath = joinPath(path, 'retry');
  const initialNode = retry.entries.get('initialInterval');
  const maximumNode = retry.entries.get('maximumInterval');
  mustBePositive(initialNode, joinPath(retryPath, 'initialInterval'), 'interval');
  mustBePositive(maximumNode, joinPath(retryPath, 'maximumInterval'), 'interval');
  const initial = durationOf(initialNode);
  const maximum = durationOf(maximumNode);
  if (initialNode !== undefined && initial !== undefined && maximum !== undefined && initial > maximum) {
    const initialText = initialNode.kind === 'scalar' ? String(initialNode.value) : '';
    const maximumText = maximumNode?.kind === 'scalar' ? String(maximumNode.value) : '';
    problems.at(
      initialNode.at,
      joinPath(retryPath, 'initialInterval'),
      `${initialText} is longer than maximumInterval ${maximumText}` +
        (maximumNode !== undefined && maximumNode.at.file !== initialNode.at.file
          ? ` (${maximumNode.at.file}:${maximumNode.at.line})`
          : ` (line ${maximumNode?.at.line ?? 0})`),
      'make initialInterval at most maximumInterval (the retry delay grows from the first to the second)',
    );
  }
}

function checkEncryption(encryption: MapNode | undefined, problems: ProblemCollector): void {
  if (encryption === undefined) return;
  const keyFile = encryption.entries.get('keyFile');
  const keyEnv = encryption.entries.get('keyEnv');
  if (!isUnset(keyFile) && !isUnset(keyEnv)) {
    problems.at(
      keyEnv?.at ?? encryption.at,
      'storage.encryption',
      'both keyFile and keyEnv are set',
      'keep exactly one of them (to drop a keyFile from an earlier file, write keyFile: null in the later one)',
    );
  } else if (isUnset(keyFile) && isUnset(keyEnv)) {
    problems.at(
      encryption.at,
      'storage.encryption',
      'neither keyFile nor keyEnv is set',
      'set keyFile: <path of the key file> or keyEnv: <VARIABLE>, or remove storage.encryption',
    );
  }
}

function checkS3Credentials(s3: MapNode | undefined, problems: ProblemCollector): void {
  if (s3 === undefined) return;
  const key = s3.entries.get('accessKeyID');
  const secret = s3.entries.get('secretAccessKey');
  const token = s3.entries.get('sessionToken');
  const file = s3.entries.get('credentialsFile');
  const name = (node: ConfigNode, canonical: string): string => node.spelledAs ?? canonical;
  if (isGiven(file) && (isGiven(key) || isGiven(secret) || isGiven(token))) {
    problems.at(
      file.at,
      'storage.s3.credentialsFile',
      'set together with inline credentials (accessKeyID/secretAccessKey/sessionToken)',
      'use one source: remove the inline keys (recommended: they end up in ConfigMaps and shell history) or credentialsFile',
    );
    return;
  }
  const lone =
    isGiven(key) && !isGiven(secret)
      ? { node: key, canonical: 'accessKeyID', missing: 'secretAccessKey' }
      : isGiven(secret) && !isGiven(key)
        ? { node: secret, canonical: 'secretAccessKey', missing: 'accessKeyID' }
        : undefined;
  if (lone !== undefined) {
    problems.at(
      lone.node.at,
      joinPath('storage.s3', name(lone.node, lone.canonical)),
      `set without ${lone.missing}`,
      'set both, or neither to use credentialsFile or the AWS environment (AWS_ACCESS_KEY_ID, …)',
    );
  } else if (isGiven(token) && !isGiven(key)) {
    problems.at(
      token.at,
      joinPath('storage.s3', name(token, 'sessionToken')),
      'set without accessKeyID and secretAccessKey',
      'a session token is only used together with the key pair it belongs to: set all three',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Building the typed config from the validated plain data. Everything here may assume that the
// schema and semantic checks passed; the accessors only narrow types for the compiler.

type Obj = Record<string, unknown>;

function obj(value: unknown): Obj | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Obj) : undefined;
}
function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
function bool(value: unknown): boolean | undefined {
  return typeof value === 'boolean' ? value : undefined;
}
function num(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}
function ms(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  return typeof value === 'string' ? parseDuration(value) : undefined;
}

/** Removes null members (null means "not set") from validated, JSON-like data. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  const o = obj(value);
  if (o === undefined) return value;
  return Object.fromEntries(
    Object.entries(o)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

/** `/a/b` → `a/b/`; '' stays ''. */
function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '');
  return trimmed === '' || trimmed.endsWith('/') ? trimmed : `${trimmed}/`;
}

function buildS3(s3: Obj): S3StorageConfig {
  const config: S3StorageConfig = {
    endpoint: str(s3.endpoint) ?? '',
    region: str(s3.region) ?? '',
    bucket: str(s3.bucket) ?? '',
    disableSSL: bool(s3.disableSSL) ?? false,
    forcePathStyle: bool(s3.forcePathStyle) ?? false,
    prefix: normalizePrefix(str(s3.prefix) ?? ''),
    createBucket: bool(s3.createBucket) ?? CONFIG_DEFAULTS.s3CreateBucket,
    multipartThreshold: num(s3.multipartThreshold) ?? CONFIG_DEFAULTS.s3MultipartThreshold,
  };
  // Empty inline credentials mean "not set" (the original's zero value), so the environment applies.
  const accessKeyID = nonEmpty(s3.accessKeyID);
  const secretAccessKey = nonEmpty(s3.secretAccessKey);
  const sessionToken = nonEmpty(s3.sessionToken);
  const credentialsFile = nonEmpty(s3.credentialsFile);
  if (accessKeyID !== undefined) config.accessKeyID = accessKeyID;
  if (secretAccessKey !== undefined) config.secretAccessKey = secretAccessKey;
  if (sessionToken !== undefined) config.sessionToken = sessionToken;
  if (credentialsFile !== undefined) config.credentialsFile = credentialsFile;
  return config;
}

function buildStorage(storage: Obj): StorageConfig {
  const config: StorageConfig = {
    local: { path: str(obj(storage.local)?.path) ?? CONFIG_DEFAULTS.localPath },
  };
  const s3 = obj(storage.s3);
  if (s3 !== undefined) config.s3 = buildS3(s3);
  const encryption = obj(storage.encryption);
  if (encryption !== undefined) {
    const keyFile = str(encryption.keyFile);
    config.encryption = keyFile !== undefined ? { keyFile } : { keyEnv: str(encryption.keyEnv) ?? '' };
  }
  return config;
}

function buildExtensionRef(jobName: string, ref: Obj): ExtensionRef {
  const config: ExtensionRef = { name: str(ref.name) ?? jobName, version: str(ref.version) ?? '' };
  const text = str(ref.config);
  if (text !== undefined) config.config = text;
  const scheduling = obj(ref.clusterScheduling);
  if (scheduling !== undefined) config.clusterScheduling = withoutNulls(scheduling) as ClusterScheduling;
  for (const key of ['namespace', 'chartsPath', 'installationMode'] as const) {
    const value = str(ref[key]);
    if (value !== undefined) config[key] = value;
  }
  return config;
}

function buildJob(name: string, job: Obj): JobConfig {
  const config: JobConfig = {
    enabled: bool(job.enabled) ?? CONFIG_DEFAULTS.jobEnabled,
    priority: num(job.priority) ?? CONFIG_DEFAULTS.jobPriority,
    dynamicOptions: obj(job.dynamicOptions) ?? {},
  };
  const ref = obj(job.extensionRef);
  if (ref !== undefined) config.extensionRef = buildExtensionRef(name, ref);
  const retry = obj(job.retry);
  if (retry !== undefined) {
    const policy: Partial<RetryConfig> = {};
    const attempts = num(retry.maximumAttempts);
    const initial = ms(retry.initialInterval);
    const maximum = ms(retry.maximumInterval);
    if (attempts !== undefined) policy.maximumAttempts = attempts;
    if (initial !== undefined) policy.initialInterval = initial;
    if (maximum !== undefined) policy.maximumInterval = maximum;
    config.retry = policy;
  }
  const timeout = ms(job.timeout);
  if (timeout !== undefined) config.timeout = timeout;
  return config;
}

function buildConfig(plain: unknown): UpgradeConfig {
  const root = obj(plain) ?? {};
  const validator = obj(root.validator) ?? {};
  const museum = obj(validator.extensionsMuseum) ?? {};
  const jobs: Record<string, JobConfig> = {};
  for (const [name, job] of Object.entries(obj(root.jobs) ?? {})) {
    Object.defineProperty(jobs, name, {
      value: buildJob(name, obj(job) ?? {}),
      enumerable: true,
      writable: true,
    });
  }
  return {
    storage: buildStorage(obj(root.storage) ?? {}),
    validator: {
      ksVersion: { enabled: bool(obj(validator.ksVersion)?.enabled) ?? CONFIG_DEFAULTS.ksVersionEnabled },
      extensionsMuseum: {
        enabled: bool(museum.enabled) ?? CONFIG_DEFAULTS.museumEnabled,
        // The original fills these when empty, not only when absent.
        namespace: nonEmpty(museum.namespace) ?? CONFIG_DEFAULTS.museumNamespace,
        name: nonEmpty(museum.name) ?? CONFIG_DEFAULTS.museumName,
        syncInterval: ms(museum.syncInterval) ?? CONFIG_DEFAULTS.museumSyncIntervalMs,
        watchTimeout: ms(museum.watchTimeout) || CONFIG_DEFAULTS.museumWatchTimeoutMs,
      },
    },
    jobs,
    upgrade: {
      gate:
        (str(obj(root.upgrade)?.gate) as UpgradeConfig['upgrade']['gate'] | undefined) ??
        CONFIG_DEFAULTS.gate,
    },
    ...(obj(root.checks) ? { checks: buildChecks(obj(root.checks) ?? {}) } : {}),
  };
}

function buildChecks(checks: Obj): ChecksConfig {
  const strings = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  const config: ChecksConfig = {
    images: strings(checks.images),
    pullSecrets: strings(checks.pullSecrets),
    insecureRegistries: strings(checks.insecureRegistries),
  };
  const keys = [
    'targetVersion',
    'coreChart',
    'coreChartRepo',
    'coreChartVersion',
    'extensionCharts',
    'imageRegistry',
    'registryAuthFile',
    'caFile',
  ] as const;
  for (const key of keys) {
    const value = str(checks[key]);
    if (value !== undefined) config[key] = value;
  }
  return config;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
