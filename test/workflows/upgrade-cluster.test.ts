// Every forward path of upgradeCluster, fast: the real workflow code on the time-skipping test
// server with fake activities (test/workflows/harness.ts). Operator waits, gates and timeouts of
// hours take milliseconds; the rollback paths are in rollback.test.ts.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { WorkflowUpdateFailedError } from '@temporalio/client';
import { coreUpgradedSignal, progressQuery, resolveSignal, resolveUpdate } from '../../workflows/messages.js';
import { MAX_INPUT_DEPTH } from '../../workflows/pure/input.js';
import { UpgradeClusterKey, UpgradeStatusKey } from '../../workflows/search-attributes.js';
import {
  FakeCluster,
  awaiting,
  failureOf,
  useHarness,
  waitFor,
  type UpgradeHandle,
  type WorkflowHarness,
} from './harness.js';

const ALL_STEPS = (phases: string[], jobs = ['alpha', 'beta', 'gamma']): string[] =>
  phases.flatMap((p) => [`check ${p}`, ...jobs.map((j) => `${p} ${j}`)]);

/** JSON text of an object `depth` levels deep: {"x":{"x":{…}}} (too deep for JSON.stringify). */
function nestedJson(depth: number): string {
  return `${'{"x":'.repeat(depth - 1)}{}${'}'.repeat(depth - 1)}`;
}

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause;
    return `${err instanceof Error ? err.message : String(err)} ${cause?.message ?? ''}`;
  }
  throw new Error('expected a rejection');
}

describe('upgradeCluster: forward paths (time-skipping server, fake activities)', () => {
  const harness = useHarness();
  let h: WorkflowHarness;
  beforeEach(() => {
    h = harness();
  });

  it('runs every job of every phase in order and succeeds', async () => {
    const c = new FakeCluster();
    const handle = await h.start(c);
    const result = await handle.result();
    assert.equal(result.status, 'Succeeded');
    assert.deepEqual(c.calls, ['plan', ...ALL_STEPS(['prepare-upgrade', 'pre-upgrade', 'post-upgrade'])]);
    assert.deepEqual(
      result.steps.map((s) => `${s.phase} ${s.job} ${s.state}`),
      ALL_STEPS(['prepare-upgrade', 'pre-upgrade', 'post-upgrade'])
        .filter((s) => !s.startsWith('check'))
        .map((s) => `${s} succeeded`),
    );
    const p = await handle.query(progressQuery);
    assert.deepEqual(
      p.phases.map((x) => `${x.phase} ${x.state}`),
      ['prepare-upgrade done', 'pre-upgrade done', 'post-upgrade done'],
    );
    assert.deepEqual(p.touched, ['alpha', 'beta', 'gamma']);
    const sa = (await handle.describe()).typedSearchAttributes;
    assert.deepEqual(sa.get(UpgradeStatusKey), 'Succeeded');
    assert.deepEqual(sa.get(UpgradeClusterKey), c.name);
  });

  it('dry run: plans and changes nothing', async () => {
    const c = new FakeCluster();
    const result = await (await h.start(c, { dryRun: true })).result();
    assert.equal(result.dryRun, true);
    assert.deepEqual(result.steps, []);
    assert.deepEqual(c.calls, ['plan']);
  });

  it('runs only the phases asked for (no gate without pre- and post-upgrade), dynamic-upgrade included', async () => {
    const c = new FakeCluster();
    const handle = await h.start(c, { phases: ['post-upgrade', 'dynamic-upgrade'], gate: 'signal' });
    await handle.result();
    assert.deepEqual(c.calls, ['plan', ...ALL_STEPS(['post-upgrade', 'dynamic-upgrade'])]);
    assert.deepEqual((await handle.query(progressQuery)).gate, { mode: 'none', state: 'passed' });
  });

  it("a phase the original's validators rule out is skipped, with the reason", async () => {
    const c = new FakeCluster();
    c.skipPhase.set('pre-upgrade', 'ks-apiserver is not v3.x');
    const handle = await h.start(c);
    await handle.result();
    assert.deepEqual(c.callsOf('pre-upgrade'), []);
    const pre = (await handle.query(progressQuery)).phases.find((x) => x.phase === 'pre-upgrade');
    assert.deepEqual(pre, { phase: 'pre-upgrade', state: 'skipped', reason: 'ks-apiserver is not v3.x' });
  });

  it('a failed validator goes to the operator; skip runs the phase without it', async () => {
    const c = new FakeCluster();
    c.checkFailure = { message: 'museum not synced', hint: 'check the museum' };
    const handle = await h.start(c, { phases: ['prepare-upgrade'] });
    const p = await waitFor(handle, awaiting, 'the validator failure');
    assert.equal(p.awaiting?.phase, 'prepare-upgrade');
    assert.equal(p.awaiting.job, undefined);
    assert.deepEqual(p.awaiting.allowed, ['retry', 'skip', 'abort']);
    assert.equal(p.awaiting.hint, 'check the museum');
    await handle.executeUpdate(resolveUpdate, { args: [{ action: 'skip', reason: 'known', by: 'op' }] });
    await handle.result();
    assert.deepEqual(c.callsOf('prepare-upgrade'), [
      'prepare-upgrade alpha',
      'prepare-upgrade beta',
      'prepare-upgrade gamma',
    ]);
  });

  it('a job that reports it is not enabled is skipped and counts as untouched', async () => {
    const c = new FakeCluster();
    for (const p of ['prepare-upgrade', 'pre-upgrade', 'post-upgrade']) c.notEnabled.add(`${p} beta`);
    const handle = await h.start(c);
    const result = await handle.result();
    assert.ok(result.steps.filter((s) => s.job === 'beta').every((s) => s.state === 'skipped'));
    assert.deepEqual((await handle.query(progressQuery)).touched, ['alpha', 'gamma']);
  });

  describe('bad input fails the workflow at once with InvalidInput', () => {
    for (const [label, input] of [
      ['null', null],
      ['a string', 'host'],
      ['a list', [{ cluster: 'host' }]],
      ['a number', 42],
    ] as const) {
      it(`input ${label}`, async () => {
        const f = await failureOf(await h.startRaw(input));
        assert.equal(f.type, 'InvalidInput');
        assert.match(f.message, /expected a JSON object like \{"cluster":"host"\}/);
      });
    }

    it(`a 5,000-deep input: the depth limit (${MAX_INPUT_DEPTH}) is named, nothing is planned`, async () => {
      const c = new FakeCluster();
      h.clusters.set(c.name, c);
      const f = await failureOf(
        await h.startJson(
          `{"cluster":"${c.name}","overrides":{"jobs":{"alpha":{"dynamicOptions":${nestedJson(5000)}}}}}`,
        ),
      );
      assert.equal(f.type, 'InvalidInput');
      assert.match(f.message, new RegExp(`nests deeper than ${MAX_INPUT_DEPTH} levels`));
      assert.match(
        f.message,
        /^invalid upgradeCluster input:\noverrides\.jobs\.alpha\.dynamicOptions(\.x)+:/,
      );
      assert.deepEqual(c.calls, []);
    });

    it('an unknown field and a bad duration, each named', async () => {
      const f = await failureOf(
        await h.startRaw({ cluster: 'x', tuning: { operatorTimeout: '-5m' }, colour: 'red' }),
      );
      assert.equal(f.type, 'InvalidInput');
      assert.match(f.message, /colour: unknown field/);
      assert.match(f.message, /tuning\.operatorTimeout: expected a duration such as "30s" or "2h"/);
    });
  });

  describe('operator decisions', () => {
    it('resolve update retry: the step runs again; who, why and when are recorded once', async () => {
      const c = new FakeCluster();
      c.failing.set('pre-upgrade beta', { message: 'webhook refused', hint: 'delete the webhook' });
      const handle = await h.start(c);
      const p = await waitFor(handle, awaiting, 'beta pre-upgrade to fail');
      assert.deepEqual(
        { ...p.awaiting, since: undefined },
        {
          phase: 'pre-upgrade',
          job: 'beta',
          error: 'webhook refused',
          hint: 'delete the webhook',
          since: undefined,
          allowed: ['retry', 'skip', 'abort'],
        },
      );
      assert.deepEqual(c.attempts.get('pre-upgrade beta'), [1, 2], 'the job retry policy ran first');
      const step = p.steps.find((s) => s.phase === 'pre-upgrade' && s.job === 'beta');
      assert.equal(step?.state, 'failed');
      assert.equal(step.attempts, 2);
      assert.deepEqual(
        (await handle.describe()).typedSearchAttributes.get(UpgradeStatusKey),
        'AwaitingOperator',
      );
      c.failing.delete('pre-upgrade beta');
      const reply = await handle.executeUpdate(resolveUpdate, {
        args: [{ action: 'retry', reason: 'webhook deleted', by: 'alice' }],
      });
      assert.deepEqual(reply, { accepted: true, action: 'retry' });
      const result = await handle.result();
      assert.equal(result.decisions.length, 1);
      const d = result.decisions[0];
      assert.equal(d?.action, 'retry');
      assert.equal(d.by, 'alice');
      assert.equal(d.reason, 'webhook deleted');
      assert.equal(d.error, 'webhook refused');
      assert.ok(Date.parse(d.at) >= Date.parse(p.awaiting?.since ?? ''), 'decided after the wait began');
      const retried = result.steps.find((s) => s.phase === 'pre-upgrade' && s.job === 'beta');
      assert.equal(retried?.state, 'succeeded');
      assert.equal(retried.runs, 2);
      assert.equal(retried.attempts, 3);
    });

    it('resolve signal skip: the failed step is skipped, the upgrade goes on', async () => {
      const c = new FakeCluster();
      c.failing.set('prepare-upgrade gamma', { message: 'boom' });
      const handle = await h.start(c);
      await waitFor(handle, awaiting, 'gamma prepare-upgrade to fail');
      await handle.signal(resolveSignal, { action: 'skip', reason: 'not needed here', by: 'bob' });
      const result = await handle.result();
      const step = result.steps.find((s) => s.phase === 'prepare-upgrade' && s.job === 'gamma');
      assert.equal(step?.state, 'skipped');
      assert.equal(step.reason, 'skipped by bob: not needed here');
      assert.deepEqual(
        result.decisions.map((d) => [d.action, d.by, d.phase, d.job]),
        [['skip', 'bob', 'prepare-upgrade', 'gamma']],
      );
    });

    it('refuses decisions that do not fit, saying why (update rejected, signal recorded as rejected)', async () => {
      const c = new FakeCluster();
      c.planFailure = { message: 'config has an error', hint: 'fix line 3' };
      const handle = await h.start(c);
      // Before anything is awaited.
      const early = await h.start(new FakeCluster(), { gate: 'signal' });
      await waitFor(early, (p) => p.status === 'AwaitingCoreUpgrade', 'the gate');
      assert.match(
        await rejection(early.executeUpdate(resolveUpdate, { args: [{ action: 'retry', reason: 'x' }] })),
        /no decision is awaited: the upgrade is AwaitingCoreUpgrade/,
      );
      await early.signal(resolveSignal, { action: 'retry', reason: 'x', by: 'carol' });
      const p0 = await waitFor(early, (p) => (p.rejectedSignals?.length ?? 0) > 0, 'the rejected signal');
      const [r0] = p0.rejectedSignals ?? [];
      assert.ok(r0);
      assert.equal(r0.signal, 'resolveSignal');
      assert.match(r0.reason, /no decision is awaited/);
      assert.equal(r0.request?.by, 'carol');
      await early.cancel();

      const p = await waitFor(handle, awaiting, 'the plan failure');
      assert.deepEqual(p.awaiting?.allowed, ['retry', 'abort']);
      assert.match(
        await rejection(handle.executeUpdate(resolveUpdate, { args: [{ action: 'skip', reason: 'x' }] })),
        /'skip' is not possible here; choose one of: retry, abort/,
      );
      assert.match(
        await rejection(handle.executeUpdate(resolveUpdate, { args: [{ action: 'retry', reason: ' ' }] })),
        /a reason is required/,
      );
      assert.match(
        await rejection(
          handle.executeUpdate(resolveUpdate, { args: [{ action: 'rerun', reason: 'x' } as never] }),
        ),
        /action must be "retry", "skip" or "abort"/,
      );
      await handle.signal(resolveSignal, { action: 'skip', reason: 'x', by: 'dave' });
      await handle.signal(resolveSignal, null as never);
      const p1 = await waitFor(handle, (x) => (x.rejectedSignals?.length ?? 0) === 2, 'two rejected signals');
      const [r1, r2] = p1.rejectedSignals ?? [];
      assert.match(r1?.reason ?? '', /'skip' is not possible here/);
      assert.match(r2?.reason ?? '', /expected \{"action":/);
      assert.equal(p1.status, 'AwaitingOperator', 'nothing was decided');
      assert.deepEqual(p1.decisions, []);
      c.planFailure = undefined;
      await handle.executeUpdate(resolveUpdate, { args: [{ action: 'retry', reason: 'fixed', by: 'op' }] });
      const result = await handle.result();
      assert.deepEqual(
        result.decisions.map((d) => [d.action, d.phase]),
        [['retry', 'plan']],
      );
    });

    it('two decisions at once: exactly one is taken, the other is rejected with the reason', async () => {
      const c = new FakeCluster();
      c.failing.set('prepare-upgrade alpha', { message: 'boom' });
      const handle = await h.start(c);
      await waitFor(handle, awaiting, 'alpha to fail');
      // Without a worker both updates wait on the server; then one workflow task gets them together.
      await h.stopWorker();
      const both = Promise.allSettled([
        handle.executeUpdate(resolveUpdate, { args: [{ action: 'skip', reason: 'first', by: 'one' }] }),
        handle.executeUpdate(resolveUpdate, { args: [{ action: 'abort', reason: 'second', by: 'two' }] }),
      ]);
      await new Promise((r) => setTimeout(r, 1000));
      await h.startWorker();
      // Which of the two reaches the server first is up to the network: exactly one is taken.
      const settled = await both;
      const taken = settled.filter((r) => r.status === 'fulfilled');
      const refused = settled.filter((r) => r.status === 'rejected');
      assert.equal(taken.length, 1, 'one decision is taken');
      assert.equal(refused.length, 1, 'the other is refused');
      const w =
        settled[0].status === 'fulfilled'
          ? { action: 'skip', by: 'one', reason: 'first' }
          : { action: 'abort', by: 'two', reason: 'second' };
      assert.deepEqual(taken[0], { status: 'fulfilled', value: { accepted: true, action: w.action } });
      const why = String((refused[0]?.reason as WorkflowUpdateFailedError).cause?.message);
      assert.match(
        why,
        new RegExp(`already decided: ${w.action} by ${w.by} \\(${w.reason}\\); one decision per step`),
      );
      // Skip lets the upgrade finish; abort ends it UpgradeAborted. Either way, one record.
      await handle.result().catch(() => undefined);
      const p = await handle.query(progressQuery);
      assert.deepEqual(
        p.decisions.map((d) => [d.action, d.by]),
        [[w.action, w.by]],
        'recorded once',
      );
    });

    it('a signal and an update at once: the signal is taken, the update refused; a second signal is recorded as refused', async () => {
      const c = new FakeCluster();
      c.failing.set('prepare-upgrade alpha', { message: 'boom' });
      const handle = await h.start(c);
      await waitFor(handle, awaiting, 'alpha to fail');
      await h.stopWorker();
      await handle.signal(resolveSignal, { action: 'skip', reason: 'by signal', by: 'sig' });
      await handle.signal(resolveSignal, { action: 'abort', reason: 'late signal', by: 'late' });
      const update = handle.executeUpdate(resolveUpdate, {
        args: [{ action: 'abort', reason: 'by update', by: 'upd' }],
      });
      await new Promise((r) => setTimeout(r, 1000));
      await h.startWorker();
      assert.match(await rejection(update), /already decided: skip by sig/);
      const result = await handle.result();
      assert.deepEqual(
        result.decisions.map((d) => [d.action, d.by]),
        [['skip', 'sig']],
      );
      const p = await handle.query(progressQuery);
      assert.deepEqual(
        p.rejectedSignals?.map((r) => [r.request?.by, r.reason.slice(0, 30)]),
        [['late', 'already decided: skip by sig (']],
      );
    });

    it('no decision within operatorTimeout: abort, recorded as decided by operatorTimeout', async () => {
      const c = new FakeCluster();
      c.failing.set('pre-upgrade beta', { message: 'boom' });
      const handle = await h.start(c, { tuning: { operatorTimeout: '1h' } });
      await waitFor(handle, awaiting, 'beta to fail');
      // Awaiting the result lets the server skip the hour.
      const f = await failureOf(handle);
      assert.equal(f.type, 'UpgradeAborted');
      assert.match(f.message, /aborted by operatorTimeout: no operator decision within 1h/);
      const p = await handle.query(progressQuery);
      assert.deepEqual(
        p.decisions.map((d) => [d.action, d.by]),
        [['abort', 'operatorTimeout']],
      );
    });

    it('continues after a worker restart: a new worker (empty cache) takes the decision and finishes', async () => {
      const c = new FakeCluster();
      c.failing.set('post-upgrade alpha', { message: 'boom' });
      const handle = await h.start(c);
      await waitFor(handle, awaiting, 'alpha post-upgrade to fail');
      await h.stopWorker();
      c.failing.delete('post-upgrade alpha');
      await h.startWorker();
      await handle.executeUpdate(resolveUpdate, { args: [{ action: 'retry', reason: 'fixed', by: 'op' }] });
      const result = await handle.result();
      assert.equal(result.status, 'Succeeded');
      assert.deepEqual(c.callsOf('post-upgrade alpha'), [
        'post-upgrade alpha',
        'post-upgrade alpha',
        'post-upgrade alpha',
      ]);
    });
  });

  describe('the gate', () => {
    const passed = (handle: UpgradeHandle) =>
      waitFor(handle, (p) => p.status === 'AwaitingCoreUpgrade', 'the gate');

    it('signal: post-upgrade waits for coreUpgraded', async () => {
      const c = new FakeCluster();
      const handle = await h.start(c, { gate: 'signal' });
      await passed(handle);
      assert.deepEqual(c.callsOf('post-upgrade'), []);
      await handle.signal(coreUpgradedSignal, { by: 'helm-hook', note: 'ks-core 4.1.3' });
      await handle.result();
      const p = await handle.query(progressQuery);
      assert.equal(p.gate.state, 'passed');
      assert.equal(p.gate.detail, 'coreUpgraded signalled by helm-hook: ks-core 4.1.3');
      assert.equal(c.callsOf('post-upgrade').length, 3);
    });

    it('signal: no signal within gateTimeout asks the operator; retry waits again', async () => {
      const c = new FakeCluster();
      const handle = await h.start(c, { gate: 'signal', tuning: { gateTimeout: '2h' } });
      await passed(handle);
      await h.env.sleep('3h');
      const p = await waitFor(handle, awaiting, 'the gate timeout');
      assert.equal(p.awaiting?.phase, 'gate');
      assert.deepEqual(p.awaiting.allowed, ['retry', 'abort']);
      assert.match(p.awaiting.error, /no coreUpgraded signal within 2h/);
      await handle.executeUpdate(resolveUpdate, {
        args: [{ action: 'retry', reason: 'helm running', by: 'op' }],
      });
      await passed(handle);
      await handle.signal(coreUpgradedSignal);
      assert.equal((await handle.result()).status, 'Succeeded');
    });

    it('signal: abort at the gate rolls back what pre-upgrade did', async () => {
      const c = new FakeCluster();
      const handle = await h.start(c, { gate: 'signal', tuning: { gateTimeout: '1h' } });
      await passed(handle);
      await h.env.sleep('2h');
      await waitFor(handle, awaiting, 'the gate timeout');
      await handle.executeUpdate(resolveUpdate, {
        args: [{ action: 'abort', reason: 'window over', by: 'op' }],
      });
      const f = await failureOf(handle);
      assert.equal(f.type, 'UpgradeAborted');
      assert.deepEqual(c.callsOf('rollback'), ['rollback gamma', 'rollback beta', 'rollback alpha']);
    });

    it('detect: passes when v4 core runs; the deadline is fixed by the workflow and shared by retries', async () => {
      const c = new FakeCluster();
      c.detectHiccups = 1;
      const handle = await h.start(c, { gate: 'detect', tuning: { detectTimeout: '2h' } });
      await handle.result();
      assert.deepEqual(c.attempts.get('detect'), [1, 2], 'a transient failure is retried');
      const [first, second] = c.detectRequests;
      assert.ok(first?.deadline, 'the workflow passes an absolute deadline');
      assert.equal(second?.deadline, first.deadline, 'a retry keeps the deadline');
      assert.equal(first.timeoutMs, 2 * 3_600_000);
      const p = await handle.query(progressQuery);
      assert.equal(Date.parse(first.deadline) - Date.parse(p.startedAt) <= 2 * 3_600_000 + 60_000, true);
      assert.equal(p.gate.detail, 'ks-core v4.1.3 deployed and ks-apiserver ready');
    });

    it('detect: the deadline is final (one attempt); the operator sees what was seen, and may skip', async () => {
      const c = new FakeCluster();
      c.detect = { ok: false, lastSeen: 'ks-core v3.4.1 deployed' };
      const handle = await h.start(c, { gate: 'detect' });
      const p = await waitFor(handle, awaiting, 'the detect deadline');
      assert.deepEqual(c.attempts.get('detect'), [1], 'GateTimeout is not retried');
      assert.equal(p.awaiting?.phase, 'gate');
      assert.deepEqual(p.awaiting.allowed, ['retry', 'skip', 'abort']);
      assert.match(p.awaiting.error, /last seen: ks-core v3\.4\.1 deployed/);
      assert.equal(p.gate.detail, 'ks-core v3.4.1 deployed');
      await handle.executeUpdate(resolveUpdate, {
        args: [{ action: 'skip', reason: 'upgraded by hand', by: 'op' }],
      });
      assert.equal((await handle.result()).status, 'Succeeded');
      assert.equal(c.callsOf('post-upgrade').length, 3);
    });
  });
});
