// Abort, cancel and rollback of upgradeCluster, fast: which jobs are rolled back (every job touched,
// newest first), a failed rollback going to the operator, and the aborted attempt's backups moved
// aside afterwards. Real workflow code, fake activities, time-skipping server.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { progressQuery, resolveUpdate } from '../../workflows/messages.js';
import { UpgradePhaseKey, UpgradeStatusKey } from '../../workflows/search-attributes.js';
import {
  FakeCluster,
  awaiting,
  failureOf,
  useHarness,
  waitFor,
  type UpgradeHandle,
  type WorkflowHarness,
} from './harness.js';

interface AbortDetails {
  decision: { action: string; by: string; reason: string };
  rollback: { job: string; state: string; error?: string }[];
  notRestored: { job: string; error: string; by: string; reason: string }[];
  backups?: { folder: string; moved: number };
}

async function decide(
  handle: UpgradeHandle,
  action: 'retry' | 'skip' | 'abort',
  reason = 'test',
): Promise<void> {
  await handle.executeUpdate(resolveUpdate, { args: [{ action, reason, by: 'op' }] });
}

describe('upgradeCluster: abort, cancel and rollback (time-skipping server, fake activities)', () => {
  const harness = useHarness();
  let h: WorkflowHarness;
  beforeEach(() => {
    h = harness();
  });

  it('abort: every touched job that has a rollback, newest first; then the attempt is filed away', async () => {
    const c = new FakeCluster([
      { name: 'alpha', phases: ['prepare-upgrade', 'pre-upgrade', 'post-upgrade', 'rollback'] },
      { name: 'beta', phases: ['pre-upgrade', 'post-upgrade'] }, // no rollback
      { name: 'gamma', phases: ['prepare-upgrade', 'pre-upgrade', 'post-upgrade', 'rollback'] },
      { name: 'delta', phases: ['post-upgrade', 'rollback'] }, // never reached
    ]);
    c.failing.set('pre-upgrade gamma', { message: 'boom' });
    const handle = await h.start(c);
    await waitFor(handle, awaiting, 'gamma pre-upgrade to fail');
    await decide(handle, 'abort', 'change window over');
    const f = await failureOf(handle);
    assert.equal(f.type, 'UpgradeAborted');
    assert.match(f.message, /upgrade of cluster .* aborted by op: change window over/);
    assert.deepEqual(c.callsOf('rollback'), ['rollback gamma', 'rollback alpha']);
    assert.equal(c.calls.at(-1), 'archive', 'the backups move aside after the rollback');
    const [req] = c.archiveRequests;
    assert.deepEqual(req?.jobs, ['alpha', 'gamma', 'beta'], 'every touched job (in order of first start)');
    const info = await handle.describe();
    assert.equal(req.runId, info.runId);
    const details = f.details[0] as AbortDetails;
    assert.deepEqual(details.rollback, [
      { job: 'gamma', state: 'rolled-back' },
      { job: 'alpha', state: 'rolled-back' },
    ]);
    assert.deepEqual(details.notRestored, []);
    assert.deepEqual(details.backups, { folder: `${c.name}/_attempts/aborted-x/`, moved: 3 });
    const p = await handle.query(progressQuery);
    assert.equal(p.status, 'Aborted');
    assert.deepEqual((await handle.describe()).typedSearchAttributes.get(UpgradeStatusKey), 'Aborted');
    assert.equal(req.abortedAt, p.decisions[0]?.at, 'the folder is named after the abort');
  });

  it('cancel during a job’s first step: that job is rolled back too, and the step shows cancelled', async () => {
    const c = new FakeCluster();
    c.blocking.add('prepare-upgrade beta');
    const handle = await h.start(c);
    await waitFor(handle, (p) => p.job === 'beta', 'beta prepare-upgrade to start');
    await new Promise((r) => setTimeout(r, 200));
    await handle.cancel();
    const f = await failureOf(handle);
    assert.equal(f.name, 'CancelledFailure');
    assert.deepEqual(
      c.calls.slice(c.calls.indexOf('prepare-upgrade beta')),
      [
        'prepare-upgrade beta',
        'prepare-upgrade beta cancelled',
        'rollback beta',
        'rollback alpha',
        'archive',
      ],
      'the rollback starts once the cancelled step has stopped',
    );
    assert.equal(c.calls.at(-1), 'archive');
    const p = await handle.query(progressQuery);
    assert.equal(p.status, 'Aborted');
    assert.equal(p.steps.find((s) => s.phase === 'prepare-upgrade' && s.job === 'beta')?.state, 'cancelled');
    assert.deepEqual(p.touched, ['alpha', 'beta']);
    assert.deepEqual(p.rollback?.notRestored, []);
  });

  for (const operatorTimeout of [undefined, '1h']) {
    it(`cancel while waiting for the operator: rollback, then cancelled (operatorTimeout ${operatorTimeout ?? 'none'})`, async () => {
      const c = new FakeCluster();
      c.failing.set('prepare-upgrade alpha', { message: 'boom' });
      const handle = await h.start(
        c,
        operatorTimeout ? { tuning: { heartbeatTimeout: '2s', operatorTimeout } } : {},
      );
      await waitFor(handle, awaiting, 'alpha to fail');
      await handle.cancel();
      assert.equal((await failureOf(handle)).name, 'CancelledFailure');
      assert.deepEqual(c.callsOf('rollback'), ['rollback alpha']);
      // The wait's timers end with it: no decision, not even the timeout's.
      assert.deepEqual((await handle.query(progressQuery)).decisions, []);
    });
  }

  it('skip then abort: the skipped job was touched and is rolled back', async () => {
    const c = new FakeCluster();
    c.failing.set('prepare-upgrade alpha', { message: 'first' });
    c.failing.set('prepare-upgrade beta', { message: 'second' });
    const handle = await h.start(c);
    await waitFor(handle, (p) => awaiting(p) && p.awaiting?.job === 'alpha', 'alpha to fail');
    await decide(handle, 'skip');
    await waitFor(handle, (p) => awaiting(p) && p.awaiting?.job === 'beta', 'beta to fail');
    await decide(handle, 'abort');
    await failureOf(handle);
    assert.deepEqual(c.callsOf('rollback'), ['rollback beta', 'rollback alpha']);
  });

  it('failurePolicy abort: no operator; the failed job and those before it are rolled back', async () => {
    const c = new FakeCluster();
    c.failing.set('pre-upgrade beta', { message: 'boom' });
    const handle = await h.start(c, { failurePolicy: 'abort' });
    const f = await failureOf(handle);
    assert.equal(f.type, 'UpgradeAborted');
    assert.match(f.message, /aborted by failurePolicy: failurePolicy is abort/);
    assert.deepEqual(c.callsOf('rollback'), ['rollback gamma', 'rollback beta', 'rollback alpha']);
    const p = await handle.query(progressQuery);
    assert.ok(!p.decisions.some((d) => d.by !== 'failurePolicy'));
    assert.equal(c.callsOf('archive').length, 1);
  });

  it('a failed rollback goes to the operator: retry, then skip; the result lists what was not restored', async () => {
    const c = new FakeCluster();
    c.failing.set('post-upgrade alpha', { message: 'boom' });
    c.failing.set('rollback gamma', { message: 'webhook gone', hint: 'recreate the webhook first' });
    const handle = await h.start(c);
    await waitFor(handle, awaiting, 'alpha post-upgrade to fail');
    await decide(handle, 'abort', 'give up');
    let p = await waitFor(
      handle,
      (x) => awaiting(x) && x.awaiting?.phase === 'rollback',
      'gamma rollback to fail',
    );
    assert.equal(p.status, 'AwaitingOperator');
    assert.deepEqual(
      { ...p.awaiting, since: undefined },
      {
        phase: 'rollback',
        job: 'gamma',
        error: 'webhook gone',
        hint: 'recreate the webhook first',
        since: undefined,
        allowed: ['retry', 'skip'],
      },
    );
    assert.deepEqual((await handle.describe()).typedSearchAttributes.get(UpgradePhaseKey), 'rollback');
    assert.deepEqual(c.callsOf('rollback'), ['rollback gamma', 'rollback gamma'], 'its retry policy first');
    await decide(handle, 'retry', 'try again');
    await waitFor(
      handle,
      (x) => awaiting(x) && x.decisions.length === 2 && x.awaiting?.phase === 'rollback',
      'the rollback to fail again',
    );
    await decide(handle, 'skip', 'restore by hand');
    const f = await failureOf(handle);
    assert.equal(f.type, 'UpgradeAborted');
    assert.match(f.message, /not restored: gamma \(webhook gone\)/);
    const details = f.details[0] as AbortDetails;
    assert.deepEqual(details.notRestored, [
      { job: 'gamma', error: 'webhook gone', by: 'op', reason: 'restore by hand' },
    ]);
    assert.deepEqual(details.rollback, [
      { job: 'gamma', state: 'rollback-failed', error: 'webhook gone' },
      { job: 'beta', state: 'rolled-back' },
      { job: 'alpha', state: 'rolled-back' },
    ]);
    assert.deepEqual(c.callsOf('rollback'), [
      'rollback gamma',
      'rollback gamma',
      'rollback gamma',
      'rollback gamma',
      'rollback beta',
      'rollback alpha',
    ]);
    p = await handle.query(progressQuery);
    assert.deepEqual(
      p.decisions.map((d) => [d.action, d.phase, d.job]),
      [
        ['abort', 'post-upgrade', 'alpha'],
        ['retry', 'rollback', 'gamma'],
        ['skip', 'rollback', 'gamma'],
      ],
    );
    assert.equal(c.callsOf('archive').length, 1, 'filed away after the rollback, whatever its outcome');
  });

  it('a failed rollback that is fixed: retry restores it', async () => {
    const c = new FakeCluster();
    c.failing.set('pre-upgrade alpha', { message: 'boom' });
    c.failing.set('rollback alpha', { message: 'api down' });
    const handle = await h.start(c);
    await waitFor(handle, awaiting, 'alpha to fail');
    await decide(handle, 'abort');
    await waitFor(handle, (x) => x.awaiting?.phase === 'rollback', 'the rollback to fail');
    c.failing.delete('rollback alpha');
    await decide(handle, 'retry');
    const details = (await failureOf(handle)).details[0] as AbortDetails;
    assert.deepEqual(details.notRestored, []);
    assert.deepEqual(details.rollback, [
      { job: 'gamma', state: 'rolled-back' },
      { job: 'beta', state: 'rolled-back' },
      { job: 'alpha', state: 'rolled-back' },
    ]);
  });

  it('no decision on a failed rollback within operatorTimeout: skipped, listed as not restored', async () => {
    const c = new FakeCluster();
    c.failing.set('prepare-upgrade beta', { message: 'boom' });
    c.failing.set('rollback beta', { message: 'api down' });
    const handle = await h.start(c, { tuning: { operatorTimeout: '30m' } });
    const f = await failureOf(handle);
    assert.equal(f.type, 'UpgradeAborted');
    const details = f.details[0] as AbortDetails;
    assert.deepEqual(details.notRestored, [
      { job: 'beta', error: 'api down', by: 'operatorTimeout', reason: 'no operator decision within 30m' },
    ]);
    assert.deepEqual(c.callsOf('rollback'), ['rollback beta', 'rollback beta', 'rollback alpha']);
  });

  it('failurePolicy abort and a failed rollback: skipped by the policy, listed as not restored', async () => {
    const c = new FakeCluster();
    c.failing.set('prepare-upgrade beta', { message: 'boom' });
    c.failing.set('rollback alpha', { message: 'api down' });
    const handle = await h.start(c, { failurePolicy: 'abort' });
    const details = (await failureOf(handle)).details[0] as AbortDetails;
    assert.deepEqual(details.notRestored, [
      { job: 'alpha', error: 'api down', by: 'failurePolicy', reason: 'failurePolicy is abort' },
    ]);
  });

  it('moving the backups aside fails: the operator may retry it', async () => {
    const c = new FakeCluster();
    c.failing.set('prepare-upgrade alpha', { message: 'boom' });
    c.archiveFailure = { message: 'bucket unreachable', hint: 'check the S3 endpoint' };
    const handle = await h.start(c);
    await waitFor(handle, awaiting, 'alpha to fail');
    await decide(handle, 'abort');
    const p = await waitFor(
      handle,
      (x) => awaiting(x) && x.awaiting?.phase === 'rollback',
      'the archive to fail',
    );
    assert.equal(p.awaiting?.phase, 'rollback');
    assert.equal(p.awaiting.job, undefined);
    assert.deepEqual(p.awaiting.allowed, ['retry', 'skip']);
    assert.match(p.awaiting.error, /moving the backups of this attempt aside failed: bucket unreachable/);
    c.archiveFailure = undefined;
    await decide(handle, 'retry');
    const details = (await failureOf(handle)).details[0] as AbortDetails;
    assert.equal(details.backups?.moved, 1);
    // Three attempts under the control retry policy, then the one the operator asked for.
    assert.equal(c.callsOf('archive').length, 4);
  });

  it('gate helm: ks-core is rolled back first; its failed rollback goes to the operator; its records move too', async () => {
    const c = new FakeCluster();
    c.failing.set('post-upgrade beta', { message: 'boom' });
    c.coreRollbackFailure = { message: 'helm: release locked', hint: 'helm rollback by hand' };
    const handle = await h.start(c, { gate: 'helm' });
    await waitFor(handle, awaiting, 'beta post-upgrade to fail');
    assert.deepEqual(c.callsOf('crds'), ['crds'], 'the v4 CRDs before pre-upgrade');
    assert.ok(c.calls.indexOf('crds') < c.calls.indexOf('pre-upgrade alpha'));
    assert.deepEqual(c.callsOf('helm'), ['helm upgrade 1']);
    await decide(handle, 'abort');
    const p = await waitFor(
      handle,
      (x) => awaiting(x) && x.awaiting?.phase === 'rollback',
      'the core rollback to fail',
    );
    assert.equal(p.awaiting?.job, 'ks-core');
    assert.deepEqual(p.awaiting.allowed, ['retry', 'skip']);
    assert.deepEqual(c.callsOf('rollback'), [], 'ks-core first, before any job');
    c.coreRollbackFailure = undefined;
    await decide(handle, 'retry');
    const details = (await failureOf(handle)).details[0] as AbortDetails;
    assert.deepEqual(
      details.rollback.map((r) => [r.job, r.state]),
      [
        ['ks-core', 'rolled-back'],
        ['gamma', 'rolled-back'],
        ['beta', 'rolled-back'],
        ['alpha', 'rolled-back'],
      ],
    );
    assert.deepEqual(details.notRestored, []);
    assert.deepEqual(c.archiveRequests[0]?.jobs, ['alpha', 'beta', 'gamma', 'ks-core']);
  });

  it('abort at the plan: nothing was touched, nothing rolled back or moved', async () => {
    const c = new FakeCluster();
    c.planFailure = { message: 'bad config' };
    const handle = await h.start(c);
    await waitFor(handle, awaiting, 'the plan failure');
    await decide(handle, 'abort');
    const f = await failureOf(handle);
    assert.equal(f.type, 'UpgradeAborted');
    assert.deepEqual(c.callsOf('rollback'), []);
    assert.deepEqual(c.callsOf('archive'), []);
  });
});
