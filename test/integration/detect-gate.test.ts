// The detect gate's activity on a real API server: its deadline is final. At the deadline it fails
// with the non-retryable GateTimeout, saying what it saw last, so the documented wait is the wait
// (a retryable failure under a 3-attempt policy made 2 h into 6 h); a deadline given by the
// workflow holds for every attempt.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities/index.js';
import { GATE_TIMEOUT } from '../../workflows/messages.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installTestRuntime } from '../helpers/temporal.js';

describe('waitForCoreUpgrade (the detect gate)', () => {
  let cluster: EphemeralCluster;
  before(async () => {
    installTestRuntime();
    cluster = await startEphemeralCluster('detect');
  });
  after(() => cluster.remove());

  const wait = (timeoutMs: number, deadline?: string) => {
    const activities = createActivities();
    return new MockActivityEnvironment({ heartbeatTimeoutMs: 3_000 }).run(
      (req: Parameters<typeof activities.waitForCoreUpgrade>[0]) => activities.waitForCoreUpgrade(req),
      {
        input: { cluster: 'detect', kube: { kubeconfig: cluster.kubeconfig } },
        timeoutMs,
        ...(deadline ? { deadline } : {}),
        intervalMs: 200,
      },
    );
  };

  const gateTimeout =
    (seconds: number) =>
    (err: unknown): boolean => {
      assert.ok(err instanceof ApplicationFailure, String(err));
      assert.equal(err.type, GATE_TIMEOUT);
      assert.equal(err.nonRetryable, true, 'a deadline is final: never retried');
      assert.match(
        err.message,
        new RegExp(
          `KubeSphere v4 core not detected within ${seconds}s; last seen: deployed ks-core is not found`,
        ),
      );
      const details = err.details?.[0] as { lastSeen?: string; hint?: string } | undefined;
      assert.equal(details?.lastSeen, 'deployed ks-core is not found; waiting for v4');
      assert.match(details.hint ?? '', /helm upgrade of ks-core/);
      return true;
    };

  it('fails for good at its deadline, with what it saw last', async () => {
    const started = Date.now();
    await assert.rejects(wait(1_000), gateTimeout(1));
    assert.ok(Date.now() - started >= 1_000, 'it watched until the deadline');
  });

  it('keeps the deadline the workflow set: a later attempt does not start a new wait', async () => {
    const started = Date.now();
    const deadline = new Date(Date.now() - 60_000).toISOString();
    await assert.rejects(wait(600_000, deadline), gateTimeout(600));
    assert.ok(Date.now() - started < 60_000, 'one look, then the deadline that has passed');
  });
});
