// The demo's backup summary: one line per cluster and job, read from a real local store.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { backupSummaryLines, backupsPerJob, formatBytes } from '../../scripts/demo-summary.js';
import { createResourceStore } from '../../src/store/index.js';

describe('demo backup summary', () => {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('counts objects, bytes and encrypted objects per cluster and job', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'demo-summary-'));
    dirs.push(dir);
    const keyFile = path.join(dir, 'key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    const encrypted = await createResourceStore({
      local: { path: path.join(dir, 'enc') },
      encryption: { keyFile },
    });
    const plain = await createResourceStore({ local: { path: path.join(dir, 'plain') } });
    for (let i = 0; i < 30; i++) await encrypted.scope('host', 'iam').save(`users/u${i}`, { name: `u${i}` });
    await encrypted.scope('host', 'core').save('webhooks/a', { name: 'a' });
    await encrypted.scope('member', 'core').save('webhooks/a', { name: 'a' });
    await plain.scope('host', 'network').save('ippools/p', { name: 'p' });

    const rows = await backupsPerJob(encrypted);
    assert.deepEqual(
      rows.map((r) => [r.scope, r.objects, r.encrypted]),
      [
        ['host/core', 1, 1],
        ['host/iam', 30, 30],
        ['member/core', 1, 1],
      ],
    );
    let sum = 0;
    for (const key of await encrypted.list('host/iam/')) sum += (await encrypted.stat(key)).size;
    assert.equal(rows.find((r) => r.scope === 'host/iam')?.bytes, sum);
    assert.deepEqual(
      (await backupsPerJob(plain)).map((r) => [r.scope, r.objects, r.encrypted]),
      [['host/network', 1, 0]],
    );

    const lines = backupSummaryLines(rows, 'ks-upgrade backups list --config c.yaml');
    // One line per job, not per object: a total, the jobs, and where the rest is.
    assert.equal(lines.length, 1 + rows.length + 1);
    assert.match(lines[0] ?? '', /^backed up: 32 objects, .*, 32 encrypted, in 3 jobs$/);
    assert.match(lines[2] ?? '', /host\/iam\s+30 objects\s+.*all encrypted$/);
    assert.equal(lines.at(-1), 'every object: ks-upgrade backups list --config c.yaml');
  });

  it('formats sizes', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(2048), '2.0 KiB');
    assert.equal(formatBytes(3 * 1024 * 1024), '3.0 MiB');
  });
});
