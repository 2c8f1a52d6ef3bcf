// One contract for every Storage backend (design §3): the same suite runs against LocalStorage on a
// temp dir and S3Storage on the real dev S3 server (versitygw), plus what only one backend has.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DeleteBucketCommand } from '@aws-sdk/client-s3';
import type { S3StorageConfig } from '../../src/config/types.js';
import { ValidationError } from '../../src/errors.js';
import {
  KeyConflictError,
  LocalStorage,
  S3Storage,
  StorageKeyNotFound,
  StorageUnavailableError,
  UnsafeKeyError,
  createStorage,
  type Storage,
} from '../../src/storage/index.js';
import { devEnv, uniqueName } from '../helpers/env.js';
import { devS3Client } from '../helpers/s3.js';
import { MIB, devS3Config, purgeS3Prefix, runChild, tempDir } from '../helpers/storage.js';

interface Backend {
  name: string;
  /** A fresh, empty storage (own temp dir or own S3 prefix). */
  create(): Promise<Storage>;
  /** A second instance over the same data, as another process would open it. */
  reopen(storage: Storage): Storage;
  /** The StorageConfig that opens `storage` in a child process. */
  childConfig(storage: Storage): unknown;
  /**
   * Whether conditional create is atomic across processes. versitygw 1.7.0 evaluates
   * If-None-Match before writing (backend/posix/posix.go, PutObjectWithPostFunc), so concurrent
   * writers from several processes can all "win"; AWS S3 does not have that gap.
   */
  crossProcessAtomicCreate: true | string;
  cleanup(): Promise<void>;
}

const UNSAFE_KEYS = [
  '',
  '/abs',
  '../escape',
  'a/../../escape',
  'a/./b',
  'a//b',
  'trailing/',
  'back\\slash',
  'nul\u0000byte',
  'new\nline',
  '.hidden',
  'a/.ks-upgrade-tmp-1234',
  'x'.repeat(300),
];

async function expectNotFound(p: Promise<unknown>, key: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StorageKeyNotFound, `expected StorageKeyNotFound, got ${String(err)}`);
    assert.equal(err.key, key);
    assert.match(err.message, new RegExp(`'${key}' not found`));
    return true;
  });
}

function storageContract(backend: Backend): void {
  describe(`Storage contract: ${backend.name}`, () => {
    after(() => backend.cleanup());

    it('round-trips binary, empty and text objects byte for byte', async () => {
      const s = await backend.create();
      const bin = randomBytes(256 * 1024);
      await s.put('bin/object.bin', bin);
      await s.put('empty', new Uint8Array(0));
      await s.put('deep/er/still/text.json', Buffer.from('{"a":1}\n'));
      assert.deepEqual(Buffer.from(await s.get('bin/object.bin')), bin);
      assert.equal((await s.get('empty')).byteLength, 0);
      assert.equal(Buffer.from(await s.get('deep/er/still/text.json')).toString(), '{"a":1}\n');
      assert.equal(await s.exists('empty'), true);
      // Another instance (another process, in production) sees the same bytes.
      assert.deepEqual(Buffer.from(await backend.reopen(s).get('bin/object.bin')), bin);
    });

    it('stores 20 MiB (multipart on S3) and reads it back intact', async () => {
      const s = await backend.create();
      const big = randomBytes(20 * MIB);
      await s.put('big/blob', big);
      assert.ok(Buffer.from(await s.get('big/blob')).equals(big));
      const other = randomBytes(20 * MIB + 17);
      assert.equal(await s.putIfAbsent('big/once', other), true);
      assert.equal(await s.putIfAbsent('big/once', big), false);
      assert.ok(Buffer.from(await s.get('big/once')).equals(other));
      await s.delete('big/blob');
      await s.delete('big/once');
    });

    it('overwrites with put', async () => {
      const s = await backend.create();
      await s.put('k', Buffer.from('old'));
      await s.put('k', Buffer.from('new, and longer'));
      assert.equal(Buffer.from(await s.get('k')).toString(), 'new, and longer');
      await s.put('k', Buffer.from('x'));
      assert.equal(Buffer.from(await s.get('k')).toString(), 'x');
    });

    it('putIfAbsent creates once, then refuses and leaves the content unchanged', async () => {
      const s = await backend.create();
      assert.equal(await s.putIfAbsent('once/key', Buffer.from('first')), true);
      assert.equal(await s.putIfAbsent('once/key', Buffer.from('second')), false);
      assert.equal(await backend.reopen(s).putIfAbsent('once/key', Buffer.from('third')), false);
      assert.equal(Buffer.from(await s.get('once/key')).toString(), 'first');
      await s.put('once/put-first', Buffer.from('put'));
      assert.equal(await s.putIfAbsent('once/put-first', Buffer.from('nope')), false);
      assert.equal(Buffer.from(await s.get('once/put-first')).toString(), 'put');
    });

    it('concurrent putIfAbsent in one process: exactly one winner, its bytes stored', async () => {
      const s = await backend.create();
      const contenders = Array.from({ length: 16 }, (_, i) => ({
        storage: i % 2 === 0 ? s : backend.reopen(s),
        payload: Buffer.concat([Buffer.from(`writer-${i}:`), randomBytes(100_000)]),
      }));
      const results = await Promise.all(contenders.map((c) => c.storage.putIfAbsent('race/key', c.payload)));
      const winners = results.flatMap((created, i) => (created ? [i] : []));
      assert.equal(winners.length, 1, `winners: ${winners.join(',')}`);
      const winner = contenders[winners[0] ?? -1];
      assert.ok(winner);
      assert.ok(Buffer.from(await s.get('race/key')).equals(winner.payload));
    });

    it(
      'concurrent putIfAbsent from 6 processes: exactly one winner',
      typeof backend.crossProcessAtomicCreate === 'string' ? { todo: backend.crossProcessAtomicCreate } : {},
      async () => {
        const s = await backend.create();
        const startAt = Date.now() + 4000; // every child has loaded tsx and the SDK by then
        const outs = await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            runChild({
              mode: 'race',
              storage: backend.childConfig(s),
              key: 'xrace/key',
              startAt,
              payload: `process-${i}-${'x'.repeat(200_000)}`,
            }),
          ),
        );
        const created = outs.map((o) => {
          assert.equal(o.code, 0, o.stderr);
          return (JSON.parse(o.stdout.trim()) as { created: boolean }).created;
        });
        assert.equal(created.filter(Boolean).length, 1, `created: ${created.join(',')}`);
        const stored = Buffer.from(await s.get('xrace/key')).toString();
        assert.match(stored, new RegExp(`^process-${created.indexOf(true)}-`));
      },
    );

    it('a missing key: get → StorageKeyNotFound, exists → false, delete → false', async () => {
      const s = await backend.create();
      await expectNotFound(s.get('no/such/key'), 'no/such/key');
      assert.equal(await s.exists('no/such/key'), false);
      assert.equal(await s.delete('no/such/key'), false);
      // A "folder" of other keys is not an object either.
      await s.put('folder/child', Buffer.from('x'));
      await expectNotFound(s.get('folder'), 'folder');
      assert.equal(await s.exists('folder'), false);
      assert.equal(await s.delete('folder'), false);
      assert.equal(await s.exists('folder/child'), true);
    });

    it('delete is idempotent', async () => {
      const s = await backend.create();
      await s.put('del/me', Buffer.from('x'));
      assert.equal(await s.delete('del/me'), true);
      assert.equal(await s.exists('del/me'), false);
      await expectNotFound(s.get('del/me'), 'del/me');
      assert.equal(await s.delete('del/me'), false);
      // Re-creatable after delete, also conditionally.
      assert.equal(await s.putIfAbsent('del/me', Buffer.from('again')), true);
    });

    it('lists by prefix, sorted and complete across pages (1100 keys)', async () => {
      const s = await backend.create();
      const many = Array.from({ length: 1100 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
      for (let i = 0; i < many.length; i += 50) {
        await Promise.all(many.slice(i, i + 50).map((k) => s.put(k, Buffer.from(k))));
      }
      const others = ['a/b/one', 'a/b/two', 'a/bc/three', 'a/c', 'ab', 'z'];
      await Promise.all(others.map((k) => s.put(k, Buffer.from(k))));

      const listed = await s.list('many/');
      assert.equal(listed.length, many.length);
      assert.deepEqual(listed, many);
      assert.deepEqual(await s.list('a/b/'), ['a/b/one', 'a/b/two']);
      // A prefix is a plain string prefix, not a folder.
      assert.deepEqual(await s.list('a/b'), ['a/b/one', 'a/b/two', 'a/bc/three']);
      assert.deepEqual(await s.list('a'), ['a/b/one', 'a/b/two', 'a/bc/three', 'a/c', 'ab']);
      assert.deepEqual(await s.list('nothing/'), []);
      const all = await s.list('');
      assert.equal(all.length, many.length + others.length);
      assert.deepEqual(all, [...all].sort());
    });

    it('rejects unsafe keys in every operation with UnsafeKeyError naming the key', async () => {
      const s = await backend.create();
      for (const key of UNSAFE_KEYS) {
        const ops: [string, () => Promise<unknown>][] = [
          ['put', () => s.put(key, Buffer.from('x'))],
          ['putIfAbsent', () => s.putIfAbsent(key, Buffer.from('x'))],
          ['get', () => s.get(key)],
          ['exists', () => s.exists(key)],
          ['delete', () => s.delete(key)],
        ];
        for (const [op, run] of ops) {
          await assert.rejects(
            run(),
            (err: unknown) => {
              assert.ok(err instanceof UnsafeKeyError, `${op}(${JSON.stringify(key)}) threw ${String(err)}`);
              assert.ok(err.message.includes(JSON.stringify(key)), err.message);
              return true;
            },
            `${op}(${JSON.stringify(key)})`,
          );
        }
      }
      for (const prefix of ['../', '/abs', 'a/../b/', 'a//']) {
        await assert.rejects(s.list(prefix), UnsafeKeyError, `list(${prefix})`);
      }
      assert.deepEqual(await s.list(''), [], 'nothing was written');
    });
  });
}

// ---- LocalStorage ----------------------------------------------------------------------------

const localDirs: (() => Promise<void>)[] = [];
storageContract({
  name: 'LocalStorage',
  async create() {
    const { dir, cleanup } = await tempDir('contract');
    localDirs.push(cleanup);
    return new LocalStorage(path.join(dir, 'root'));
  },
  reopen: (s) => new LocalStorage((s as LocalStorage).root),
  childConfig: (s) => ({ local: { path: (s as LocalStorage).root } }),
  crossProcessAtomicCreate: true,
  async cleanup() {
    await Promise.all(localDirs.map((c) => c()));
  },
});

// ---- S3Storage -------------------------------------------------------------------------------

const s3Configs = new Map<Storage, S3StorageConfig>();
storageContract({
  name: 'S3Storage (versitygw)',
  create() {
    // A small threshold so the 20 MiB objects go up in parts.
    const config = devS3Config({ prefix: `${uniqueName('contract')}/`, multipartThreshold: 1 * MIB });
    const s = new S3Storage(config);
    s3Configs.set(s, config);
    return Promise.resolve(s);
  },
  reopen(s) {
    const config = s3Configs.get(s);
    assert.ok(config);
    return new S3Storage(config);
  },
  childConfig: (s) => ({ local: { path: '/nonexistent' }, s3: s3Configs.get(s) }),
  crossProcessAtomicCreate:
    'versitygw 1.7.0 checks If-None-Match before it writes (not atomically); AWS S3 is atomic',
  async cleanup() {
    for (const config of s3Configs.values()) await purgeS3Prefix(config);
  },
});

describe('LocalStorage specifics', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(() => Promise.all(cleanups.map((c) => c())));
  async function fresh(): Promise<{ dir: string; s: LocalStorage }> {
    const { dir, cleanup } = await tempDir('local');
    cleanups.push(cleanup);
    return { dir, s: new LocalStorage(path.join(dir, 'root', 'nested')) };
  }

  it('creates the root and sub-folders 0700 and files 0600', async () => {
    const { s } = await fresh();
    const previous = process.umask(0o022);
    try {
      await s.put('c1/core/obj', Buffer.from('x'));
      await s.putIfAbsent('c1/iam/once', Buffer.from('y'));
    } finally {
      process.umask(previous);
    }
    for (const d of [
      s.root,
      path.join(s.root, 'c1'),
      path.join(s.root, 'c1/core'),
      path.join(s.root, 'c1/iam'),
    ]) {
      assert.equal((await stat(d)).mode & 0o777, 0o700, d);
    }
    for (const f of ['c1/core/obj', 'c1/iam/once']) {
      assert.equal((await stat(path.join(s.root, f))).mode & 0o777, 0o600, f);
    }
  });

  it('never lists or addresses temporary files, and leaves none behind', async () => {
    const { s } = await fresh();
    await s.put('job/a', Buffer.from('a'));
    // What a SIGKILLed writer leaves behind.
    await writeFile(path.join(s.root, 'job', '.ks-upgrade-tmp-deadbeef'), 'torn');
    assert.deepEqual(await s.list(''), ['job/a']);
    assert.deepEqual(await s.list('job/'), ['job/a']);
    await assert.rejects(s.get('job/.ks-upgrade-tmp-deadbeef'), UnsafeKeyError);
    await s.put('job/a', Buffer.from('b'));
    assert.equal(await s.putIfAbsent('job/b', Buffer.from('b')), true);
    assert.equal(await s.putIfAbsent('job/b', Buffer.from('c')), false);
    const names = await readdir(path.join(s.root, 'job'));
    assert.deepEqual(names.sort(), ['.ks-upgrade-tmp-deadbeef', 'a', 'b']);
  });

  it('refuses keys that resolve outside the root through a symlink', async () => {
    const { dir, s } = await fresh();
    const outside = path.join(dir, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(path.join(outside, 'secret'), 'outside data');
    await s.put('inside/x', Buffer.from('x'));
    await symlink(outside, path.join(s.root, 'link'));
    await symlink(path.join(outside, 'secret'), path.join(s.root, 'inside', 'filelink'));
    for (const run of [
      () => s.get('link/secret'),
      () => s.exists('link/secret'),
      () => s.put('link/new', Buffer.from('x')),
      () => s.putIfAbsent('link/deeper/new', Buffer.from('x')),
      () => s.get('inside/filelink'),
      () => s.list('link/'),
    ]) {
      await assert.rejects(run(), (err: unknown) => {
        assert.ok(err instanceof UnsafeKeyError, String(err));
        assert.match(err.message, /symlink that resolves outside the root/);
        return true;
      });
    }
    await assert.rejects(lstat(path.join(outside, 'new')), { code: 'ENOENT' });
    await assert.rejects(lstat(path.join(outside, 'deeper')), { code: 'ENOENT' });
    // The listing does not follow the symlinks either.
    assert.deepEqual(await s.list(''), ['inside/x']);
  });

  it('reports a key that is both an object and a folder as a KeyConflictError', async () => {
    const { s } = await fresh();
    await s.put('a/b', Buffer.from('object'));
    await assert.rejects(s.put('a/b/c', Buffer.from('x')), KeyConflictError);
    await s.put('d/e/f', Buffer.from('x'));
    await assert.rejects(s.put('d/e', Buffer.from('x')), KeyConflictError);
    await assert.rejects(s.putIfAbsent('d/e', Buffer.from('x')), KeyConflictError);
  });

  it('createStorage picks local without storage.s3', async () => {
    const { dir } = await fresh();
    const s = await createStorage({ local: { path: dir } });
    assert.ok(s instanceof LocalStorage);
    assert.equal(s.location, `local:${dir}`);
    await assert.rejects(createStorage({ local: { path: ' ' } }), ValidationError);
  });
});

describe('S3Storage specifics', () => {
  const purge: S3StorageConfig[] = [];
  after(async () => {
    for (const c of purge) await purgeS3Prefix(c);
  });

  it('keeps keys under the configured prefix and strips it in listings', async () => {
    const shared = uniqueName('pfx');
    const a = devS3Config({ prefix: `${shared}/a/` });
    const b = devS3Config({ prefix: `${shared}/b` }); // normalised to end with "/"
    purge.push(a, b);
    const sa = new S3Storage(a);
    const sb = new S3Storage(b);
    assert.equal(sb.prefix, `${shared}/b/`);
    await sa.put('k', Buffer.from('a'));
    await sb.put('k', Buffer.from('b'));
    assert.deepEqual(await sa.list(''), ['k']);
    assert.equal(Buffer.from(await sb.get('k')).toString(), 'b');
    const whole = new S3Storage(devS3Config({ prefix: `${shared}/` }));
    assert.deepEqual(await whole.list(''), ['a/k', 'b/k']);
  });

  it('a missing bucket is a StorageUnavailableError with the fix; createBucket: true creates it', async () => {
    const bucket = uniqueName('ksu-missing');
    const missing = new S3Storage(devS3Config({ bucket, prefix: '' }));
    for (const run of [
      () => missing.put('k', Buffer.from('x')),
      () => missing.get('k'),
      () => missing.exists('k'),
      () => missing.list(''),
      () => missing.putIfAbsent('k', Buffer.from('x')),
    ]) {
      await assert.rejects(run(), (err: unknown) => {
        assert.ok(err instanceof StorageUnavailableError, String(err));
        assert.match(err.message, new RegExp(`bucket '${bucket}' does not exist`));
        assert.equal(err.hint, `create bucket '${bucket}' or set storage.s3.createBucket: true`);
        return true;
      });
    }
    const creating = new S3Storage(devS3Config({ bucket, prefix: 'p/', createBucket: true }));
    try {
      // Concurrent first writes create the bucket once and all land.
      await Promise.all(['a', 'b', 'c'].map((k) => creating.put(k, Buffer.from(k))));
      assert.deepEqual(await creating.list(''), ['a', 'b', 'c']);
      assert.equal(Buffer.from(await missing.get('p/a')).toString(), 'a');
    } finally {
      for (const k of ['a', 'b', 'c']) await creating.delete(k);
      await devS3Client().send(new DeleteBucketCommand({ Bucket: bucket }));
    }
  });

  it('a missing key on a missing bucket with createBucket: true reads as absent', async () => {
    const bucket = uniqueName('ksu-lazy');
    const s = new S3Storage(devS3Config({ bucket, prefix: '', createBucket: true }));
    try {
      assert.equal(await s.exists('nothing'), false);
      await expectNotFound(s.get('nothing'), 'nothing');
    } finally {
      await devS3Client().send(new DeleteBucketCommand({ Bucket: bucket }));
    }
  });

  it('wrong credentials give a clear error that names the settings, not the secret', async () => {
    const env = devEnv();
    const cases: Partial<S3StorageConfig>[] = [
      { secretAccessKey: 'definitely-not-the-secret' },
      { accessKeyID: 'no-such-access-key', secretAccessKey: 'definitely-not-the-secret' },
    ];
    for (const overrides of cases) {
      const s = new S3Storage(devS3Config(overrides));
      for (const run of [() => s.put('k', Buffer.from('x')), () => s.get('k'), () => s.list('')]) {
        await assert.rejects(run(), (err: unknown) => {
          assert.ok(err instanceof StorageUnavailableError, String(err));
          assert.match(err.message, /S3 refused to/);
          assert.match(err.hint ?? '', /storage\.s3\.accessKeyID\/secretAccessKey/);
          const text = `${err.message} ${err.hint ?? ''} ${s.location}`;
          assert.ok(!text.includes('definitely-not-the-secret'));
          assert.ok(!text.includes(env.s3SecretAccessKey));
          assert.equal(err.cause, undefined, 'SDK errors carry the access key and string to sign');
          return true;
        });
      }
    }
  });

  it('reads credentials from credentialsFile, then the environment; a bad file names the file', async () => {
    const env = devEnv();
    const { dir, cleanup } = await tempDir('creds');
    try {
      const file = path.join(dir, 'creds.yaml');
      await writeFile(file, `accessKeyID: ${env.s3AccessKeyId}\nsecretAccessKey: ${env.s3SecretAccessKey}\n`);
      const inline = devS3Config();
      purge.push(inline);
      const viaFile = {
        ...inline,
        accessKeyID: undefined,
        secretAccessKey: undefined,
        credentialsFile: file,
      };
      await new S3Storage(viaFile).put('k', Buffer.from('file creds'));

      // No inline keys, no file: the SDK default chain, here AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
      assert.ok(process.env.AWS_ACCESS_KEY_ID, 'npm test exports the dev credentials');
      const viaEnv = { ...viaFile, credentialsFile: undefined };
      assert.equal(Buffer.from(await new S3Storage(viaEnv).get('k')).toString(), 'file creds');

      const missing = path.join(dir, 'nope.yaml');
      assert.throws(
        () => new S3Storage({ ...viaFile, credentialsFile: missing }),
        (err: unknown) => {
          assert.ok(err instanceof ValidationError);
          assert.match(err.message, new RegExp(`credentialsFile ${missing}: ENOENT`));
          return true;
        },
      );
      const incomplete = path.join(dir, 'incomplete.json');
      await writeFile(incomplete, JSON.stringify({ accessKeyID: 'only-the-id' }));
      assert.throws(
        () => new S3Storage({ ...viaFile, credentialsFile: incomplete }),
        /has no secretAccessKey/,
      );
      const garbage = path.join(dir, 'garbage.yaml');
      await writeFile(garbage, 'secretAccessKey: [unclosed-secret-value');
      assert.throws(
        () => new S3Storage({ ...viaFile, credentialsFile: garbage }),
        (err: unknown) => err instanceof ValidationError && !err.message.includes('unclosed-secret-value'),
      );
      await assert.rejects(
        createStorage({ local: { path: dir }, s3: { ...viaFile, credentialsFile: missing } }),
      );
    } finally {
      await cleanup();
    }
  });

  it('builds endpoint URLs and a location without credentials', () => {
    const host = new S3Storage(
      devS3Config({ endpoint: 'minio.example:9000', disableSSL: true, prefix: 'p/' }),
    );
    assert.equal(host.location, 's3://ks-upgrade-test/p/ (http://minio.example:9000)');
    const tls = new S3Storage(devS3Config({ endpoint: 'minio.example:9000', disableSSL: false, prefix: '' }));
    assert.equal(tls.location, 's3://ks-upgrade-test/ (https://minio.example:9000)');
    const url = new S3Storage(devS3Config({ endpoint: 'http://user:pw@s3.local:1234/', prefix: '' }));
    assert.equal(url.location, 's3://ks-upgrade-test/ (http://s3.local:1234)');
    const aws = new S3Storage(devS3Config({ endpoint: '', prefix: '' }));
    assert.equal(aws.location, 's3://ks-upgrade-test/');
  });

  it('an unreachable endpoint is a StorageUnavailableError naming the endpoint', async () => {
    const s = new S3Storage(devS3Config({ endpoint: 'http://127.0.0.1:9' }));
    await assert.rejects(s.get('k'), (err: unknown) => {
      assert.ok(err instanceof StorageUnavailableError, String(err));
      assert.match(err.message, /cannot reach S3/);
      assert.match(err.hint ?? '', /127\.0\.0\.1:9/);
      return true;
    });
  });
});
