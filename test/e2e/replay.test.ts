// Determinism: workflow histories replay against the current workflow code. A committed history
// (recorded from a representative upgrade: gate, failed step, operator retry, all phases) guards
// runs already in flight when the code changes — a change that would break them must use
// `patched()`. A freshly recorded history checks the current code against itself.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../../src/temporal/bundle.js';
import { repoRoot } from '../helpers/env.js';
import { historyFromJson, historyToJson, recordRepresentativeHistory } from '../helpers/record-history.js';
import { installTestRuntime } from '../helpers/temporal.js';

const COMMITTED = path.join(repoRoot, 'test/fixtures/histories/upgrade-gate-retry.json');

describe('workflow replay', () => {
  it('replays a freshly recorded upgrade history', async () => {
    installTestRuntime();
    const history = await recordRepresentativeHistory();
    if (process.env.KS_RECORD_HISTORY === '1') writeFileSync(COMMITTED, historyToJson(history));
    assert.ok((history.events?.length ?? 0) > 100, 'a representative history has many events');
    await Worker.runReplayHistory(
      { workflowBundle: await workflowBundle() },
      historyFromJson(historyToJson(history)),
      'fresh',
    );
  });

  it('replays the committed history of an upgrade recorded with an earlier build', async () => {
    installTestRuntime();
    const history = historyFromJson(readFileSync(COMMITTED, 'utf8'));
    assert.ok((history.events?.length ?? 0) > 100, 'the fixture holds a real history');
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, 'committed');
  });
});
