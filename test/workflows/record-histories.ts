// Records workflow histories for the replay test (test/e2e/replay.test.ts): the workflow code of
// this checkout runs a scripted scenario on the time-skipping server with fake activities, and the
// history is written to test/fixtures/histories/<name>.json. Record a history with the code that is
// about to change, commit it, then change the code: replaying it proves that runs in flight survive.
//
//   bash test/run --record-histories <name> ...   (see docs/workflow-changes.md)
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { resolveSoon } from '../../src/cli/operate.js';
import { repoRoot } from '../helpers/env.js';
import { historyToJson } from '../helpers/record-history.js';
import { coreUpgradedSignal, resolveSignal, resolveUpdate } from '../../workflows/messages.js';
import { FakeCluster, WorkflowHarness, awaiting, waitFor, type UpgradeHandle } from './harness.js';

type Scenario = (h: WorkflowHarness) => Promise<UpgradeHandle>;

async function settle(handle: UpgradeHandle): Promise<void> {
  try {
    await handle.result();
  } catch {
    // aborted or cancelled on purpose
  }
}

/** Cancels the upgrade while beta's pre-upgrade runs. */
async function cancelRunningStep(h: WorkflowHarness): Promise<UpgradeHandle> {
  const c = new FakeCluster();
  c.blocking.add('pre-upgrade beta');
  const handle = await h.start(c);
  await waitFor(handle, (p) => p.phase === 'pre-upgrade' && p.job === 'beta', 'beta pre-upgrade to run');
  await new Promise((r) => setTimeout(r, 300));
  await handle.cancel();
  await settle(handle);
  return handle;
}

/** Scenarios by fixture name. Keep old ones: their histories were recorded by older code. */
export const SCENARIOS: Record<string, Scenario> = {
  /** A failed step aborted by the operator; one job's rollback fails. */
  'upgrade-abort-rollback-failed': async (h) => {
    const c = new FakeCluster();
    c.failing.set('pre-upgrade beta', { message: 'boom' });
    c.failing.set('rollback gamma', { message: 'webhook gone' });
    const handle = await h.start(c);
    await waitFor(handle, awaiting, 'beta to fail');
    await handle.executeUpdate(resolveUpdate, {
      args: [{ action: 'abort', reason: 'record', by: 'recorder' }],
    });
    await settle(handle);
    return handle;
  },
  /** Cancelled while a job's step runs. */
  'upgrade-cancel-running-step': cancelRunningStep,
  /** failurePolicy abort, after a skip by signal of an earlier failure. */
  'upgrade-failure-policy-abort': async (h) => {
    const c = new FakeCluster();
    c.failing.set('post-upgrade gamma', { message: 'boom' });
    const handle = await h.start(c, { failurePolicy: 'abort', gate: 'signal' });
    await waitFor(handle, (p) => p.status === 'AwaitingCoreUpgrade', 'the gate');
    await handle.signal(coreUpgradedSignal, { by: 'recorder' });
    await settle(handle);
    return handle;
  },
  /** The detect gate fails, the operator retries, then skips a failed step by signal. */
  'upgrade-detect-retry-skip': async (h) => {
    const c = new FakeCluster();
    c.detect = { ok: false, lastSeen: 'ks-core v3.4.1 deployed' };
    c.failing.set('post-upgrade beta', { message: 'boom' });
    const handle = await h.start(c, { gate: 'detect' });
    await waitFor(handle, awaiting, 'the detect gate to fail');
    c.detect = { ok: true };
    await handle.executeUpdate(resolveUpdate, {
      args: [{ action: 'retry', reason: 'record', by: 'recorder' }],
    });
    await waitFor(handle, (p) => awaiting(p) && p.awaiting?.job === 'beta', 'beta to fail');
    await handle.signal(resolveSignal, { action: 'skip', reason: 'record', by: 'recorder' });
    await settle(handle);
    return handle;
  },
  /**
   * Since the rollback patch: a refused signal, abort, a failed rollback retried then skipped, the
   * move of the backups failing once and retried, and the detect gate's final deadline.
   */
  'upgrade-v2-rollback-operator-archive': async (h) => {
    const c = new FakeCluster();
    c.detect = { ok: false, lastSeen: 'ks-core v3.4.1 deployed' };
    c.failing.set('post-upgrade beta', { message: 'boom' });
    c.failing.set('rollback gamma', { message: 'webhook gone' });
    c.archiveFailure = { message: 'bucket unreachable' };
    const handle = await h.start(c, { gate: 'detect' });
    await waitFor(handle, awaiting, 'the detect gate to fail');
    c.detect = { ok: true };
    await handle.signal(resolveSignal, { action: 'retry', reason: '', by: 'recorder' });
    await handle.executeUpdate(resolveUpdate, {
      args: [{ action: 'retry', reason: 'record', by: 'recorder' }],
    });
    await waitFor(handle, (p) => awaiting(p) && p.awaiting?.job === 'beta', 'beta to fail');
    await handle.executeUpdate(resolveUpdate, {
      args: [{ action: 'abort', reason: 'record', by: 'recorder' }],
    });
    await waitFor(handle, (p) => awaiting(p) && p.awaiting?.job === 'gamma', 'gamma rollback to fail');
    await handle.executeUpdate(resolveUpdate, {
      args: [{ action: 'retry', reason: 'record', by: 'recorder' }],
    });
    await waitFor(handle, (p) => awaiting(p) && p.decisions.length === 3, 'gamma rollback to fail again');
    await handle.signal(resolveSignal, { action: 'skip', reason: 'record', by: 'recorder' });
    await waitFor(
      handle,
      (p) => awaiting(p) && p.awaiting?.job === undefined,
      'the move of the backups to fail',
    );
    c.archiveFailure = undefined;
    await handle.executeUpdate(resolveUpdate, {
      args: [{ action: 'retry', reason: 'record', by: 'recorder' }],
    });
    await settle(handle);
    return handle;
  },
  /** Since the rollback patch: cancelled while a step runs; the rollback waits for the step to stop. */
  'upgrade-v2-cancel-running-step': cancelRunningStep,
  /**
   * With preflight and gate helm: the v4 CRDs, helm upgrade, abort in post-upgrade, ks-core's
   * rollback failing once and retried before the jobs', and the attempt (ks-core too) moved aside.
   */
  'upgrade-v3-helm-abort-core-rollback': async (h) => {
    const c = new FakeCluster();
    c.failing.set('post-upgrade beta', { message: 'boom' });
    c.coreRollbackFailure = { message: 'helm: release locked' };
    const handle = await h.start(c, { gate: 'helm' });
    await waitFor(handle, (p) => awaiting(p) && p.awaiting?.job === 'beta', 'beta to fail');
    await handle.executeUpdate(resolveUpdate, {
      args: [{ action: 'abort', reason: 'record', by: 'recorder' }],
    });
    await waitFor(handle, (p) => awaiting(p) && p.awaiting?.job === 'ks-core', 'the core rollback to fail');
    c.coreRollbackFailure = undefined;
    await handle.executeUpdate(resolveUpdate, {
      args: [{ action: 'retry', reason: 'record', by: 'recorder' }],
    });
    await settle(handle);
    return handle;
  },
  /** With preflight and verification: a whole upgrade through the signal gate. */
  'upgrade-v3-preflight-verification': async (h) => {
    const c = new FakeCluster();
    const handle = await h.start(c, { gate: 'signal' });
    await waitFor(handle, (p) => p.status === 'AwaitingCoreUpgrade', 'the gate');
    await handle.signal(coreUpgradedSignal, { by: 'recorder' });
    await settle(handle);
    return handle;
  },
  /**
   * Operator waits since DECISION_AFTER_ANNOUNCE_PATCH: a retry by update under an operator
   * timeout, then a skip by signal.
   */
  'upgrade-v4-decision-after-announce': async (h) => {
    const c = new FakeCluster();
    c.failing.set('pre-upgrade beta', { message: 'boom' });
    c.failing.set('post-upgrade gamma', { message: 'boom again' });
    const handle = await h.start(c, { tuning: { heartbeatTimeout: '2s', operatorTimeout: '1h' } });
    await waitFor(handle, awaiting, 'beta to fail');
    c.failing.delete('pre-upgrade beta');
    await resolveSoon(handle, { action: 'retry', reason: 'record', by: 'recorder' });
    await waitFor(handle, (p) => awaiting(p) && p.awaiting?.job === 'gamma', 'gamma to fail');
    await handle.signal(resolveSignal, { action: 'skip', reason: 'record', by: 'recorder' });
    await settle(handle);
    return handle;
  },
};

async function main(names: string[]): Promise<void> {
  const unknown = names.filter((n) => !(n in SCENARIOS));
  if (names.length === 0 || unknown.length > 0) {
    throw new Error(
      `name scenarios to record (${Object.keys(SCENARIOS).join(', ')}); unknown: ${unknown.join(', ')}`,
    );
  }
  const h = await WorkflowHarness.start();
  try {
    for (const name of names) {
      const scenario = SCENARIOS[name];
      if (!scenario) continue;
      const handle = await scenario(h);
      const file = path.join(repoRoot, 'test/fixtures/histories', `${name}.json`);
      writeFileSync(file, historyToJson(await handle.fetchHistory()));
      console.log(`recorded ${file}`);
    }
  } finally {
    await h.stop();
  }
}

await main(process.argv.slice(2));
