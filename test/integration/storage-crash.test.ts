// Crash safety of both backends: a child process overwrites one key with two alternating large
// payloads (and creates fresh keys with putIfAbsent) until the parent SIGKILLs it at a random
// moment. After every kill the key holds exactly one complete payload, every fresh key is complete,
// and `list` shows no temporary or partial object.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { StorageConfig } from '../../src/config/types.js';
import { LocalStorage, createStorage } from '../../src/storage/index.js';
import { uniqueName } from '../helpers/env.js';
import { MIB, devS3Config, patternBytes, purgeS3Prefix, spawnChild, tempDir } from '../helpers/storage.js';

const ROUNDS = 10;

/** Starts the writer, waits until its first write landed, lets it run a random while, kills it. */
async function killMidWrite(task: unknown, maxRunMs: number): Promise<number> {
  const child = spawnChild(task);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      resolve({ code, signal });
    }),
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    void exited.then(({ code }) => {
      reject(new Error(`writer exited (${code}) before its first write: ${stderr}`));
    });
  });
  const ranMs = Math.floor(Math.random() * maxRunMs);
  await new Promise((resolve) => setTimeout(resolve, ranMs));
  child.kill('SIGKILL');
  const { signal } = await exited;
  assert.equal(signal, 'SIGKILL', `the writer must die by the kill, not by itself: ${stderr}`);
  return ranMs;
}

function crashSuite(name: string, sizes: [number, number], config: () => Promise<StorageConfig>): void {
  it(`${name}: ${ROUNDS} SIGKILLs mid-write leave only complete objects`, async () => {
    const storageConfig = await config();
    const storage = await createStorage(storageConfig);
    const payloads = [patternBytes(sizes[0], 1), patternBytes(sizes[1], 2)];
    const isOneOfThePayloads = (bytes: Uint8Array): boolean =>
      payloads.some((p) => Buffer.from(bytes).equals(p));
    const prefix = `${uniqueName('crash')}/`;
    const key = `${prefix}obj`;
    let freshSeen = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // Every round a new fresh-key space: putIfAbsent interrupted in round n must not block round n+1.
      const freshPrefix = `${prefix}fresh-${round}/`;
      const ranMs = await killMidWrite(
        { mode: 'overwrite', storage: storageConfig, key, freshPrefix, sizes },
        600,
      );
      const bytes = await storage.get(key);
      assert.ok(
        isOneOfThePayloads(bytes),
        `round ${round} (killed after ${ranMs} ms): '${key}' holds ${bytes.byteLength} bytes, neither payload`,
      );
      const keys = await storage.list(prefix);
      for (const k of keys) {
        assert.ok(k === key || /\/fresh-\d+\/\d{6}$/.test(k), `unexpected key in listing: ${k}`);
        if (k.startsWith(freshPrefix)) {
          freshSeen++;
          assert.ok(
            isOneOfThePayloads(await storage.get(k)),
            `round ${round}: '${k}' is not a complete payload`,
          );
        }
      }
    }
    assert.ok(freshSeen > 0, 'the writer got to putIfAbsent at least once');
  });
}

describe('crash safety (SIGKILL mid-write)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(() => Promise.all(cleanups.map((c) => c())));

  crashSuite('local', [6 * MIB, 9 * MIB + 123], async () => {
    const { dir, cleanup } = await tempDir('crash');
    cleanups.push(async () => {
      // Temporary files of killed writers stay on disk, invisible to list; the sweep removes them.
      const root = path.join(dir, 'root');
      const temps = async (): Promise<string[]> =>
        (await readdir(root, { recursive: true })).filter((n) =>
          path.basename(n).startsWith('.ks-upgrade-tmp-'),
        );
      const leftovers = (await temps()).length;
      const storage = new LocalStorage(root);
      assert.equal(await storage.removeStaleTempFiles(60_000), 0, 'fresh temp files are kept');
      assert.equal(await storage.removeStaleTempFiles(0), leftovers);
      assert.deepEqual(await temps(), []);
      process.stdout.write(
        `# local crash test: ${leftovers} orphaned temp file(s) left by killed writers, swept\n`,
      );
      await cleanup();
    });
    return { local: { path: path.join(dir, 'root') } };
  });

  // 3 MiB goes up as one PutObject, 9 MiB in parts (threshold 4 MiB): both paths get killed.
  crashSuite('s3', [3 * MIB, 9 * MIB + 123], () => {
    const s3 = devS3Config({ multipartThreshold: 4 * MIB });
    cleanups.push(() => purgeS3Prefix(s3));
    return Promise.resolve({ local: { path: '/nonexistent' }, s3 });
  });
});
