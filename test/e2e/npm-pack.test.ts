// The npm package: `npm pack` (its `prepare` builds dist/ and the workflow bundle) gives a tarball
// that installs into an empty directory and runs the compiled CLI — no sources, no tsx, no dev
// dependencies. The pack runs on a copy of the checkout, so this worktree's dist/ is not rebuilt
// under other tests. npm installs with --prefer-offline: its cache already holds the dependencies.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers/env.js';

const exec = promisify(execFile);
const TEN_MINUTES = 600_000;

describe('npm pack', () => {
  let dir: string;
  let tarball: string;
  let installed: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'npm-pack-'));
    const copy = path.join(dir, 'checkout');
    const { stdout } = await exec('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
      cwd: repoRoot,
      maxBuffer: 64 * 1024 * 1024,
    });
    for (const rel of stdout.split('\0').filter(Boolean)) {
      if (!existsSync(path.join(repoRoot, rel))) continue; // deleted, not yet committed
      await mkdir(path.dirname(path.join(copy, rel)), { recursive: true });
      await copyFile(path.join(repoRoot, rel), path.join(copy, rel));
    }
    await symlink(path.join(repoRoot, 'node_modules'), path.join(copy, 'node_modules'));
    const packed = await exec('npm', ['pack', '--silent', '--pack-destination', dir], {
      cwd: copy,
      timeout: TEN_MINUTES,
      maxBuffer: 64 * 1024 * 1024,
    });
    tarball = path.join(dir, packed.stdout.trim().split('\n').pop() ?? '');
    installed = path.join(dir, 'install');
    await mkdir(installed);
    await writeFile(path.join(installed, 'package.json'), '{"name":"pack-test","private":true}\n');
    await exec(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball],
      { cwd: installed, timeout: TEN_MINUTES, maxBuffer: 64 * 1024 * 1024 },
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const ksUpgrade = (args: string[]): Promise<{ stdout: string; stderr: string }> =>
    exec(path.join(installed, 'node_modules/.bin/ks-upgrade'), args, {
      cwd: installed,
      timeout: 120_000,
      env: { ...process.env, KS_UPGRADE_PLUGINS: '' },
    });

  it('ships the compiled code and the workflow bundle, not the sources', async () => {
    const { stdout } = await exec('tar', ['tzf', tarball], { maxBuffer: 16 * 1024 * 1024 });
    const files = stdout.split('\n').filter(Boolean);
    for (const f of [
      'package/bin/ks-upgrade.js',
      'package/dist/src/cli/main.js',
      'package/dist/workflow-bundle.js',
      'package/config.yaml',
    ]) {
      assert.ok(files.includes(f), `${f} is in the tarball`);
    }
    assert.deepEqual(
      files.filter((f) => /^package\/(src|test|scripts|deploy|docs|workflows|activities)\//.test(f)),
      [],
    );
    const pkg = path.join(installed, 'node_modules/ks-upgrade');
    assert.ok(!existsSync(path.join(pkg, 'src')));
    assert.ok(!existsSync(path.join(installed, 'node_modules/tsx')), 'no dev dependencies');
    assert.ok((await readdir(path.join(pkg, 'dist'))).includes('workflow-bundle.js'));
  });

  it('runs `ks-upgrade version` and `ks-upgrade plan --offline`', async () => {
    const v = await ksUpgrade(['version']);
    assert.match(v.stdout, /^ks-upgrade 0\.1\.0 \(node v\d+/);
    const keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    const config = path.join(dir, 'config.yaml');
    await writeFile(
      config,
      `storage:\n  local:\n    path: ${path.join(dir, 'backups')}\n  encryption:\n    keyFile: ${keyFile}\n`,
    );
    const plan = await ksUpgrade(['plan', '--offline', '--config', config]);
    assert.match(plan.stdout, /\bcore\b/);
    assert.match(plan.stdout, /\biam\b/);
  });

  it('gives the worker the pre-built workflow bundle', async () => {
    const bundle = path.join(installed, 'node_modules/ks-upgrade/dist/src/temporal/bundle.js');
    const { stdout } = await exec(process.execPath, [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(bundle)}); console.log(JSON.stringify(await m.workflowBundle()));`,
    ]);
    assert.deepEqual(JSON.parse(stdout), {
      codePath: path.join(installed, 'node_modules/ks-upgrade/dist/workflow-bundle.js'),
    });
  });
});
