// The benchmark harness at toy size (the figures themselves are `npm run bench`'s, never a test's):
// the backup rows run end to end — custom objects, kubectl and our backup each in a process of its
// own under GNU time — and every row comes out complete, so a broken bench shows in `npm test`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { benchBackup } from '../bench/backup.js';
import { formatTable } from '../bench/harness.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';

describe('bench harness (toy size)', () => {
  let cluster: EphemeralCluster;
  before(async () => {
    cluster = await startEphemeralCluster('bench-smoke');
  });
  after(async () => {
    await cluster.remove();
  });

  it('the backup rows: both sides measured, counts checked, peak RSS and ratios filled in', async () => {
    const rows = await benchBackup(cluster, { objects: 40, smallObjects: 10, rounds: 1 });
    assert.deepEqual(
      rows.map((r) => r.id),
      ['backup-local', 'backup-s3', 'backup-memory'],
    );
    for (const r of rows) {
      assert.ok(r.baseline.value > 0 && r.ours.value > 0, `${r.id}: ${JSON.stringify(r)}`);
      assert.ok((r.baseline.peakRssMb ?? 0) > 0 && (r.ours.peakRssMb ?? 0) > 0, `${r.id}: peak RSS`);
      assert.ok(Number.isFinite(r.ratio) && typeof r.met === 'boolean', `${r.id}: ratio ${r.ratio}`);
    }
    // kubectl's output is the list it read: a bench that lost objects would not get here (the
    // child checks its count), and the baseline must have read something of that size.
    assert.match(
      rows[0]?.baseline.label ?? '',
      /kubectl get -A -o json --chunk-size=500 > file \(0\.\d MB\)/,
    );
    const table = formatTable(rows).split('\n');
    assert.equal(table.length, 2 + rows.length);
  });
});
