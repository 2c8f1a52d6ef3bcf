// The CI sample of the fault-injection suite (`npm run test:faults -- --sample`): one full default
// upgrade with every kind of fault in it — worker kills at boundaries drawn by the seed, Temporal,
// API server and etcd restarts, an S3 outage, API errors and resets — checked against two clean
// runs: same cluster state, backups never rewritten, no create or delete done twice. The seed is
// KS_FAULT_SEED or the day of the year, printed so a failure can be repeated.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runFaultSuite, SAMPLE, summaryLine } from '../faults/suite.js';
import { repoRoot } from '../helpers/env.js';

// A test that times out is killed with a signal: exit through process.exit, which kills the
// suite's own servers and workers (test/faults/servers.ts).
process.once('SIGTERM', () => process.exit(143));
process.once('SIGINT', () => process.exit(130));

describe('fault suite (CI sample)', () => {
  // Three full upgrades, 10–12 minutes on a busy machine: within test/run's 30-minute bound.
  it('survives every fault of the sample with every invariant held', async (t) => {
    const day = Math.floor((Date.now() - Date.UTC(new Date().getUTCFullYear(), 0, 1)) / 86_400_000);
    const seed = Number(process.env.KS_FAULT_SEED ?? day + 1);
    t.diagnostic(`seed ${seed} (repeat: KS_FAULT_SEED=${seed} npm test -- test/e2e/faults-sample.test.ts)`);
    const record = await runFaultSuite({
      ...SAMPLE,
      seed,
      log: (l) => {
        t.diagnostic(l);
      },
    });
    const out = path.join(repoRoot, 'test-results', `faults-sample-${seed}.json`);
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify(record, null, 2)}\n`);
    t.diagnostic(summaryLine(record));
    assert.ok(record.injected >= 6, `at least one fault of each kind: ${record.injected}`);
    for (const s of record.scenarios) {
      assert.deepEqual(s.problems, [], `${s.scenario} (seed ${seed}): ${s.outcome}`);
      assert.equal(s.survived, true);
    }
    assert.equal(record.survived, record.injected);
  });
});
