// Without a Go toolchain: a `temporal` on PATH (brew, the official installer) runs the embedded
// default when the pinned build is not in the tool cache; with neither, the error names the three
// ways to get one. The CLI runs as users run it, with PATH and the tool cache of the test's own.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultTemporalCliPath, pinnedTemporalCliPath } from '../../src/temporal/dev-server.js';
import { repoRoot } from '../helpers/env.js';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/ks-upgrade.js'), ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the embedded default without a Go toolchain', () => {
  let dir: string;
  let emptyTools: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'temporal-path-'));
    emptyTools = path.join(dir, 'tools');
    await mkdir(emptyTools);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const baseEnv = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
    const { KS_UPGRADE_TEMPORAL_CLI: _cli, TEMPORAL_ADDRESS: _addr, ...env } = process.env;
    return { ...env, KS_UPGRADE_TOOLS_DIR: emptyTools, ...extra };
  };

  it('finds the pinned build first, then the first executable `temporal` on PATH', async () => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    await mkdir(a);
    await mkdir(b);
    // Not executable: skipped, as a shell would.
    await writeFile(path.join(a, 'temporal'), '#!/bin/sh\n');
    await writeFile(path.join(b, 'temporal'), '#!/bin/sh\n');
    await chmod(path.join(b, 'temporal'), 0o755);
    const env = { KS_UPGRADE_TOOLS_DIR: emptyTools, PATH: [a, b].join(path.delimiter) };
    assert.equal(defaultTemporalCliPath(env), path.join(b, 'temporal'));
    assert.equal(defaultTemporalCliPath({ ...env, PATH: a }), pinnedTemporalCliPath(env));
    assert.equal(defaultTemporalCliPath({ ...env, KS_UPGRADE_TEMPORAL_CLI: '/x/temporal' }), '/x/temporal');
    const pinned = pinnedTemporalCliPath(env);
    await mkdir(path.dirname(pinned), { recursive: true });
    await writeFile(pinned, '#!/bin/sh\n');
    await chmod(pinned, 0o755);
    assert.equal(defaultTemporalCliPath(env), pinned);
    await rm(path.dirname(pinned), { recursive: true });
  });

  it('runs the embedded server from the `temporal` on PATH, with no pinned build', async () => {
    const real = pinnedTemporalCliPath({ ...process.env, KS_UPGRADE_TOOLS_DIR: undefined });
    assert.ok(existsSync(real), `the tests need the pinned Temporal CLI (${real}): npm run dev:install`);
    const bin = path.join(dir, 'brew-bin');
    await mkdir(bin);
    await symlink(real, path.join(bin, 'temporal'));
    const stateDir = path.join(dir, 'state');
    const r = await cli(['status', 'no-such-cluster', '--state-dir', stateDir], baseEnv({ PATH: bin }));
    assert.match(r.stderr, /started the embedded Temporal dev server/, r.stderr);
    // It reached the server: the answer is about the (absent) upgrade, not about the CLI.
    assert.match(r.stderr, /no upgrade of cluster 'no-such-cluster'/, r.stderr);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(existsSync(path.join(stateDir, 'temporal.db')));
  });

  it('says the three ways to get a Temporal CLI when there is none', async () => {
    const r = await cli(
      ['status', 'no-such-cluster', '--state-dir', path.join(dir, 'state2')],
      baseEnv({ PATH: path.join(dir, 'nothing-here') }),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no Temporal CLI/);
    assert.match(r.stderr, /brew install temporal/);
    assert.match(r.stderr, /temporal\.download\/cli\.sh/);
    assert.match(r.stderr, /npm run dev:install/);
    assert.ok(!existsSync(path.join(dir, 'state2', 'temporal.db')));
  });
});
