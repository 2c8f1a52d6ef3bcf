// Determinism: workflow histories replay against the current workflow code. The committed histories
// (test/fixtures/histories: a representative upgrade with gate, failed step and operator retry, and
// the abort, cancel and rollback paths, several recorded by earlier builds) guard runs already in
// flight when the code changes — a change that would break them must use `patched()` (see
// docs/workflow-changes.md). A freshly recorded history checks the current code against itself.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../../src/temporal/bundle.js';
import { repoRoot } from '../helpers/env.js';
import { historyFromJson, historyToJson, recordRepresentativeHistory } from '../helpers/record-history.js';
import { installTestRuntime } from '../helpers/temporal.js';

const HISTORIES = path.join(repoRoot, 'test/fixtures/histories');
const COMMITTED = path.join(HISTORIES, 'upgrade-gate-retry.json');

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

  const committed = readdirSync(HISTORIES).filter((f) => f.endsWith('.json'));
  it('has the committed histories', () => {
    assert.ok(committed.length >= 7, committed.join(', '));
  });
  for (const file of committed) {
    it(`replays the committed history ${file}`, async () => {
      installTestRuntime();
      const history = historyFromJson(readFileSync(path.join(HISTORIES, file), 'utf8'));
      assert.ok((history.events?.length ?? 0) > 40, 'the fixture holds a real history');
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, file);
    });
  }
});
