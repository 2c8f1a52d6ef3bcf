// The bounds of the config loader (size, aliases, numbers, the length of the problem list), the
// storage backend chosen across files, the checks of the local backup directory, and the
// "no job enabled" refusal. The exact messages of single cases live in the bad-config corpus.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig, loadConfigFromText } from '../../src/config/index.js';
import { MAX_ALIAS_COPIES, MAX_CONFIG_BYTES } from '../../src/config/parse.js';
import { MAX_REPORTED_PROBLEMS } from '../../src/config/problems.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import type { JobFactory } from '../../src/jobs/types.js';
import { loadUpgradeConfig } from '../../src/upgrade/plan.js';
import { KNOWN_JOBS } from '../helpers/original-jobs.js';

const options = { knownJobs: KNOWN_JOBS };

function fromText(...texts: string[]) {
  return loadConfigFromText(
    texts.map((text, i) => ({ name: `file${i + 1}.yaml`, text })),
    options,
  );
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

async function asyncMessageOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ks-config-limits-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('config limits: size', () => {
  const sizeHint =
    'check that --config names the config file; split a generated config, or keep large values (extension configs) short';

  it('refuses a file above 1 MiB without parsing it, and reads one of exactly 1 MiB', async () => {
    const big = path.join(dir, 'big.yaml');
    await writeFile(big, `${'#'.repeat(MAX_CONFIG_BYTES)}\n`);
    assert.equal(
      await asyncMessageOf(loadConfig([big], options)),
      `${big}: the file has ${MAX_CONFIG_BYTES + 1} bytes, more than the 1048576 (1 MiB) a config may have; ${sizeHint}`,
    );
    const fits = path.join(dir, 'fits.yaml');
    await writeFile(fits, `${'#'.repeat(MAX_CONFIG_BYTES - 1)}\n`);
    assert.deepEqual((await loadConfig([fits], options)).config.jobs, {});
  });

  it('refuses a text source above 1 MiB', () => {
    assert.equal(
      messageOf(() => fromText(`#${'x'.repeat(MAX_CONFIG_BYTES)}`)),
      `file1.yaml: the file has ${MAX_CONFIG_BYTES + 1} bytes, more than the 1048576 (1 MiB) a config may have; ${sizeHint}`,
    );
  });

  it('refuses a named pipe without opening it (opening one would wait for a writer forever)', async () => {
    const fifo = path.join(dir, 'pipe.yaml');
    execFileSync('mkfifo', [fifo]);
    assert.equal(
      await asyncMessageOf(loadConfig([fifo], options)),
      `${fifo}: cannot read the file: it is not a regular file (a named pipe); pass the path of a YAML file`,
    );
  });
});

describe('config limits: aliases', () => {
  /** An anchored list of 99 values (100 nodes with the list) and `aliases` aliases of it. */
  function aliased(aliases: number): string {
    const values = Array.from({ length: 99 }, (_, i) => String(i)).join(', ');
    const uses = Array.from({ length: aliases }, (_, i) => `      u${i}: *big\n`).join('');
    return `jobs:\n  network:\n    dynamicOptions:\n      big: &big [${values}]\n${uses}`;
  }

  it(`allows aliases that copy up to ${MAX_ALIAS_COPIES} values, and refuses one more`, () => {
    assert.equal(MAX_ALIAS_COPIES % 100, 0);
    const within = fromText(aliased(MAX_ALIAS_COPIES / 100));
    assert.equal(Object.keys(within.config.jobs.network?.dynamicOptions ?? {}).length, 101);
    const line = 5 + MAX_ALIAS_COPIES / 100;
    assert.match(
      messageOf(() => fromText(aliased(MAX_ALIAS_COPIES / 100 + 1))),
      new RegExp(
        `^file1\\.yaml:${line}: jobs\\.network\\.dynamicOptions\\.u${MAX_ALIAS_COPIES / 100}: the alias \\*big brings`,
      ),
    );
  });

  it('keeps merge keys usable: every job reusing one block of settings', () => {
    const [first, ...rest] = KNOWN_JOBS;
    const jobs = rest.map((name) => `  ${name}:\n    <<: *defaults\n`).join('');
    const loaded = fromText(
      `jobs:\n  ${first}: &defaults\n    priority: 5\n    retry: {maximumAttempts: 2}\n${jobs}`,
    );
    assert.equal(Object.keys(loaded.config.jobs).length, KNOWN_JOBS.length);
    assert.ok(Object.values(loaded.config.jobs).every((j) => j.priority === 5));
  });

  it('refuses an alias bomb inside extension values (YAML text), at its line in the block', () => {
    const block = [
      '        a: &a [x, x, x, x, x, x, x, x, x, x]',
      '        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      '        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      '        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ].join('\n');
    const message = messageOf(() =>
      fromText(`jobs:\n  devops:\n    extensionRef:\n      version: 1.1.2\n      config: |\n${block}\n`),
    );
    assert.match(
      message,
      /^file1\.yaml:9: jobs\.devops\.extensionRef\.config: the YAML text is invalid: the alias \*c brings the values copied by aliases in this file to more than 10000/,
    );
  });
});

describe('config limits: numbers', () => {
  it('accepts ±(2^53-1) and refuses the next integer', () => {
    const ok = fromText(
      'jobs:\n  network:\n    dynamicOptions: {max: 9007199254740991, min: -9007199254740991}\n',
    );
    assert.equal(ok.config.jobs.network?.dynamicOptions.max, Number.MAX_SAFE_INTEGER);
    assert.match(
      messageOf(() => fromText('jobs:\n  network:\n    priority: -9007199254740992\n')),
      /^file1\.yaml:3: jobs\.network\.priority: -9007199254740992 is beyond ±9007199254740991/,
    );
  });
});

describe('config limits: the problem list', () => {
  const unknownKeys = (n: number, prefix = 'k') =>
    Array.from({ length: n }, (_, i) => `${prefix}${i}: 1\n`).join('');

  it(`shows the first ${MAX_REPORTED_PROBLEMS} problems in file order and counts the rest per file`, () => {
    const lines = messageOf(() => fromText(unknownKeys(60), unknownKeys(60, 'j'))).split('\n');
    assert.equal(lines.length, MAX_REPORTED_PROBLEMS + 1);
    assert.match(lines[0] ?? '', /^file1\.yaml:1: k0: unknown key/);
    assert.match(lines[MAX_REPORTED_PROBLEMS - 1] ?? '', /^file1\.yaml:50: k49: unknown key/);
    assert.equal(
      lines[MAX_REPORTED_PROBLEMS],
      '…and 70 more problems (file1.yaml: 10, file2.yaml: 60); fix the ones above, then run again to see the rest',
    );
  });

  it('counts problems beyond those it keeps, so a huge list costs a counter', () => {
    const lines = messageOf(() => fromText(unknownKeys(20_000))).split('\n');
    assert.equal(lines.length, MAX_REPORTED_PROBLEMS + 1);
    assert.equal(
      lines[MAX_REPORTED_PROBLEMS],
      'file1.yaml: …and 19950 more problems in this file; fix the ones above, then run again to see the rest',
    );
  });
});

describe('config: the storage backend across files', () => {
  it('a later file that sets s3 replaces an earlier local path (the built-in defaults set one)', () => {
    const loaded = fromText(
      'storage:\n  local:\n    path: /tmp/ks-upgrade\n',
      'storage:\n  s3:\n    bucket: b\n',
    );
    assert.equal(loaded.config.storage.s3?.bucket, 'b');
  });

  it('a later file that sets local replaces an earlier bucket', () => {
    const loaded = fromText(
      'storage:\n  s3:\n    bucket: b\n',
      'storage:\n  local:\n    path: /srv/backups\n',
    );
    assert.equal(loaded.config.storage.s3, undefined);
    assert.equal(loaded.config.storage.local.path, '/srv/backups');
  });
});

describe('config: the local backup directory', () => {
  it('accepts a directory that does not exist yet, and skips the check for S3 or when told to', async () => {
    const file = path.join(dir, 'missing-dir.yaml');
    await writeFile(file, `storage:\n  local:\n    path: ${dir}/not/yet\n`);
    assert.equal((await loadConfig([file], options)).config.storage.local.path, `${dir}/not/yet`);
    const s3 = path.join(dir, 's3.yaml');
    await writeFile(s3, 'storage:\n  local:\n    path: /proc/self\n');
    await writeFile(path.join(dir, 's3-2.yaml'), 'storage:\n  s3:\n    bucket: b\n');
    await loadConfig([s3, path.join(dir, 's3-2.yaml')], options);
    await loadConfig([s3], { ...options, checkStoragePath: false });
  });

  it('refuses a path below a file, naming the file that is in the way', async () => {
    const blocker = path.join(dir, 'blocker');
    await writeFile(blocker, '');
    const file = path.join(dir, 'below-file.yaml');
    await writeFile(file, `storage:\n  local:\n    path: ${blocker}/backups\n`);
    assert.equal(
      await asyncMessageOf(loadConfig([file], options)),
      `${file}:3: storage.local.path: ${blocker}/backups cannot be created: ${blocker} is not a directory (it is a file); ` +
        'give the path of a directory for the backups (a missing one is created)',
    );
  });
});

describe('config: a config that enables no job', () => {
  const hint =
    'enable the jobs to run (jobs.<name>.enabled: true), or pass --allow-empty if an upgrade that does nothing is intended';

  it('is refused naming the files when asked, and only then', async () => {
    const file = path.join(dir, 'none.yaml');
    await writeFile(file, 'storage:\n  local:\n    path: /var/tmp/ks\n');
    assert.equal(
      await asyncMessageOf(loadConfig([file], { ...options, requireEnabledJob: true })),
      `${file}: jobs: no job is enabled in ${file}, so the upgrade would change nothing; ${hint}`,
    );
    assert.deepEqual((await loadConfig([file], options)).config.jobs, {});
    assert.equal(
      await asyncMessageOf(loadConfig([], { ...options, requireEnabledJob: true })),
      '(no config file): jobs: no job is enabled (--no-defaults and no --config), so the upgrade would change nothing; ' +
        'pass --config with the jobs to run (jobs.<name>.enabled: true), or --allow-empty if an upgrade that does nothing is intended',
    );
  });

  it('loadUpgradeConfig refuses it unless allowEmpty, and the encryption error names the files', async () => {
    const registry = new JobRegistry();
    const job = (name: string, requiresEncryption = false): JobFactory => ({
      name,
      ...(requiresEncryption ? { requiresEncryption } : {}),
      create: () => ({ preUpgrade: async () => {}, postUpgrade: async () => {} }),
    });
    registry.register(job('network'));
    registry.register(job('core', true));
    const file = path.join(dir, 'upgrade.yaml');
    await writeFile(
      file,
      `storage:\n  local:\n    path: ${dir}/store\njobs:\n  network:\n    enabled: false\n`,
    );
    const input = { configFiles: [file], useDefaults: false };
    assert.match(await asyncMessageOf(loadUpgradeConfig(input, registry)), /jobs: no job is enabled in /);
    assert.deepEqual(
      Object.values((await loadUpgradeConfig({ ...input, allowEmpty: true }, registry)).config.jobs).filter(
        (j) => j.enabled,
      ),
      [],
    );
    const patch = path.join(dir, 'patch.yaml');
    await writeFile(patch, 'jobs:\n  core:\n    enabled: true\n');
    assert.match(
      await asyncMessageOf(loadUpgradeConfig({ ...input, configFiles: [file, patch] }, registry)),
      new RegExp(
        `^${patch}:3: jobs\\.core\\.enabled: core backs up credentials .* no storage\\.encryption is set in ${file}, ${patch};`,
      ),
    );
  });
});
