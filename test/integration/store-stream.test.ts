// Streamed writes of the backup store (saveOnceStream, saveListOnce) on the local store and the real
// S3 server: the same stored bytes as saveOnce/saveRawOnce, write-once, the spool removed in every
// outcome, and backupKinds (which lists page by page) storing what the whole-list backup stored.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CustomResourceDefinitionResource, NamespaceResource } from '../../src/api/core.js';
import type { StorageConfig } from '../../src/config/types.js';
import { createJobContext, createMemoryLogger } from '../../src/jobs/index.js';
import { asList, backupKinds } from '../../src/jobs/helpers.js';
import { waitForCrdEstablished } from '../../src/kube/crd.js';
import { defineResource, type ClusterConnection, type KubeObject } from '../../src/kube/index.js';
import { createStorage, type Storage } from '../../src/storage/index.js';
import {
  BackupRecordedAbsent,
  PlaintextSecretError,
  SPOOL_PREFIX,
  createResourceStore,
  type ResourceStore,
} from '../../src/store/index.js';
import { forEachLimit } from '../../src/util/concurrency.js';
import { uniqueName } from '../helpers/env.js';
import { devClusterConnection } from '../helpers/kube.js';
import { MIB, devS3Config, patternBytes, purgeS3Prefix, tempDir } from '../helpers/storage.js';

// This process's spools go to a folder of its own, so "no spool left" is not disturbed by other
// test processes (os.tmpdir() reads TMPDIR on every call).
const privateTmp = mkdtempSync(path.join(tmpdir(), 'ks-upgrade-stream-test-'));
process.env.TMPDIR = privateTmp;

const KEY_ENV = 'KS_UPGRADE_TEST_STREAM_KEY';
const env = { ...process.env, [KEY_ENV]: randomBytes(32).toString('hex') };
const SECRET_MARKER = 'hunter2-stream-do-not-leak-4b1e';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(cleanups.map((c) => c()));
  await rm(privateTmp, { recursive: true, force: true });
});

async function spoolsLeft(): Promise<string[]> {
  return (await readdir(privateTmp)).filter((n) => n.startsWith(SPOOL_PREFIX));
}

/** Items of a typical custom resource list, with text that JSON escapes (quotes, unicode, newlines). */
function makeItems(count: number, from = 0, filler = 0): KubeObject[] {
  return Array.from({ length: count }, (_, j) => {
    const i = from + j;
    return {
      apiVersion: 'demo.ks-upgrade.io/v1',
      kind: 'Widget',
      metadata: { name: `w-${i}`, namespace: `ns-${i % 3}`, labels: { i: String(i) } },
      spec: {
        text: `"quoted" ünïcødé ✓ line\nbreak ${i}`,
        n: i / 3,
        list: [i, null, true],
        pad: 'x'.repeat(filler),
      },
    } as KubeObject;
  });
}

function pagesOf<T>(items: T[], sizes: number[]): T[][] {
  const pages: T[][] = [];
  let at = 0;
  for (let p = 0; at < items.length; p++) {
    const n = sizes[p % sizes.length] ?? 1;
    pages.push(items.slice(at, at + n));
    at += n;
  }
  return pages;
}

async function* asyncPages<T>(pages: T[][]): AsyncGenerator<T[]> {
  for (const page of pages) {
    await new Promise((r) => setImmediate(r));
    yield page;
  }
}

/** The stored object's header line (parsed) and its payload as stored. */
function splitObject(bytes: Uint8Array): { header: Record<string, unknown>; payload: Buffer } {
  const buf = Buffer.from(bytes);
  const first = buf.indexOf(0x0a);
  const second = buf.indexOf(0x0a, first + 1);
  return {
    header: JSON.parse(buf.subarray(first + 1, second).toString()) as Record<string, unknown>,
    payload: buf.subarray(second + 1),
  };
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Backend {
  name: string;
  config(extra?: Partial<StorageConfig>): StorageConfig;
}

const BACKENDS: [string, () => Promise<Backend>][] = [
  [
    'local',
    async (): Promise<Backend> => {
      const { dir, cleanup } = await tempDir('stream');
      cleanups.push(cleanup);
      return {
        name: 'local',
        config: (extra = {}) => ({ local: { path: path.join(dir, 'backups') }, ...extra }),
      };
    },
  ],
  [
    's3',
    (): Promise<Backend> => {
      // A 5 MiB threshold: the big objects below go up in parts, the small ones in one PutObject.
      const s3 = devS3Config({ multipartThreshold: 5 * MIB });
      cleanups.push(() => purgeS3Prefix(s3));
      return Promise.resolve({
        name: 's3',
        config: (extra = {}) => ({ local: { path: '/nonexistent' }, s3, ...extra }),
      });
    },
  ],
];

for (const [name, makeBackend] of BACKENDS) {
  describe(`streamed saves on ${name}`, () => {
    let backend: Backend;
    let raw: Storage;
    let plain: ResourceStore;
    let encrypted: ResourceStore;
    before(async () => {
      backend = await makeBackend();
      raw = await createStorage(backend.config());
      plain = (await createResourceStore(backend.config(), env)).scope('host', 'stream');
      encrypted = (await createResourceStore(backend.config({ encryption: { keyEnv: KEY_ENV } }), env)).scope(
        'host',
        'stream-enc',
      );
    });

    for (const [label, items, sizes] of [
      ['3 items in uneven pages with empty ones', makeItems(3), [1, 0, 2]],
      ['no items', [], [0]],
      ['1,000 items in pages of 500', makeItems(1000), [500]],
      // ≈ 7 MiB: above the S3 store's 5 MiB threshold, uploaded in two parts.
      ['2,000 items of 3.5 KiB in pages of 333', makeItems(2000, 0, 3500), [333]],
    ] as const) {
      it(`saveListOnce of ${label} stores the bytes saveOnce stores`, async () => {
        const list = asList('demo.ks-upgrade.io/v1', 'Widget', [...items]);
        for (const store of [plain, encrypted]) {
          const k = uniqueName('list');
          const once = await store.saveOnce(`${k}-once`, list);
          assert.equal(once.created, true);
          const streamed = await store.saveListOnce(
            `${k}-stream`,
            asList('demo.ks-upgrade.io/v1', 'Widget', []),
            asyncPages(pagesOf([...items], [...sizes])),
          );
          assert.equal(streamed.created, true);
          assert.equal(streamed.items, items.length);
          const [a, b] = [await store.stat(`${k}-once`), await store.stat(`${k}-stream`)];
          assert.deepEqual(streamed.info, b);
          // The same plaintext, byte for byte (decrypted when encrypted).
          const [pa, pb] = [await store.loadRaw(`${k}-once`), await store.loadRaw(`${k}-stream`)];
          assert.ok(Buffer.from(pa).equals(Buffer.from(pb)), 'same payload bytes');
          assert.equal(Buffer.from(pb).toString(), JSON.stringify(list));
          assert.deepEqual(
            { ...b, key: a.key, createdAt: a.createdAt, sha256: a.sha256 },
            a,
            'same size, content type, sensitivity, key id, writer',
          );
          assert.equal((await store.verify(`${k}-stream`)).decrypted, store === encrypted);
          // The sha256 in the header is that of the payload as stored.
          const stored = splitObject(
            await raw.get(`host/${store === plain ? 'stream' : 'stream-enc'}/${k}-stream`),
          );
          assert.equal(stored.header.sha256, sha256(stored.payload));
          if (store === plain) assert.equal(b.sha256, a.sha256, 'same sha256 as saveOnce');
          else assert.ok(!stored.payload.equals(Buffer.from(pb)) || pb.byteLength === 0, 'ciphertext stored');
        }
        assert.deepEqual(await spoolsLeft(), []);
      });
    }

    it(`saveOnceStream of bytes and text stores what saveRawOnce stores`, async () => {
      const big = patternBytes(6 * MIB + 12345, 7);
      for (const store of [plain, encrypted]) {
        for (const data of [Buffer.from('hello, spool'), big]) {
          const k = uniqueName('bytes');
          await store.saveRawOnce(`${k}-once`, data);
          // Pieces of odd sizes, strings and bytes mixed; the source reuses its buffer.
          const reused = Buffer.alloc(70_001);
          const pieces = function* (): Generator<Uint8Array> {
            for (let at = 0, i = 0; at < data.byteLength; i++) {
              const n = Math.min(i % 3 === 0 ? 70_001 : 999, data.byteLength - at);
              if (i % 2 === 0) yield Buffer.from(data.subarray(at, at + n));
              else {
                data.copy(reused, 0, at, at + n);
                yield reused.subarray(0, n);
              }
              at += n;
            }
          };
          const res = await store.saveOnceStream(`${k}-stream`, pieces());
          assert.equal(res.created, true);
          assert.ok(Buffer.from(await store.loadRaw(`${k}-stream`)).equals(data));
          const [a, b] = [await store.stat(`${k}-once`), await store.stat(`${k}-stream`)];
          assert.equal(b.size, a.size);
          assert.equal(b.contentType, a.contentType);
          if (store === plain) assert.equal(b.sha256, a.sha256);
        }
      }
      // Text pieces are UTF-8.
      const res = await plain.saveOnceStream(uniqueName('text'), ['grüß', ' ', 'dich'], {
        contentType: 'text/plain',
      });
      assert.equal(res.info.size, Buffer.byteLength('grüß dich'));
      assert.deepEqual(await spoolsLeft(), []);
    });

    it(`write-once — a second streamed save keeps the first and reads nothing`, async () => {
      for (const store of [plain, encrypted]) {
        const k = uniqueName('once');
        const first = await store.saveListOnce(k, { kind: 'WidgetList' }, [makeItems(2)]);
        assert.equal(first.created, true);
        let read = false;
        const second = await store.saveListOnce(
          k,
          { kind: 'WidgetList' },
          {
            async *[Symbol.asyncIterator]() {
              read = true;
              await Promise.resolve();
              yield makeItems(5);
            },
          },
        );
        assert.equal(second.created, false);
        assert.equal(second.items, undefined);
        assert.equal(read, false, 'the source of a stored key is not read');
        assert.deepEqual(second.info, first.info);
        const bytes = await store.saveOnceStream(k, ['other bytes']);
        assert.deepEqual(bytes, { created: false, info: first.info });
        assert.equal((await store.load<{ items: unknown[] }>(k)).items.length, 2);
        // saveOnce's objects are kept the same way.
        await store.saveOnce(`${k}-b`, { a: 1 });
        assert.equal((await store.saveOnceStream(`${k}-b`, ['{"a":2}'])).created, false);
        assert.deepEqual(await store.load(`${k}-b`), { a: 1 });
        // Racing streamed saves of one key: exactly one creates it, the other keeps it.
        const race = await Promise.all(
          [1, 2, 3].map((n) => store.saveOnceStream(`${k}-race`, [patternBytes(64 * 1024, n)])),
        );
        assert.equal(race.filter((r) => r.created).length, 1);
        const winner = race.findIndex((r) => r.created);
        assert.ok(Buffer.from(await store.loadRaw(`${k}-race`)).equals(patternBytes(64 * 1024, winner + 1)));
        // An absent record wins, as with saveOnce.
        await store.saveAbsentOnce(`${k}-absent`, { reason: 'none', recordedBy: 'test' });
        await assert.rejects(
          store.saveListOnce(`${k}-absent`, { kind: 'WidgetList' }, [makeItems(1)]),
          BackupRecordedAbsent,
        );
      }
      assert.deepEqual(await spoolsLeft(), []);
    });

    it(`a source that throws half-way stores nothing and leaves no spool`, async () => {
      for (const store of [plain, encrypted]) {
        const k = uniqueName('fail');
        let sawSpool: { dirMode: number; fileMode: number; size: number; leaked: boolean } | undefined;
        const failing = async function* (): AsyncGenerator<KubeObject[]> {
          // 3 pages of ≈ 600 KiB (the secret on the first), then a look at the spool, then a failure.
          const secret = {
            apiVersion: 'v1',
            metadata: { name: 's' },
            type: 'Opaque',
            data: { p: Buffer.from(SECRET_MARKER).toString('base64') },
            stringData: { p: SECRET_MARKER },
          } as unknown as KubeObject;
          for (let p = 0; p < 3; p++) {
            const page = makeItems(100, p * 100, 6000);
            if (p === 0 && store === encrypted) page.push(secret);
            yield page;
          }
          const [dir] = await spoolsLeft();
          assert.ok(dir, 'a spool exists while the source is read');
          const file = path.join(privateTmp, dir, 'payload');
          const content = await readFile(file);
          sawSpool = {
            dirMode: (await stat(path.join(privateTmp, dir))).mode & 0o777,
            fileMode: (await stat(file)).mode & 0o777,
            size: content.byteLength,
            leaked: content.includes(SECRET_MARKER) || content.includes('"name":"w-0"'),
          };
          throw new Error('the API server went away');
        };
        await assert.rejects(store.saveListOnce(k, { kind: 'WidgetList' }, failing()), /went away/);
        assert.deepEqual(await spoolsLeft(), [], 'spool removed');
        assert.equal(await store.exists(k), false, 'nothing published');
        assert.equal(sawSpool?.dirMode, 0o700);
        assert.equal(sawSpool.fileMode, 0o600);
        assert.ok(sawSpool.size > 1 * MIB, `spooled ${sawSpool.size} bytes before the failure`);
        // Encrypted stores spool ciphertext only; plaintext stores spool the JSON as is.
        assert.equal(sawSpool.leaked, store === plain);
        await assert.rejects(
          store.saveOnceStream(
            k,
            (function* () {
              yield 'half';
              throw new Error('broken pipe');
            })(),
          ),
          /broken pipe/,
        );
        assert.equal(await store.exists(k), false);
      }
      if (backend.name === 'local') {
        const dir = backend.config().local.path;
        const names = await readdir(path.join(dir, 'host', 'stream'));
        assert.deepEqual(
          names.filter((n) => n.startsWith('.')),
          [],
          'no temporary file in the store',
        );
      }
      assert.deepEqual(await spoolsLeft(), []);
    });

    it(`Secrets in a page: refused without a key before they are spooled, encrypted and marked with one`, async () => {
      const secretItem = {
        metadata: { name: 'db', namespace: 'x' },
        type: 'Opaque',
        data: { password: Buffer.from(SECRET_MARKER).toString('base64') },
      };
      const list = {
        apiVersion: 'v1',
        kind: 'SecretList',
        metadata: {},
        items: [...makeItems(3), secretItem],
      };
      const k = uniqueName('secret');
      let pagesRead = 0;
      const pages = async function* (): AsyncGenerator<unknown[]> {
        for (const page of [makeItems(3), [secretItem], makeItems(2)]) {
          await Promise.resolve();
          pagesRead++;
          yield page;
        }
      };
      await assert.rejects(
        plain.saveListOnce(k, { apiVersion: 'v1', kind: 'SecretList', metadata: {} }, pages()),
        (err: unknown) => {
          assert.ok(err instanceof PlaintextSecretError);
          assert.match(err.message, /a Secret 'x\/db' at \$\.items\[3\]/);
          return true;
        },
      );
      assert.equal(pagesRead, 2, 'stopped at the page with the Secret');
      assert.equal(await plain.exists(k), false);
      // The same message saveOnce gives for the whole list.
      await assert.rejects(plain.saveOnce(k, list), /a Secret 'x\/db' at \$\.items\[3\]/);
      // Marked sensitive by the caller's test of a page.
      await assert.rejects(
        plain.saveListOnce(k, { kind: 'WidgetList' }, [makeItems(1), makeItems(1, 1)], {
          sensitive: (items) => items.some((i) => i.metadata.name === 'w-1'),
        }),
        PlaintextSecretError,
      );
      await assert.rejects(plain.saveOnceStream(k, ['x'], { sensitive: true }), PlaintextSecretError);
      // With a key: encrypted, and `sensitive` in the header exactly as saveOnce sets it.
      const saved = await encrypted.saveListOnce(
        k,
        { apiVersion: 'v1', kind: 'SecretList', metadata: {} },
        pages(),
      );
      const once = await encrypted.saveOnce(`${k}-once`, list);
      assert.equal(once.created, true);
      assert.equal(saved.info.sensitive, true);
      assert.equal(saved.info.encrypted, true);
      assert.equal((await encrypted.stat(`${k}-once`)).sensitive, true);
      assert.deepEqual(await encrypted.load(k), { ...list, items: [...list.items, ...makeItems(2)] });
      const stored = await raw.get(`host/stream-enc/${k}`);
      assert.ok(!Buffer.from(stored).includes(SECRET_MARKER));
      assert.deepEqual(await spoolsLeft(), []);
    });
  });
}

describe('backupKinds lists page by page and stores what the whole-list backup stored', () => {
  let conn: ClusterConnection;
  const kind = `Sprocket${randomBytes(3).toString('hex')}`;
  const rt = defineResource({
    group: 'stream.ks-upgrade.io',
    version: 'v1',
    kind,
    plural: `${kind.toLowerCase()}s`,
    namespaced: true,
  });
  const crd = `${rt.plural}.${rt.group}`;
  const ns = uniqueName('stream');
  before(async () => {
    conn = await devClusterConnection();
    await conn.client.createIfAbsent(CustomResourceDefinitionResource, {
      metadata: { name: crd },
      spec: {
        group: rt.group,
        scope: 'Namespaced',
        names: { kind, plural: rt.plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    } as never);
    await waitForCrdEstablished(conn.client, crd, {});
    await conn.client.create(NamespaceResource, { metadata: { name: ns } });
  });
  after(async () => {
    await conn.client.delete(CustomResourceDefinitionResource, crd).catch(() => undefined);
    await conn.client.delete(NamespaceResource, ns).catch(() => undefined);
    conn.close();
  });

  it('1,234 objects (3 pages): the same bytes as saveOnce of the listAll, on local and S3', async () => {
    await forEachLimit(
      Array.from({ length: 1234 }, (_, i) => i),
      24,
      async (i) => {
        await conn.client.create(rt, {
          metadata: { name: `s-${String(i).padStart(5, '0')}`, namespace: ns },
          spec: { i, note: `ünïcødé "${i}"` },
        } as KubeObject);
      },
    );
    const { dir, cleanup } = await tempDir('stream-kinds');
    cleanups.push(cleanup);
    const s3 = devS3Config();
    cleanups.push(() => purgeS3Prefix(s3));
    for (const config of [{ local: { path: dir } }, { local: { path: '' }, s3 }] as StorageConfig[]) {
      const store = await createResourceStore(config, env);
      const logger = createMemoryLogger();
      const ctx = createJobContext({
        job: 'stream',
        phase: 'pre-upgrade',
        cluster: { name: 'host' },
        kube: conn.client,
        store,
        config: { enabled: true, priority: 1, dynamicOptions: {} },
        logger,
      });
      const key = 'stream-sprockets';
      await backupKinds(ctx, [{ crd, key, rt }]);
      assert.ok(
        logger.entries.some((e) => e.message === `${kind}s backed up under ${key}: 1234`),
        logger.entries.map((e) => e.message).join('\n'),
      );
      // What the whole-list backup (listIfServed + saveOnce of asList) stores for the same objects.
      const whole = asList(`${rt.group}/${rt.version}`, kind, await conn.client.listIfServed(rt));
      await ctx.store.saveOnce('whole', whole);
      const [a, b] = [await ctx.store.loadRaw('whole'), await ctx.store.loadRaw(key)];
      assert.ok(Buffer.from(a).equals(Buffer.from(b)), 'byte-for-byte the same list');
      assert.equal((await ctx.store.stat(key)).sha256, (await ctx.store.stat('whole')).sha256);
      // A second run keeps the first backup.
      await backupKinds(ctx, [{ crd, key, rt }]);
      assert.ok(logger.entries.some((e) => e.message.startsWith(`${kind}s already backed up under ${key}`)));
    }
    assert.deepEqual(await spoolsLeft(), []);
  });
});
