import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { canonicalJson } from '../util/object.js';
import { CONFIG_DEFAULTS, S3_KEY_ALIASES } from './defaults.js';
import { parseDuration } from './duration.js';
import type { ConfigProblem } from './errors.js';
import { MAX_CONFIG_BYTES, parseSource, tooLargeProblem } from './parse.js';
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
  HelmUpgradeConfig,
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
  /**
   * Refuse a config that enables no job (an upgrade that would change nothing). Like
   * {@link jobsNeedingEncryption}, checked once the config is otherwise valid.
   */
  requireEnabledJob?: boolean;
  /** Jobs that may be enabled only with `storage.encryption` (they back up credentials). */
  jobsNeedingEncryption?: readonly string[];
  /**
   * Check `storage.local.path` on this machine when the local backend is used (default true):
   * not a directory, a symlink loop, under /proc or /sys. Only {@link loadConfig} checks it.
   */
  checkStoragePath?: boolean;
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
 * files. Throws a `ConfigError` listing every problem of every file, including files that
 * are missing or unreadable (the original silently ran with defaults in that case).
 */
export async function loadConfig(
  files: readonly string[],
  options: LoadConfigOptions = {},
): Promise<LoadedConfig> {
  const inputs = await Promise.all(files.map(readInput));
  const merged = mergeInputs([...inputs, ...(options.extraSources ?? [])], options);
  if (merged.root !== undefined && options.checkStoragePath !== false) {
    await checkStoragePath(merged.root, merged.names, merged.problems);
  }
  return finish(merged, options);
}

/** {@link loadConfig} for texts already in memory; `name` stands in for the file name in messages. */
export function loadConfigFromText(
  sources: readonly ConfigSource[],
  options: LoadConfigOptions = {},
): LoadedConfig {
  return finish(mergeInputs(sources, options), options);
}

/**
 * Reads at most {@link MAX_CONFIG_BYTES} (+1 to notice more) of a regular file: a config named by
 * mistake as a 50 MB log, /dev/zero or a named pipe is refused without being read.
 */
async function readInput(name: string): Promise<Input> {
  try {
    const info = await stat(name);
    if (!info.isFile()) return { name, problem: notAFileProblem(name, info) };
    if (info.size > MAX_CONFIG_BYTES) return { name, problem: tooLargeProblem(name, info.size) };
    const handle = await open(name, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length > MAX_CONFIG_BYTES) return { name, problem: tooLargeProblem(name, length) };
      }
      return { name, text: buffer.toString('utf8', 0, length) };
    } finally {
      await handle.close();
    }
  } catch (err) {
    return { name, problem: readProblem(name, err) };
  }
}

function fileKind(info: Stats): string {
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isFIFO()) return 'a named pipe';
  return info.isSocket() ? 'a socket' : 'not a file';
}

function notAFileProblem(file: string, info: Stats): ConfigProblem {
  if (info.isDirectory()) return readProblem(file, Object.assign(new Error('directory'), { code: 'EISDIR' }));
  return {
    file,
    line: 0,
    path: '',
    message: `cannot read the file: it is not a regular file (${fileKind(info)})`,
    hint: 'pass the path of a YAML file',
  };
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

interface Merged {
  root: MapNode | undefined;
  /** The sources in merge order, as named (for messages and {@link LoadedConfig.files}). */
  names: string[];
  problems: ProblemCollector;
}

function mergeInputs(inputs: readonly Input[], options: LoadConfigOptions): Merged {
  const problems = new ProblemCollector();
  let merged: MapNode | undefined;
  inputs.forEach((input, index) => {
    if ('problem' in input) {
      problems.add(input.problem, index);
      return;
    }
    const parsed = parseSource(input.name, index, input.text);
    for (const problem of parsed.problems) problems.add(problem, index);
    if (parsed.root === null) return;
    normalizeFile(parsed.root, problems);
    merged = merged === undefined ? parsed.root : mergeFile(merged, parsed.root);
  });
  const names = inputs.map((i) => i.name);
  if (merged !== undefined) {
    validateAgainstSchema(merged, CONFIG_SCHEMA, problems);
    checkSemantics(merged, names, options, problems);
  }
  return { root: merged, names, problems };
}

function finish(merged: Merged, options: LoadConfigOptions): LoadedConfig {
  const { root, names, problems } = merged;
  // What the whole config asks for, checked once it reads correctly (a broken config says nothing
  // reliable about which jobs it enables).
  if (problems.size === 0) {
    if (childMap(childMap(root, 'storage'), 'encryption') === undefined) {
      checkJobsNeedingEncryption(
        childMap(root, 'jobs'),
        options.jobsNeedingEncryption ?? [],
        names,
        problems,
      );
    }
    if (options.requireEnabledJob === true) checkSomeJobEnabled(root, names, problems);
  }
  if (problems.size > 0) throw problems.toError();
  const config = buildConfig(root === undefined ? {} : toPlain(root));
  return { config, files: names, sha256: sha256(canonicalJson(config)) };
}

/**
 * Merges a later file into what the earlier ones gave. The backend is one choice: a later file
 * that sets `storage.local` or `storage.s3` replaces the earlier files' backend (so a config that
 * sets s3 over the built-in defaults' local path uses S3, and a later local path wins over an
 * earlier bucket); both in one file is an error (see {@link normalizeFile}).
 */
function mergeFile(base: MapNode, over: MapNode): MapNode {
  const storage = childMap(base, 'storage');
  const next = childMap(over, 'storage');
  if (storage !== undefined && next !== undefined) {
    const entries = new Map(storage.entries);
    if (!isUnset(next.entries.get('s3'))) entries.delete('local');
    if (!isUnset(next.entries.get('local'))) entries.delete('s3');
    base = { ...base, entries: new Map(base.entries).set('storage', { ...storage, entries }) };
  }
  return mergeNodes(base, over) as MapNode;
}

// ---------------------------------------------------------------------------------------------
// Per-file normalisation. Aliases are resolved inside each file, before merging, so that a later
// file can override an earlier one in either spelling, and "both spellings" is only an error
// where it is ambiguous: in one mapping of one file.

function normalizeFile(root: MapNode, problems: ProblemCollector): void {
  const storage = childMap(root, 'storage');
  const local = storage?.entries.get('local');
  const s3node = storage?.entries.get('s3');
  if (local !== undefined && s3node !== undefined && !isUnset(local) && !isUnset(s3node)) {
    problems.at(
      s3node.at,
      'storage.s3',
      `set together with storage.local (line ${local.at.line}) in the same file`,
      'keep one: remove storage.local to keep backups in the bucket, or storage.s3 to keep them in the directory (the original tool silently used S3)',
    );
  }
  const s3 = childMap(storage, 's3');
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

function checkSemantics(
  root: MapNode,
  names: readonly string[],
  options: LoadConfigOptions,
  problems: ProblemCollector,
): void {
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
  checkHelmUpgrade(childMap(root, 'upgrade'), problems);
}

/** Gate `helm` needs a chart; a repository or OCI chart needs a pinned version; `set` paths are dotted keys. */
function checkHelmUpgrade(upgrade: MapNode | undefined, problems: ProblemCollector): void {
  if (upgrade === undefined) return;
  const gate = upgrade.entries.get('gate');
  const helm = childMap(upgrade, 'helm');
  const chart = helm?.entries.get('chart');
  if (gate?.kind === 'scalar' && gate.value === 'helm' && !isGiven(chart)) {
    problems.at(
      gate.at,
      'upgrade.gate',
      'gate helm runs the ks-core upgrade itself, but upgrade.helm.chart is not set',
      'set upgrade.helm.chart to the target ks-core chart (a .tgz file, an oci:// reference, a chart URL, ' +
        'or a chart name with upgrade.helm.repo), or choose gate signal or detect',
    );
  }
  if (helm === undefined) return;
  const repo = helm.entries.get('repo');
  const version = helm.entries.get('version');
  const chartText = chart?.kind === 'scalar' && typeof chart.value === 'string' ? chart.value : '';
  if (!isGiven(version) && (isGiven(repo) || chartText.startsWith('oci://'))) {
    const node = isGiven(repo) ? repo : (chart ?? helm);
    problems.at(
      node.at,
      isGiven(repo) ? 'upgrade.helm.repo' : 'upgrade.helm.chart',
      `a chart from ${isGiven(repo) ? 'a repository' : 'an OCI registry'} needs upgrade.helm.version`,
      'pin the chart version, e.g. version: "1.1.4", so every cluster of a fleet gets the same chart',
    );
  }
  if (isGiven(repo) && (chartText.includes('://') || chartText.endsWith('.tgz') || chartText.includes('/'))) {
    problems.at(
      chart?.at ?? helm.at,
      'upgrade.helm.chart',
      `with upgrade.helm.repo, chart must be a chart name in that repository, not ${JSON.stringify(chartText)}`,
      'write chart: ks-core, or remove upgrade.helm.repo to use the chart reference as it is',
    );
  }
  for (const key of ['repo', 'chart'] as const) {
    const node = helm.entries.get(key);
    if (
      node?.kind === 'scalar' &&
      typeof node.value === 'string' &&
      /^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(node.value)
    ) {
      problems.at(
        node.at,
        joinPath('upgrade.helm', key),
        'the URL holds credentials, which would end up on helm’s command line',
        'remove user:password@ from the URL and log in as the worker user instead (`helm registry login`, or `helm repo add --username`)',
      );
    }
  }
  const timeout = helm.entries.get('timeout');
  if (timeout !== undefined && durationOf(timeout) === 0) {
    problems.at(
      timeout.at,
      'upgrade.helm.timeout',
      'must be greater than 0',
      'remove it for 30m, or give e.g. "45m"',
    );
  }
  const set = childMap(helm, 'set');
  for (const [key, node] of set?.entries ?? []) {
    if (!/^[^.\s]+(\.[^.\s]+)*$/.test(key)) {
      problems.at(
        node.at,
        joinPath('upgrade.helm.set', key),
        `${JSON.stringify(key)} is not a dotted values path`,
        'write the path of the value as dot-separated keys, e.g. global.imageRegistry: registry.local',
      );
    }
  }
}

/** `enabled: true` of a job, where it was set; undefined when the job is not enabled. */
function enabledNode(job: ConfigNode): ConfigNode | undefined {
  const enabled = job.kind === 'map' ? job.entries.get('enabled') : undefined;
  return enabled?.kind === 'scalar' && enabled.value === true ? enabled : undefined;
}

function checkJobsNeedingEncryption(
  jobs: MapNode | undefined,
  needing: readonly string[],
  names: readonly string[],
  problems: ProblemCollector,
): void {
  for (const [name, job] of jobs?.entries ?? []) {
    const enabled = enabledNode(job);
    if (enabled === undefined || !needing.includes(name)) continue;
    problems.at(
      enabled.at,
      joinPath(joinPath('jobs', name), 'enabled'),
      `${name} backs up credentials (kubeconfigs, tokens, password hashes), which are never stored in plaintext, ` +
        `and no storage.encryption is set in ${names.join(', ')}`,
      'configure storage.encryption.keyFile (or keyEnv) with a 32-byte key, e.g. `head -c 32 /dev/urandom > backup.key`; ' +
        'keep the key: it is needed to read the backups',
    );
  }
}

/** See {@link LoadConfigOptions.requireEnabledJob}. */
function checkSomeJobEnabled(
  root: MapNode | undefined,
  names: readonly string[],
  problems: ProblemCollector,
): void {
  const jobs = childMap(root, 'jobs');
  if ([...(jobs?.entries.values() ?? [])].some((job) => enabledNode(job) !== undefined)) return;
  const hint =
    'enable the jobs to run (jobs.<name>.enabled: true), or pass --allow-empty if an upgrade that does nothing is intended';
  if (names.length === 0) {
    problems.add(
      {
        file: '(no config file)',
        line: 0,
        path: 'jobs',
        message: 'no job is enabled (--no-defaults and no --config), so the upgrade would change nothing',
        hint: 'pass --config with the jobs to run (jobs.<name>.enabled: true), or --allow-empty if an upgrade that does nothing is intended',
      },
      0,
    );
    return;
  }
  const message = `no job is enabled in ${names.join(', ')}, so the upgrade would change nothing`;
  if (jobs !== undefined) problems.at(jobs.at, 'jobs', message, hint);
  else
    problems.add(
      { file: names[names.length - 1] ?? '', line: 0, path: 'jobs', message, hint },
      names.length - 1,
    );
}

// ---------------------------------------------------------------------------------------------
// The local backup directory, checked on this machine before anything is written there.

/** Kernel pseudo-filesystems: writes there fail or vanish, and some files there never end. */
const PSEUDO_FILESYSTEMS = ['/proc', '/sys'];

/** What is wrong with `dir` as the backup directory, or undefined. A missing directory is fine. */
async function storagePathProblem(dir: string): Promise<{ message: string; hint: string } | undefined> {
  // The deepest part of the path that exists decides: the rest is created on the first write.
  let existing = path.resolve(dir);
  let info: Stats;
  for (;;) {
    try {
      info = await stat(existing);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const parent = path.dirname(existing);
      if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== existing) {
        existing = parent;
        continue;
      }
      if (code === 'ELOOP') {
        return {
          message: `${dir} cannot be resolved: too many levels of symbolic links (a symlink loop)`,
          hint: 'fix or remove the symbolic links on the path, or use another directory',
        };
      }
      return {
        message: `${dir} cannot be checked: ${err instanceof Error ? err.message : String(err)}`,
        hint: 'give the path of a directory the user running ks-upgrade can reach',
      };
    }
  }
  const real = await realpath(existing);
  const pseudo = PSEUDO_FILESYSTEMS.find((root) => real === root || real.startsWith(`${root}/`));
  if (pseudo !== undefined) {
    return {
      message: `${dir} is under ${pseudo}, a kernel pseudo-filesystem where backups cannot be kept`,
      hint: 'use a directory on persistent storage, e.g. /var/lib/ks-upgrade',
    };
  }
  if (info.isDirectory()) return undefined;
  const what = info.isFile() ? 'a file' : fileKind(info);
  return {
    message:
      existing === path.resolve(dir)
        ? `${dir} is not a directory (it is ${what})`
        : `${dir} cannot be created: ${existing} is not a directory (it is ${what})`,
    hint: 'give the path of a directory for the backups (a missing one is created)',
  };
}

/** See {@link LoadConfigOptions.checkStoragePath}; only when the local backend is the one in use. */
async function checkStoragePath(
  root: MapNode,
  names: readonly string[],
  problems: ProblemCollector,
): Promise<void> {
  const storage = childMap(root, 'storage');
  if (!isUnset(storage?.entries.get('s3'))) return;
  const node = childMap(storage, 'local')?.entries.get('path');
  if (node !== undefined && !isUnset(node) && (node.kind !== 'scalar' || typeof node.value !== 'string'))
    return;
  const dir =
    node?.kind === 'scalar' && typeof node.value === 'string' ? node.value : CONFIG_DEFAULTS.localPath;
  if (dir === '') return; // reported by the schema
  const problem = await storagePathProblem(dir);
  if (problem === undefined) return;
  if (node !== undefined && !isUnset(node)) {
    problems.at(node.at, 'storage.local.path', problem.message, problem.hint);
    return;
  }
  const index = Math.max(names.length - 1, 0);
  problems.add(
    {
      file: names[index] ?? '(no config file)',
      line: 0,
      path: 'storage.local.path',
      message: `${problem.message} (the default: no config sets storage.local.path)`,
      hint: problem.hint,
    },
    index,
  );
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

/** `upgrade.helm` with its defaults (an absent section is the same as an empty one). */
export function buildHelmUpgrade(helm: Obj): HelmUpgradeConfig {
  const config: HelmUpgradeConfig = {
    values: (Array.isArray(helm.values) ? helm.values : []).filter((v): v is string => typeof v === 'string'),
    set: (withoutNulls(obj(helm.set) ?? {}) as Obj | undefined) ?? {},
    timeout: ms(helm.timeout) ?? CONFIG_DEFAULTS.helmTimeoutMs,
    plainHttp: bool(helm.plainHttp) ?? false,
  };
  for (const key of ['chart', 'repo', 'version', 'binary'] as const) {
    const value = nonEmpty(helm[key]);
    if (value !== undefined) config[key] = value;
  }
  return config;
}

function buildConfig(plain: unknown): UpgradeConfig {
  const root = obj(plain) ?? {};
  const validator = obj(root.validator) ?? {};
  const museum = obj(validator.extensionsMuseum) ?? {};
  const upgrade = obj(root.upgrade) ?? {};
  const helm = obj(upgrade.helm);
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
      gate: (str(upgrade.gate) as UpgradeConfig['upgrade']['gate'] | undefined) ?? CONFIG_DEFAULTS.gate,
      ...(helm ? { helm: buildHelmUpgrade(helm) } : {}),
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
