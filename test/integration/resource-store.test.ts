// The object-level backup store on both backends: saveOnce semantics, scopes, shared keys,
// verification on every load, encryption, the plaintext-secret rule, and a second process.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { StorageConfig } from '../../src/config/types.js';
import { ValidationError } from '../../src/errors.js';
import { StorageKeyNotFound, UnsafeKeyError, createStorage, type Storage } from '../../src/storage/index.js';
import {
  ABSENT_CONTENT_TYPE,
  BackupKeyNotFound,
  BackupRecordedAbsent,
  EncryptionKeyError,
  FORMAT_MAGIC,
  IntegrityError,
  PlaintextSecretError,
  SHARED_KEYS,
  createResourceStore,
  loadEncryptionKey,
  type BackupHeader,
  type ResourceStore,
} from '../../src/store/index.js';
import { devS3Config, purgeS3Prefix, runChild, tempDir } from '../helpers/storage.js';

const KEY_HEX = randomBytes(32).toString('hex');
const OTHER_KEY_HEX = randomBytes(32).toString('hex');
const KEY_ENV = 'KS_UPGRADE_TEST_BACKUP_KEY';
const OTHER_KEY_ENV = 'KS_UPGRADE_TEST_OTHER_KEY';
const env = { ...process.env, [KEY_ENV]: KEY_HEX, [OTHER_KEY_ENV]: OTHER_KEY_HEX };
const WITH_KEY = { encryption: { keyEnv: KEY_ENV } };

const SECRET_MARKER = 'hunter2-do-not-leak-7f3a';

const secret = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'db', namespace: 'kubesphere-system' },
  type: 'Opaque',
  data: { password: Buffer.from(SECRET_MARKER).toString('base64') },
  stringData: { plain: SECRET_MARKER },
};
const kubeconfig = {
  apiVersion: 'v1',
  kind: 'Config',
  clusters: [{ name: 'member1', cluster: { server: 'https://10.0.0.1:6443' } }],
  users: [{ name: 'admin', user: { token: SECRET_MARKER } }],
  contexts: [],
};
const kubeconfigYaml = `apiVersion: v1
kind: Config
clusters:
- name: member1
  cluster: {server: 'https://10.0.0.1:6443'}
users:
- name: admin
  user: {token: ${SECRET_MARKER}}
`;
const v3Cluster = {
  apiVersion: 'cluster.kubesphere.io/v1alpha1',
  kind: 'Cluster',
  metadata: { name: 'member1' },
  spec: { connection: { type: 'direct', kubeconfig: Buffer.from(kubeconfigYaml).toString('base64') } },
};

/** Ways a job could hand over secret material, all of which must be refused in plaintext. */
const SENSITIVE_VALUES: [string, unknown][] = [
  ['a Secret', secret],
  [
    'a SecretList whose items have no kind',
    { apiVersion: 'v1', kind: 'SecretList', items: [{ ...secret, kind: undefined, apiVersion: undefined }] },
  ],
  [
    'a List holding a Secret among ConfigMaps',
    {
      apiVersion: 'v1',
      kind: 'List',
      items: [{ kind: 'ConfigMap', metadata: { name: 'x' }, data: {} }, secret],
    },
  ],
  ['a Secret nested in a custom object', { devops: { credentials: [secret] } }],
  ['a kubeconfig object', kubeconfig],
  ['kubeconfig YAML text', kubeconfigYaml],
  ['kubeconfig JSON text inside an object', { file: JSON.stringify(kubeconfig) }],
  ['a v3 Cluster with spec.connection.kubeconfig', v3Cluster],
  [
    'a v3 ClusterList',
    { apiVersion: 'cluster.kubesphere.io/v1alpha1', kind: 'ClusterList', items: [v3Cluster] },
  ],
  ['a v4 Cluster', { ...v3Cluster, apiVersion: 'cluster.kubesphere.io/v1alpha1', kind: 'Cluster' }],
];

interface Backend {
  name: string;
  config(extra?: Partial<StorageConfig>): StorageConfig;
}

const cleanups: (() => Promise<void>)[] = [];
after(() => Promise.all(cleanups.map((c) => c())));

async function localBackend(): Promise<Backend> {
  const { dir, cleanup } = await tempDir('store');
  cleanups.push(cleanup);
  return {
    name: 'local',
    config: (extra = {}) => ({ local: { path: path.join(dir, 'backups') }, ...extra }),
  };
}

function s3Backend(): Backend {
  const s3 = devS3Config();
  cleanups.push(() => purgeS3Prefix(s3));
  return { name: 's3', config: (extra = {}) => ({ local: { path: '/nonexistent' }, s3, ...extra }) };
}

async function open(backend: Backend, extra: Partial<StorageConfig> = {}): Promise<ResourceStore> {
  return createResourceStore(backend.config(extra), env);
}

function splitObject(bytes: Uint8Array): { header: BackupHeader; headerLine: string; payload: Buffer } {
  const buf = Buffer.from(bytes);
  const first = buf.indexOf(0x0a);
  const second = buf.indexOf(0x0a, first + 1);
  const headerLine = buf.subarray(first + 1, second).toString();
  return { header: JSON.parse(headerLine) as BackupHeader, headerLine, payload: buf.subarray(second + 1) };
}

function joinObject(header: BackupHeader, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${FORMAT_MAGIC}\n${JSON.stringify(header)}\n`), payload]);
}

async function expectIntegrity(p: Promise<unknown>, pattern: RegExp, storageKey: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof IntegrityError, `expected IntegrityError, got ${String(err)}`);
    assert.equal(err.name, 'IntegrityError');
    assert.match(err.message, pattern);
    assert.ok(err.message.includes(`'${storageKey}'`), err.message);
    assert.ok(!err.message.includes(SECRET_MARKER), 'no payload in error messages');
    return true;
  });
}

function storeSuite(name: string, makeBackend: () => Promise<Backend>): void {
  describe(`ResourceStore on ${name}`, () => {
    let backend: Backend;
    let raw: Storage;
    const ready = (async () => {
      backend = await makeBackend();
      raw = await createStorage(backend.config());
    })();

    it('saves and loads JSON; a missing key is BackupKeyNotFound (a StorageKeyNotFound)', async () => {
      await ready;
      const store = (await open(backend)).scope('host', 'core');
      const obj = { kind: 'ConfigMap', metadata: { name: 'ks' }, data: { a: 'b' }, n: [1, 2, 3] };
      await store.save('core.configmap', obj);
      assert.deepEqual(await store.load('core.configmap'), obj);
      assert.equal(await store.exists('core.configmap'), true);
      await assert.rejects(store.load('nope'), (err: unknown) => {
        assert.ok(err instanceof BackupKeyNotFound);
        assert.ok(err instanceof StorageKeyNotFound);
        assert.equal(err.key, 'nope');
        assert.equal(err.storageKey, 'host/core/nope');
        return true;
      });
      await assert.rejects(store.loadRaw('nope'), BackupKeyNotFound);
      assert.equal(await store.delete('core.configmap'), true);
      assert.equal(await store.delete('core.configmap'), false);
      await assert.rejects(store.save('undefined', undefined), ValidationError);
    });

    it('saveOnce writes once and afterwards returns what is stored', async () => {
      await ready;
      const store = (await open(backend)).scope('host', 'network');
      const first = await store.saveOnce('network-ippools', { items: [{ name: 'before-upgrade' }] });
      assert.deepEqual(first, { value: { items: [{ name: 'before-upgrade' }] }, created: true });
      const again = await store.saveOnce('network-ippools', { items: [{ name: 'after-upgrade' }] });
      assert.deepEqual(again, { value: { items: [{ name: 'before-upgrade' }] }, created: false });
      assert.deepEqual(await store.load('network-ippools'), { items: [{ name: 'before-upgrade' }] });
      // Another process (a retried activity) gets the same answer.
      const retried = (await open(backend)).scope('host', 'network');
      assert.equal((await retried.saveOnce('network-ippools', { x: 1 })).created, false);
      // Values round-trip through JSON in both outcomes.
      const dated = await store.saveOnce('dated', { at: new Date(0), drop: undefined });
      assert.deepEqual(dated.value, { at: '1970-01-01T00:00:00.000Z' });
    });

    it('an absent record is written once, wins over a later backup, and never loads as data', async () => {
      await ready;
      const store = (await open(backend)).scope('host', 'kubeedge');
      const record = {
        reason: 'CRD ippools.network.kubesphere.io not found',
        recordedBy: 'network pre-upgrade',
      };
      assert.equal(await store.saveAbsentOnce('ippools', record), true);
      assert.equal(await store.saveAbsentOnce('ippools', { reason: 'other', recordedBy: 'x' }), false);
      // One at a time: a second rejected promise created up front is unhandled while the first is awaited.
      for (const load of [() => store.load('ippools'), () => store.loadRaw('ippools')]) {
        await assert.rejects(load(), (err: unknown) => {
          assert.ok(err instanceof BackupRecordedAbsent, String(err));
          assert.ok(err instanceof BackupKeyNotFound, 'old callers still see "not stored"');
          assert.deepEqual(err.record, { absent: true, ...record });
          assert.match(err.message, /nothing to back up \(CRD ippools.* recorded by network pre-upgrade\)/);
          return true;
        });
      }
      // The first record of the pre-change state wins: a later saveOnce does not replace it.
      await assert.rejects(store.saveOnce('ippools', { items: [] }), BackupRecordedAbsent);
      // It is an ordinary object of the format: listed, stat'ed, verified.
      assert.equal((await store.stat('ippools')).contentType, ABSENT_CONTENT_TYPE);
      assert.deepEqual(await store.list(), ['ippools']);
      assert.equal((await store.verify('ippools')).info.contentType, ABSENT_CONTENT_TYPE);
      // A key holding a backup keeps it.
      await store.save('configmaps', { items: [] });
      assert.equal(await store.saveAbsentOnce('configmaps', record), false);
      assert.deepEqual(await store.load('configmaps'), { items: [] });
    });

    it('saveRaw/loadRaw keep bytes; saveRawOnce; YAML raw objects load parsed', async () => {
      await ready;
      const store = (await open(backend)).scope('host', 'application');
      const chart = randomBytes(300_000);
      await store.saveRaw('chart-1.0.0', chart);
      assert.ok(Buffer.from(await store.loadRaw('chart-1.0.0')).equals(chart));
      assert.equal((await store.stat('chart-1.0.0')).contentType, 'application/octet-stream');
      const once = await store.saveRawOnce('chart-2', chart);
      assert.equal(once.created, true);
      const twice = await store.saveRawOnce('chart-2', Buffer.from('other'));
      assert.equal(twice.created, false);
      assert.ok(Buffer.from(twice.value).equals(chart));
      await store.saveRaw('config.yaml', 'a: 1\nb: [x, y]\n', { contentType: 'application/yaml' });
      assert.deepEqual(await store.load('config.yaml'), { a: 1, b: ['x', 'y'] });
      await assert.rejects(store.load('chart-1.0.0'), /not JSON or YAML/);
      await store.saveRaw('empty', new Uint8Array(0));
      assert.equal((await store.loadRaw('empty')).byteLength, 0);
    });

    it('scopes isolate clusters and jobs, and cannot be escaped', async () => {
      await ready;
      const root = await open(backend);
      const a = root.scope('host', 'iam');
      const b = root.scope('host', 'devops');
      const c = root.scope('member-1.example', 'iam');
      await a.save('users', { who: 'host/iam' });
      await b.save('users', { who: 'host/devops' });
      await c.save('users', { who: 'member/iam' });
      assert.deepEqual(await a.load('users'), { who: 'host/iam' });
      assert.deepEqual(await b.load('users'), { who: 'host/devops' });
      assert.deepEqual(await c.load('users'), { who: 'member/iam' });
      await a.save('only-a', 1);
      await assert.rejects(b.load('only-a'), BackupKeyNotFound);
      await assert.rejects(c.load('only-a'), BackupKeyNotFound);
      assert.deepEqual(await a.list(), ['only-a', 'users']);
      assert.deepEqual(await b.list(), ['users']);
      assert.deepEqual(await a.list('us'), ['users']);
      assert.ok((await root.list('host/')).includes('host/iam/users'));

      for (const key of [
        '../devops/users',
        '/host/devops/users',
        'a/../../x',
        '.hidden',
        '',
        'a//b',
        'x\\y',
      ]) {
        await assert.rejects(a.load(key), UnsafeKeyError, key);
        await assert.rejects(a.save(key, 1), UnsafeKeyError, key);
      }
      await assert.rejects(a.list('../'), UnsafeKeyError);
      for (const [cluster, job] of [
        ['Host', 'iam'],
        ['host', 'IAM'],
        ['host', '_shared'],
        ['../x', 'iam'],
        ['host', 'a/b'],
        ['', 'iam'],
        ['host', 'x'.repeat(64)],
      ] as const) {
        assert.throws(() => root.scope(cluster, job), ValidationError, `${cluster}/${job}`);
      }
      assert.throws(() => a.scope('host', 'other'), ValidationError);
      assert.throws(() => root.shared(), ValidationError);
    });

    it('shared() reaches only the documented shared keys of the same cluster', async () => {
      await ready;
      const root = await open(backend, WITH_KEY);
      const core = root.scope('host', 'core');
      const gateway = root.scope('host', 'gateway');
      assert.deepEqual([...SHARED_KEYS], ['kubesphere-config', 'go-store-import']);
      const kubesphereYaml = 'authentication:\n  jwtSecret: abc\n';
      await core.shared().saveRaw('kubesphere-config', kubesphereYaml, {
        contentType: 'application/yaml',
        sensitive: true,
      });
      assert.equal(
        Buffer.from(await gateway.shared().loadRaw('kubesphere-config')).toString(),
        kubesphereYaml,
      );
      assert.deepEqual(await gateway.shared().list(), ['kubesphere-config']);
      assert.ok(await root.exists('host/_shared/kubesphere-config'));
      await assert.rejects(
        root.scope('member1', 'gateway').shared().loadRaw('kubesphere-config'),
        BackupKeyNotFound,
      );
      await assert.rejects(core.shared().save('iam-users', {}), (err: unknown) => {
        assert.ok(err instanceof UnsafeKeyError);
        assert.match(
          err.message,
          /'iam-users' is not a shared backup key; shared keys are: kubesphere-config, go-store-import/,
        );
        return true;
      });
      await assert.rejects(core.shared().load('../core/anything'), UnsafeKeyError);
    });

    it('detects a flipped byte, truncation, extra bytes and a swapped header (IntegrityError)', async () => {
      await ready;
      const store = (await open(backend)).scope('host', 'tamper');
      const value = { hello: 'world', list: Array.from({ length: 50 }, (_, i) => i) };
      for (const k of ['flip', 'cut', 'cut-header', 'long', 'a', 'b', 'json', 'hdr'])
        await store.save(k, value);
      const full = (k: string): string => `host/tamper/${k}`;

      const flip = Buffer.from(await raw.get(full('flip')));
      flip[flip.length - 5] = (flip[flip.length - 5] ?? 0) ^ 0x01;
      await raw.put(full('flip'), flip);
      await expectIntegrity(store.load('flip'), /sha256 mismatch/, full('flip'));

      const cut = Buffer.from(await raw.get(full('cut')));
      await raw.put(full('cut'), cut.subarray(0, cut.length - 10));
      await expectIntegrity(store.load('cut'), /truncated: \d+ of \d+ payload bytes/, full('cut'));
      await raw.put(full('cut-header'), cut.subarray(0, 40));
      await expectIntegrity(
        store.load('cut-header'),
        /truncated to 40 bytes, inside its header/,
        full('cut-header'),
      );

      await raw.put(
        full('long'),
        Buffer.concat([Buffer.from(await raw.get(full('long'))), Buffer.from('x')]),
      );
      await expectIntegrity(store.load('long'), /1 bytes more than/, full('long'));

      // An object copied to another key (restored to the wrong place) is not that key's backup.
      await raw.put(full('b'), await raw.get(full('a')));
      await expectIntegrity(store.load('b'), /header belongs to key 'host\/tamper\/a'/, full('b'));
      assert.deepEqual(await store.load('a'), value);

      const { header, payload } = splitObject(await raw.get(full('hdr')));
      await raw.put(full('hdr'), joinObject({ ...header, size: header.size + 1 }, payload));
      await expectIntegrity(store.load('hdr'), /truncated/, full('hdr'));
      await raw.put(full('hdr'), Buffer.from(`${FORMAT_MAGIC}\n{not json}\n{}`));
      await expectIntegrity(store.load('hdr'), /header line is not valid JSON/, full('hdr'));
      await raw.put(full('hdr'), Buffer.from(`ks-upgrade-backup/v9\n{}\n`));
      await expectIntegrity(
        store.load('hdr'),
        /format 'ks-upgrade-backup\/v9' is not supported/,
        full('hdr'),
      );
      await raw.put(full('hdr'), new Uint8Array(0));
      await expectIntegrity(store.load('hdr'), /empty/, full('hdr'));
    });

    it('refuses objects without a ks-upgrade header, such as the Go tool wrote', async () => {
      await ready;
      const store = (await open(backend)).scope('host', 'legacy');
      await raw.put(
        'host/legacy/core.cluster.kubeconfig',
        Buffer.from(JSON.stringify({ items: [SECRET_MARKER] })),
      );
      await assert.rejects(store.load('core.cluster.kubeconfig'), (err: unknown) => {
        assert.ok(err instanceof IntegrityError);
        assert.match(err.message, /has no ks-upgrade header \(it holds bare JSON/);
        assert.match(err.hint ?? '', /original Go ks-upgrade stored bare JSON/);
        assert.ok(!err.message.includes(SECRET_MARKER));
        return true;
      });
      await raw.put('host/legacy/yaml', Buffer.from('a: 1\n'));
      await expectIntegrity(store.load('yaml'), /bare text or YAML/, 'host/legacy/yaml');
      // saveOnce never overwrites an unreadable object: it reports it.
      await expectIntegrity(
        store.saveOnce('yaml', { fresh: true }),
        /no ks-upgrade header/,
        'host/legacy/yaml',
      );
    });

    it('encrypts with AES-256-GCM: round trip, no plaintext at rest, authenticated header', async () => {
      await ready;
      const root = await open(backend, WITH_KEY);
      const store = root.scope('host', 'kubeedge');
      await store.saveOnce('kubeedge-secret-list', { apiVersion: 'v1', kind: 'SecretList', items: [secret] });
      await store.save('plain-but-encrypted', { note: SECRET_MARKER });
      assert.deepEqual(await store.load('kubeedge-secret-list'), {
        apiVersion: 'v1',
        kind: 'SecretList',
        items: [secret],
      });
      assert.deepEqual(await store.load('plain-but-encrypted'), { note: SECRET_MARKER });

      const keyId = (await loadEncryptionKey({ keyEnv: KEY_ENV }, env))?.id;
      for (const k of ['kubeedge-secret-list', 'plain-but-encrypted']) {
        const bytes = Buffer.from(await raw.get(`host/kubeedge/${k}`));
        for (const needle of [SECRET_MARKER, Buffer.from(SECRET_MARKER).toString('base64'), KEY_HEX]) {
          assert.equal(
            bytes.indexOf(needle),
            -1,
            `'${needle.slice(0, 8)}…' appears in the stored bytes of ${k}`,
          );
        }
        const { header } = splitObject(bytes);
        assert.equal(header.encryption?.alg, 'AES-256-GCM');
        assert.equal(header.encryption.keyId, keyId);
        assert.equal(header.sensitive, k === 'kubeedge-secret-list');
      }
      const info = await store.stat('kubeedge-secret-list');
      assert.equal(info.encrypted, true);
      assert.equal(info.sensitive, true);

      // Fresh IV per object: the same value twice gives different ciphertexts.
      await store.save('same-1', { v: 1 });
      await store.save('same-2', { v: 1 });
      const p1 = splitObject(await raw.get('host/kubeedge/same-1'));
      const p2 = splitObject(await raw.get('host/kubeedge/same-2'));
      assert.notEqual(p1.header.encryption?.iv, p2.header.encryption?.iv);
      assert.ok(!p1.payload.equals(p2.payload));

      // Tampering that also fixes up the sha256 is caught by GCM: ciphertext, and header fields.
      const full = 'host/kubeedge/plain-but-encrypted';
      const original = splitObject(await raw.get(full));
      const flipped = Buffer.from(original.payload);
      flipped[0] = (flipped[0] ?? 0) ^ 0x80;
      const rehash = (h: BackupHeader, p: Uint8Array): BackupHeader => ({
        ...h,
        sha256: createHash('sha256').update(p).digest('hex'),
      });
      await raw.put(full, joinObject(rehash(original.header, flipped), flipped));
      await expectIntegrity(store.load('plain-but-encrypted'), /AES-GCM authentication failed/, full);
      await raw.put(
        full,
        joinObject({ ...original.header, contentType: 'application/yaml' }, original.payload),
      );
      await expectIntegrity(store.load('plain-but-encrypted'), /AES-GCM authentication failed/, full);
      await raw.put(full, joinObject({ ...original.header, sensitive: true }, original.payload));
      await expectIntegrity(store.load('plain-but-encrypted'), /AES-GCM authentication failed/, full);
    });

    it('a wrong or missing key is an EncryptionKeyError naming both key IDs', async () => {
      await ready;
      const store = (await open(backend, WITH_KEY)).scope('host', 'keys');
      await store.save('obj', { a: 1 });
      const right = (await loadEncryptionKey({ keyEnv: KEY_ENV }, env))?.id ?? '';
      const wrongStore = (await open(backend, { encryption: { keyEnv: OTHER_KEY_ENV } })).scope(
        'host',
        'keys',
      );
      const wrong = wrongStore.encryptionKeyId ?? '';
      assert.notEqual(right, wrong);
      await assert.rejects(wrongStore.load('obj'), (err: unknown) => {
        assert.ok(err instanceof EncryptionKeyError, String(err));
        assert.ok(err.message.includes(`was encrypted with key ${right}`), err.message);
        assert.ok(err.message.includes(`is ${wrong}`), err.message);
        assert.ok(err.message.includes(`storage.encryption.keyEnv ${OTHER_KEY_ENV}`), err.message);
        assert.ok(!err.message.includes(KEY_HEX) && !err.message.includes(OTHER_KEY_HEX));
        return true;
      });
      await assert.rejects(wrongStore.saveOnce('obj', { b: 2 }), EncryptionKeyError);
      const noKey = (await open(backend)).scope('host', 'keys');
      await assert.rejects(
        noKey.load('obj'),
        /encrypted with key [0-9a-f]{16}, but no encryption key is configured/,
      );
      // Verification without the key still checks size and sha256 of the ciphertext.
      assert.deepEqual((await noKey.verify('obj')).decrypted, false);
      assert.deepEqual((await store.verify('obj')).decrypted, true);
    });

    it('never writes a Secret, kubeconfig or Cluster kubeconfig in plaintext', async () => {
      await ready;
      const store = (await open(backend)).scope('host', 'secrets');
      for (const [label, value] of SENSITIVE_VALUES) {
        for (const write of [() => store.save('k', value), () => store.saveOnce('k', value)]) {
          await assert.rejects(write(), (err: unknown) => {
            assert.ok(err instanceof PlaintextSecretError, `${label}: ${String(err)}`);
            assert.match(err.hint ?? '', /storage\.encryption\.keyFile/);
            assert.match(err.hint ?? '', /storage\.encryption\.keyEnv/);
            assert.ok(!err.message.includes(SECRET_MARKER), `${label}: no secret in the message`);
            return true;
          });
        }
      }
      await assert.rejects(
        store.save('marked', { harmless: true }, { sensitive: true }),
        PlaintextSecretError,
      );
      await assert.rejects(store.saveRaw('raw-marked', 'opaque', { sensitive: true }), PlaintextSecretError);
      await assert.rejects(
        store.saveRawOnce('raw-marked', 'opaque', { sensitive: true }),
        PlaintextSecretError,
      );
      await assert.rejects(store.saveRaw('factory.kubeconfig', kubeconfigYaml), PlaintextSecretError);
      await assert.rejects(store.saveRaw('secret.json', JSON.stringify(secret)), PlaintextSecretError);
      assert.deepEqual(await store.list(), [], 'nothing was written');
      assert.equal(await store.exists('k'), false);

      // Look-alikes that hold no secret are stored as they are.
      await store.save('configmaps', {
        kind: 'ConfigMapList',
        items: [{ metadata: { name: 'a' }, data: { k: 'v' } }],
      });
      await store.save('cluster-no-kubeconfig', { ...v3Cluster, spec: { connection: { type: 'proxy' } } });
      await store.save('mentions', { text: 'kind: Secret is a Kubernetes type; {{ .Values.x }}' });
      assert.deepEqual(await store.list(), ['cluster-no-kubeconfig', 'configmaps', 'mentions']);

      // With a key, the same values are stored, encrypted and marked sensitive.
      const keyed = (await open(backend, WITH_KEY)).scope('host', 'secrets-keyed');
      for (const [i, [, value]] of SENSITIVE_VALUES.entries()) {
        await keyed.saveOnce(`v${i}`, value);
        assert.deepEqual(await keyed.load(`v${i}`), JSON.parse(JSON.stringify(value)));
        const info = await keyed.stat(`v${i}`);
        assert.ok(info.encrypted && info.sensitive);
        assert.equal(Buffer.from(await raw.get(`host/secrets-keyed/v${i}`)).indexOf(SECRET_MARKER), -1);
      }
    });

    it('an object written by one process is read and verified by another', async () => {
      await ready;
      const storage = backend.config(WITH_KEY);
      const childEnv = { ...env };
      const wrote = await runChild(
        {
          mode: 'store-write',
          storage,
          cluster: 'host',
          job: 'xproc',
          objects: [
            { key: 'from-child', value: { written: 'by the child', secret } },
            { key: 'marked', value: { x: 1 }, sensitive: true },
          ],
        },
        childEnv,
      );
      assert.equal(wrote.code, 0, wrote.stderr);
      const store = (await createResourceStore(storage, env)).scope('host', 'xproc');
      assert.deepEqual(await store.load('from-child'), { written: 'by the child', secret });
      assert.equal((await store.verify('marked')).info.sensitive, true);

      await store.saveOnce('from-parent', { written: 'by the parent' });
      const read = await runChild(
        { mode: 'store-read', storage, cluster: 'host', job: 'xproc', keys: ['from-parent', 'from-child'] },
        childEnv,
      );
      assert.equal(read.code, 0, read.stderr);
      assert.deepEqual(JSON.parse(read.stdout), {
        'from-parent': { written: 'by the parent' },
        'from-child': { written: 'by the child', secret },
      });
      // The child's second saveOnce of the same keys changes nothing.
      const again = await runChild(
        {
          mode: 'store-write',
          storage,
          cluster: 'host',
          job: 'xproc',
          objects: [{ key: 'from-parent', value: 2 }],
        },
        childEnv,
      );
      assert.match(again.stdout, /"created":false/);
      assert.deepEqual(await store.load('from-parent'), { written: 'by the parent' });
    });
  });
}

storeSuite('local storage', localBackend);
storeSuite('S3 (versitygw)', () => Promise.resolve(s3Backend()));

describe('encryption keys', () => {
  it('loads keyFile (raw, hex, base64) and keyEnv (hex, base64) to the same key ID', async () => {
    const { dir, cleanup } = await tempDir('keys');
    try {
      const key = randomBytes(32);
      const files = {
        raw: key,
        hex: Buffer.from(`${key.toString('hex')}\n`),
        base64: Buffer.from(key.toString('base64')),
        base64url: Buffer.from(key.toString('base64url')),
      };
      const ids = new Set<string>();
      for (const [name, content] of Object.entries(files)) {
        const file = path.join(dir, name);
        await writeFile(file, content, { mode: 0o400 });
        const loaded = await loadEncryptionKey({ keyFile: file });
        assert.ok(loaded);
        ids.add(loaded.id);
        assert.equal(JSON.stringify(loaded), `{"id":"${loaded.id}"}`, 'the key itself never serialises');
        assert.ok(!String(loaded).includes(key.toString('hex')));
      }
      for (const value of [key.toString('hex'), key.toString('base64')]) {
        ids.add((await loadEncryptionKey({ keyEnv: 'K' }, { K: value }))?.id ?? '');
      }
      assert.equal(ids.size, 1);
      assert.match([...ids][0] ?? '', /^[0-9a-f]{16}$/);
      assert.equal(await loadEncryptionKey(undefined), undefined);
      assert.equal(await loadEncryptionKey({}), undefined);
    } finally {
      await cleanup();
    }
  });

  it('rejects unusable keys with an EncryptionKeyError naming the setting', async () => {
    const { dir, cleanup } = await tempDir('badkeys');
    try {
      const cases: [string, Buffer][] = [
        ['short', randomBytes(16)],
        ['long', randomBytes(64)],
        ['password', Buffer.from('correct horse battery staple!!!!')], // 32 printable characters
        ['hex16', Buffer.from(randomBytes(16).toString('hex'))],
        ['empty', Buffer.alloc(0)],
      ];
      for (const [name, content] of cases) {
        const file = path.join(dir, name);
        await writeFile(file, content);
        await assert.rejects(loadEncryptionKey({ keyFile: file }), (err: unknown) => {
          assert.ok(err instanceof EncryptionKeyError, `${name}: ${String(err)}`);
          assert.ok(err.message.includes(`storage.encryption.keyFile ${file}`), err.message);
          assert.match(err.hint ?? '', /head -c 32 \/dev\/urandom/);
          return true;
        });
      }
      await assert.rejects(
        loadEncryptionKey({ keyFile: path.join(dir, 'missing') }),
        /cannot read storage\.encryption\.keyFile .*ENOENT/,
      );
      await assert.rejects(
        loadEncryptionKey({ keyEnv: 'NOPE' }, {}),
        /keyEnv NOPE: environment variable NOPE is not set/,
      );
      await assert.rejects(
        loadEncryptionKey({ keyEnv: 'K' }, { K: 'abc' }),
        /keyEnv K: the value is not 64 hex/,
      );
      await assert.rejects(
        loadEncryptionKey({ keyEnv: 'K', keyFile: '/x' }, { K: KEY_HEX }),
        /sets both keyFile and keyEnv/,
      );
      await assert.rejects(
        createResourceStore({ local: { path: dir }, encryption: { keyEnv: 'NOPE' } }, {}),
        EncryptionKeyError,
      );
    } finally {
      await cleanup();
    }
  });
});
