// An operator decision that meets a query running ahead of the workflow. SDK 1.24's core applies the
// events of a pending workflow task when a query arrives first; an update sent at once (the query
// showed the wait) is then accepted in that same task, after the commands the events produced. On
// replay the update comes first: nondeterminism, the run is stuck (found by the fault suite's mixed
// scenario, history in test/fixtures/nondeterminism). Since DECISION_AFTER_ANNOUNCE_PATCH the wait
// sends its commands in one task and takes decisions from the next: the same race replays.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import { resolveSoon } from '../../src/cli/operate.js';
import { repoRoot } from '../helpers/env.js';
import {
  historyFromCliJson,
  historyFromJson,
  historyToJson,
  withUpdatesInPreviousTask,
} from '../helpers/record-history.js';
import { sourceWorkflowBundle } from '../helpers/workflow-env.js';
import { FakeCluster, awaiting, useHarness, waitFor } from './harness.js';

const replay = async (json: string, id: string): Promise<void> =>
  Worker.runReplayHistory({ workflowBundle: await sourceWorkflowBundle() }, historyFromJson(json), id);

const NONDETERMINISM = /Nondeterminism error: Update machine does not handle this event/;

describe('a decision accepted in the workflow task a query ran ahead into', () => {
  const harness = useHarness();

  it('before the patch: the race, rebuilt from a committed history, fails replay as the real one did', async () => {
    const real = readFileSync(
      path.join(repoRoot, 'test/fixtures/nondeterminism/resolve-update-replay.json'),
      'utf8',
    );
    await assert.rejects(
      Worker.runReplayHistory(
        { workflowBundle: await sourceWorkflowBundle() },
        historyFromCliJson(real),
        'fault-suite',
      ),
      NONDETERMINISM,
      'the history the fault suite recorded',
    );
    const old = readFileSync(path.join(repoRoot, 'test/fixtures/histories/upgrade-gate-retry.json'), 'utf8');
    await replay(old, 'as recorded');
    const raced = withUpdatesInPreviousTask(old);
    assert.equal(raced.moved, 1, 'the committed history has one decision by update');
    await assert.rejects(replay(raced.json, 'raced'), NONDETERMINISM);
  });

  for (const operatorTimeout of [undefined, '1h']) {
    it(`with the patch: the same race replays (operatorTimeout ${operatorTimeout ?? 'none'})`, async () => {
      const h = harness();
      const c = new FakeCluster();
      c.failing.set('pre-upgrade beta', { message: 'webhook refused' });
      const handle = await h.start(
        c,
        operatorTimeout ? { tuning: { heartbeatTimeout: '2s', operatorTimeout } } : {},
      );
      await waitFor(handle, awaiting, 'beta to fail');
      c.failing.delete('pre-upgrade beta');
      await resolveSoon(handle, { action: 'retry', reason: 'fixed', by: 'op' });
      const result = await handle.result();
      assert.equal(result.status, 'Succeeded');
      const recorded = historyToJson(await handle.fetchHistory());
      await replay(recorded, 'as recorded');
      const raced = withUpdatesInPreviousTask(recorded);
      assert.equal(raced.moved, 1);
      await replay(raced.json, 'raced');
    });
  }
});
