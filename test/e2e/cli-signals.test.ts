// `ks-upgrade run` on the embedded default (a local Temporal dev server and an in-process worker)
// stopped by a signal while it waits for an operator: it exits with 128+signal, leaves no
// process behind (every process it started is counted before and after), and the upgrade stays
// in the server's SQLite file, resumable. Also: resolve and gate on an upgrade that has finished.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigMapResource } from '../../src/api/core.js';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { allGone, cli, demoRunArgs, descendantsOf, processesUsing, spawnCli } from '../helpers/cli.js';
import { devClusterConnection } from '../helpers/kube.js';
import { FAST_RETRY, demoSetup, type DemoSetup } from '../helpers/upgrade.js';

/** The CLI's error line (other lines report the embedded server). */
function errorLine(stderr: string): string | undefined {
  return stderr.split('\n').find((l) => l.startsWith('ks-upgrade: '));
}

describe('ks-upgrade run: signals on the embedded default', () => {
  let conn: ClusterConnection;
  const argsFor = (s: DemoSetup, stateDir: string) => [...demoRunArgs(s), '--state-dir', stateDir];

  before(async () => {
    conn = await devClusterConnection();
  });
  after(() => {
    conn.close();
  });

  /**
   * Starts `run` on an upgrade whose post-upgrade of gamma fails, and waits until it asks for a
   * decision. Returns the CLI, its state dir and the processes it started (the embedded server
   * among them), counted while it waits.
   */
  async function runUntilDecision() {
    const s = await demoSetup(conn.client, { jobSettings: FAST_RETRY });
    await conn.client.create(ConfigMapResource, {
      metadata: { name: 'fail-gamma-post-upgrade', namespace: s.namespace },
    });
    const stateDir = await mkdtemp(path.join(tmpdir(), 'ks-signals-'));
    assert.deepEqual(await processesUsing(stateDir), [], 'no process uses the state dir before');
    const run = spawnCli(['run', ...argsFor(s, stateDir)]);
    await run.waitFor(/waits for a decision/);
    const started = await descendantsOf(run.pid);
    const servers = await processesUsing(path.join(stateDir, 'temporal.db'));
    assert.equal(servers.length, 1, 'one embedded Temporal server');
    assert.ok(started.includes(servers[0] ?? -1), 'the embedded server is a process run started');
    return { s, stateDir, run, started };
  }

  /** Nothing run started is alive, nothing uses the state dir, and the server record is gone. */
  async function assertNothingLeft(stateDir: string, pids: number[]): Promise<void> {
    assert.ok(await allGone(pids), `processes left running: ${pids.join(', ')}`);
    assert.deepEqual(await processesUsing(stateDir), [], 'no process uses the state dir after');
    assert.ok(!existsSync(path.join(stateDir, 'server.json')), 'the server record is removed');
  }

  /** The upgrade is still there, waiting for the decision, after the run that followed it ended. */
  async function assertStillWaiting(s: DemoSetup, stateDir: string): Promise<void> {
    const status = await cli(['status', s.cluster, '--state-dir', stateDir]);
    assert.equal(status.code, 3, `status: AwaitingOperator (exit 3)\n${status.stdout}${status.stderr}`);
    assert.match(status.stdout, /AwaitingOperator \(post-upgrade \/ gamma\)/);
    assert.match(
      status.stdout,
      /from the workflow's search attributes; the steps need the progress query, and no worker is running/,
    );
    assert.match(
      status.stdout,
      /embedded Temporal server: not running before this command \(stopped when the last command using it ended\); started for this command and stopped after it/,
    );
    assert.match(status.stdout, /no worker runs this upgrade: it continues when `ks-upgrade run` resumes it/);
    assert.deepEqual(await processesUsing(stateDir), [], 'status stopped the server it started');
  }

  it('SIGTERM while waiting for a decision: exit 143, no process left, the upgrade waits', async () => {
    const { s, stateDir, run, started } = await runUntilDecision();
    run.child.kill('SIGTERM');
    const r = await run.exited;
    assert.equal(r.code, 143, `exit code\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /interrupted \(SIGTERM\): stopped following the upgrade of cluster demo-/);
    assert.match(r.stderr, /`ks-upgrade run` with the same options again resumes it/);
    await assertNothingLeft(stateDir, [run.pid, ...started]);
    await assertStillWaiting(s, stateDir);
    // A decision needs a worker to accept it; between two runs there is none: said, not waited for.
    const resolve = await cli(['resolve', s.cluster, 'skip', '--reason', 'r', '--state-dir', stateDir]);
    assert.equal(resolve.code, 2, resolve.stderr);
    assert.equal(
      errorLine(resolve.stderr),
      `ks-upgrade: no worker runs the upgrade of cluster ${s.cluster}: on the embedded Temporal server it runs ` +
        'inside `ks-upgrade run`, and none is running (fix: start `ks-upgrade run` with the options of the ' +
        'upgrade: it resumes it and shows what it waits for)',
    );
    // The next run resumes the same upgrade where it waits.
    const resumed = spawnCli(['run', ...argsFor(s, stateDir)]);
    await resumed.waitFor(new RegExp(`resuming the upgrade of cluster ${s.cluster}`));
    await resumed.waitFor(/waits for a decision/);
    resumed.child.kill('SIGTERM');
    assert.equal((await resumed.exited).code, 143);
    assert.deepEqual(await processesUsing(stateDir), [], 'no process uses the state dir after');
  });

  it('SIGINT while waiting for a decision: exit 130 without a crash, no process left', async () => {
    const { s, stateDir, run, started } = await runUntilDecision();
    run.child.kill('SIGINT');
    const r = await run.exited;
    assert.equal(r.code, 130, `exit code\n${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /Channel has been shut down|Error:|at .*\.js:\d+/);
    assert.match(r.stderr, /interrupted \(SIGINT\)/);
    await assertNothingLeft(stateDir, [run.pid, ...started]);
    await assertStillWaiting(s, stateDir);
  });

  it('a second SIGTERM while stopping: exit 143 at once, the embedded server stopped too', async () => {
    const { s, stateDir, run, started } = await runUntilDecision();
    run.child.kill('SIGTERM');
    await run.waitFor(/interrupted \(SIGTERM\)/, 30_000);
    run.child.kill('SIGTERM');
    const r = await run.exited;
    assert.equal(r.code, 143, `exit code\n${r.stdout}\n${r.stderr}`);
    await assertNothingLeft(stateDir, [run.pid, ...started]);
    await assertStillWaiting(s, stateDir);
  });

  it('resolve and gate on a finished upgrade say it has finished', async () => {
    const s = await demoSetup(conn.client);
    const stateDir = await mkdtemp(path.join(tmpdir(), 'ks-finished-'));
    const done = await cli(['run', ...argsFor(s, stateDir)]);
    assert.equal(done.code, 0, done.stderr + done.stdout);
    const resolve = await cli(['resolve', s.cluster, 'skip', '--reason', 'late', '--state-dir', stateDir]);
    assert.equal(resolve.code, 2, resolve.stderr);
    assert.equal(
      errorLine(resolve.stderr),
      `ks-upgrade: the upgrade of cluster ${s.cluster} has already finished: it succeeded; there is no decision to make ` +
        `(fix: see 'ks-upgrade status ${s.cluster}'; 'ks-upgrade run --rerun' starts it again)`,
    );
    const gate = await cli(['gate', s.cluster, '--state-dir', stateDir]);
    assert.equal(gate.code, 2, gate.stderr);
    assert.equal(
      errorLine(gate.stderr),
      `ks-upgrade: the upgrade of cluster ${s.cluster} has already finished: it succeeded; there is no gate to open ` +
        `(fix: see 'ks-upgrade status ${s.cluster}'; 'ks-upgrade run --rerun' starts it again)`,
    );
    assert.deepEqual(await processesUsing(stateDir), [], 'no process uses the state dir after');
  });
});
