// `npm run demo -- stop` starts nothing, and stops what the demo started: its Temporal server, its
// two API servers, and the dev servers only when the demo brought them up. Each case uses a dev
// state dir of its own (KS_UPGRADE_DEV_STATE), so the test's own dev servers are never touched.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ensureEmbeddedServer, pinnedTemporalCliPath } from '../../src/temporal/dev-server.js';
import { allGone, isAlive, processesUsing } from '../helpers/cli.js';
import { repoRoot } from '../helpers/env.js';

const exec = promisify(execFile);

async function sh(
  script: string,
  args: string[],
  state: string,
): Promise<{ stdout: string; stderr: string }> {
  return exec('bash', [path.join(repoRoot, script), ...args], {
    cwd: repoRoot,
    env: { ...process.env, KS_UPGRADE_DEV_STATE: state, KS_DEV_CLUSTERS: 'host' },
    timeout: 300_000,
  });
}

describe('npm run demo -- stop', () => {
  const dirs: string[] = [];
  after(async () => {
    // Whatever a failing case left running in its state dir (down stops only recorded PIDs).
    for (const d of dirs) {
      await sh('deploy/dev/down', [], d).catch(() => undefined);
      for (const pid of await processesUsing(d)) process.kill(pid, 'SIGKILL');
      await rm(d, { recursive: true, force: true });
    }
  });
  const stateDir = async (): Promise<string> => {
    const d = await mkdtemp(path.join(tmpdir(), 'demo-stop-'));
    dirs.push(d);
    return d;
  };

  it('starts nothing on a machine where nothing runs', async () => {
    const state = await stateDir();
    const { stdout } = await sh('scripts/demo', ['stop'], state);
    assert.match(stdout, /demo stopped/);
    assert.deepEqual(await processesUsing(state), [], 'no process runs on the state dir');
    assert.ok(!existsSync(path.join(state, 'run')), 'no server was recorded as started');
    assert.ok(!existsSync(path.join(state, 'env')));
  });

  it("stops the demo's servers, and the dev servers only when the demo started them", async () => {
    const state = await stateDir();
    // What a demo run leaves behind: the dev servers, its two API servers, its Temporal server.
    await sh('deploy/dev/up', [], state);
    const devPids = (await readdir(path.join(state, 'run')))
      .filter((f) => f.endsWith('.pid'))
      .map((f) => Number(readFileSync(path.join(state, 'run', f), 'utf8')));
    assert.ok(devPids.length >= 4, `dev servers up: ${devPids.join(' ')}`);
    const demoPids: number[] = [];
    for (const c of ['ks-demo', 'ks-demo-member']) {
      await sh('deploy/dev/cluster', ['add', c], state);
      demoPids.push(Number(readFileSync(path.join(state, 'run', `apiserver-${c}.pid`), 'utf8')));
    }
    const lease = await ensureEmbeddedServer(path.join(state, 'demo/temporal'), pinnedTemporalCliPath());
    demoPids.push(lease.server.pid);

    // The dev servers were up before the demo (no marker): stop leaves them running.
    let r = await sh('scripts/demo', ['stop'], state);
    assert.match(r.stdout, /stopped the demo's Temporal server/);
    assert.match(r.stdout, /stopped the demo's API server ks-demo\b/);
    assert.ok(await allGone(demoPids), `demo servers still running: ${demoPids.join(' ')}`);
    for (const pid of devPids) assert.ok(await isAlive(pid), `dev server ${pid} was stopped`);

    // A demo that brought the dev servers up (its marker): stop takes them down too.
    await mkdir(path.join(state, 'demo'), { recursive: true });
    await writeFile(path.join(state, 'demo/started-dev-servers'), '');
    r = await sh('scripts/demo', ['stop'], state);
    assert.match(r.stdout, /stopped the dev servers the demo started/);
    assert.ok(await allGone(devPids), `dev servers still running: ${devPids.join(' ')}`);
    assert.deepEqual(await processesUsing(state), []);
    assert.ok(!existsSync(path.join(state, 'demo/started-dev-servers')));
  });
});
