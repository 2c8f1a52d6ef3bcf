// `ks-upgrade backups import --from-go` as an operator runs it (the real bin script, a child
// process), from a Go-layout store written by test/helpers/go-store.ts: in a local directory and
// in the dev S3 server. `backups list` on such a store.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import { GO_KEY_RULES, type ImportItem, type ImportReport } from '../../src/gostore/index.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { devEnv, repoRoot, uniqueName } from '../helpers/env.js';
import {
  GO_KEYS,
  dirDigest,
  s3Digest,
  syntheticGoStore,
  writeGoStoreDir,
  writeGoStoreS3,
  type GoStore,
} from '../helpers/go-store.js';
import { purgeS3Prefix, devS3Config, tempDir } from '../helpers/storage.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/ks-upgrade.js'), 'backups', ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      // No S3 credentials unless a test gives them: they must come from a file or this environment.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

function report(run: Run): ImportReport {
  assert.ok(run.stdout.trim().startsWith('{'), run.stdout + run.stderr);
  return JSON.parse(run.stdout) as ImportReport;
}

const byKey = (r: ImportReport): Map<string, ImportItem> => new Map(r.items.map((i) => [i.goKey, i]));

/** The job the helper's (reference-derived) key index gives a key. */
function expectedJob(key: string): string | undefined {
  return GO_KEYS.find((s) => (typeof s.key === 'string' ? s.key === key : s.key(key)))?.job;
}

async function payloads(store: ResourceStore, cluster: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await store.list(`${cluster}/`)) {
    const [, scope = '', ...rest] = key.split('/');
    const scoped = scope === '_shared' ? store.scope(cluster, 'core').shared() : store.scope(cluster, scope);
    out.set(key, Buffer.from(await scoped.loadRaw(rest.join('/'))).toString('base64'));
  }
  return out;
}

describe('ks-upgrade backups import --from-go', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let goDir: string;
  let goStore: GoStore;
  let keyFile: string;
  let config: (root: string) => Promise<string>;

  before(async () => {
    ({ dir, cleanup } = await tempDir('go-import'));
    goDir = path.join(dir, 'go-store');
    goStore = syntheticGoStore();
    goStore.set('factory.kubeconfig', Buffer.from('apiVersion: v1\nkind: Config\nclusters: []\n'));
    await writeGoStoreDir(goDir, goStore);
    keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o400 });
    config = async (root) => {
      const file = path.join(dir, `${path.basename(root)}.yaml`);
      await writeFile(
        file,
        `storage:\n  local:\n    path: ${root}\n  encryption:\n    keyFile: ${keyFile}\n`,
      );
      return file;
    };
  });
  after(() => cleanup());

  /** `backups import` of a local Go store into the encrypted local store at `root`. */
  const importDir = async (from: string, root: string, ...extra: string[]): Promise<Run> =>
    cli(['import', '--from-go', from, '--cluster', 'host', '--config', await config(root), ...extra]);

  it('imports every key of a local Go store into <cluster>/<job>/, encrypted, and changes nothing there', async () => {
    // The helper's store has a key of every rule of the table.
    for (const r of GO_KEY_RULES) {
      assert.ok(
        [...goStore.keys()].some((k) =>
          r.match ? r.match(k, { chartNames: new Set(['appv-nginx-1']) }) : k === r.key,
        ),
        `no key for ${r.key}`,
      );
    }
    const before = await dirDigest(goDir);
    const root = path.join(dir, 'ours');
    const run = await importDir(goDir, root, '--json');
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const r = report(run);
    assert.deepEqual(r.counts, { imported: goStore.size - 2, skipped: 2, refused: 0, failed: 0 });
    const items = byKey(r);
    assert.match(items.get('notification-adapter')?.reason ?? '', /did not exist/);
    assert.match(items.get('factory.kubeconfig')?.reason ?? '', /no job reads it/);
    for (const item of r.items.filter((i) => i.outcome === 'imported')) {
      const job = expectedJob(item.goKey);
      assert.equal(item.job, job, item.goKey);
      const key =
        item.goKey === 'kubesphere-config'
          ? 'host/_shared/kubesphere-config'
          : item.goKey === 'notificationConfigResource'
            ? 'host/whizard-notification/notificationManagerResource'
            : `host/${job ?? ''}/${item.goKey}`;
      assert.equal(item.key, key);
    }
    assert.deepEqual(await dirDigest(goDir), before, 'the Go store is unchanged');

    const store = await createResourceStore({ local: { path: root }, encryption: { keyFile } });
    const core = store.scope('host', 'core');
    // Bytes kept as the Go tool wrote them (no header there; header, sha256 and encryption here).
    assert.deepEqual(
      Buffer.from(await core.loadRaw('core.cluster.kubeconfig')),
      goStore.get('core.cluster.kubeconfig'),
    );
    const info = await core.stat('core.cluster.kubeconfig');
    assert.ok(info.encrypted && info.sensitive);
    assert.equal((await core.stat('core-workspace.tenant.kubesphere.io.v1alpha1')).sensitive, false);
    assert.ok((await core.shared().stat('kubesphere-config')).sensitive);
    assert.deepEqual(
      (await store.scope('host', 'iam').stat('iam-users.iam.kubesphere.io')).contentType,
      'application/json',
    );
    assert.deepEqual(await store.scope('host', 'devops').load('member1-argocd-devops-values'), {});
    assert.equal(
      (await store.scope('host', 'application').stat('appv-nginx-1')).contentType,
      'application/gzip',
    );
    assert.equal(
      Buffer.from(await store.scope('host', 'vector').loadRaw('vector-done')).toString(),
      '2025-04-23 08:00:00.1 +0000 UTC',
    );
    assert.ok(!(await store.exists('host/whizard-notification/notification-adapter')));
    assert.ok(!(await store.exists('host/core/factory.kubeconfig')));

    // A second run imports nothing and changes nothing.
    const keys = await store.list();
    const stats = await Promise.all(keys.map((k) => store.stat(k)));
    const again = await importDir(goDir, root);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(
      again.stdout,
      new RegExp(`^imported 0, skipped ${goStore.size}, refused 0, failed 0 of ${goStore.size} object`, 'm'),
    );
    assert.match(
      again.stdout,
      /^SKIPPED {6}core\.cluster\.kubeconfig -> host\/core\/core\.cluster\.kubeconfig: already in our store, identical$/m,
    );
    assert.deepEqual(await store.list(), keys);
    assert.deepEqual(await Promise.all(keys.map((k) => store.stat(k))), stats);
    assert.deepEqual(await dirDigest(goDir), before);
  });

  it('reads the Go store from S3 (GET and LIST only) with credentials from the environment or a file', async () => {
    const env = devEnv();
    const s3 = devS3Config();
    const prefix = `${uniqueName('go-store')}/`;
    try {
      await writeGoStoreS3(env.s3Bucket, prefix, goStore);
      const before = await s3Digest(env.s3Bucket, prefix);
      const s3Flags = [
        '--from-go',
        `s3://${env.s3Bucket}/${prefix}`,
        '--go-endpoint',
        env.s3Endpoint,
        '--go-region',
        env.s3Region,
        '--go-path-style',
      ];
      const root = path.join(dir, 'from-s3');
      const viaEnv = await cli(
        ['import', ...s3Flags, '--cluster', 'host', '--config', await config(root), '--json'],
        {
          AWS_ACCESS_KEY_ID: env.s3AccessKeyId,
          AWS_SECRET_ACCESS_KEY: env.s3SecretAccessKey,
        },
      );
      assert.equal(viaEnv.code, 0, viaEnv.stdout + viaEnv.stderr);
      assert.deepEqual(report(viaEnv).counts, {
        imported: goStore.size - 2,
        skipped: 2,
        refused: 0,
        failed: 0,
      });
      assert.ok(!viaEnv.stdout.includes(env.s3SecretAccessKey));
      assert.deepEqual(await s3Digest(env.s3Bucket, prefix), before, 'the bucket is unchanged');

      // Same objects, same payloads as the import from the local directory.
      const local = await createResourceStore({
        local: { path: path.join(dir, 'ours') },
        encryption: { keyFile },
      });
      const fromS3 = await createResourceStore({ local: { path: root }, encryption: { keyFile } });
      assert.deepEqual(await payloads(fromS3, 'host'), await payloads(local, 'host'));

      const credentials = path.join(dir, 's3-credentials.yaml');
      await writeFile(
        credentials,
        `accessKeyID: ${env.s3AccessKeyId}\nsecretAccessKey: ${env.s3SecretAccessKey}\n`,
      );
      const viaFile = await cli([
        'import',
        ...s3Flags,
        '--go-credentials-file',
        credentials,
        '--cluster',
        'host',
        '--config',
        await config(root),
      ]);
      assert.equal(viaFile.code, 0, viaFile.stdout + viaFile.stderr);
      assert.match(viaFile.stdout, new RegExp(`^imported 0, skipped ${goStore.size}, `, 'm'));

      // `backups list` on the bucket names the Go objects and prints the S3 flags of the import.
      const listConfig = path.join(dir, 's3-list.yaml');
      await writeFile(
        listConfig,
        yaml.dump({
          storage: {
            s3: {
              endpoint: env.s3Endpoint.replace('http://', ''),
              disableSSL: true,
              forcePathStyle: true,
              region: env.s3Region,
              bucket: env.s3Bucket,
              prefix,
              credentialsFile: credentials,
            },
          },
        }),
      );
      const listed = await cli(['list', '--config', listConfig]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^core\.cluster\.kubeconfig\s+\d+\s+-\s+no\s+GO TOOL: core backup/m);
      assert.ok(
        listed.stdout.includes(
          `ks-upgrade backups import --from-go s3://${env.s3Bucket}/${prefix} --go-endpoint ${env.s3Endpoint.replace('http://', '')} ` +
            `--go-region ${env.s3Region} --go-path-style --go-disable-ssl [--go-credentials-file <file>] --cluster <cluster>`,
        ),
        listed.stdout,
      );

      const denied = await cli(['import', ...s3Flags, '--cluster', 'host', '--config', await config(root)], {
        AWS_ACCESS_KEY_ID: env.s3AccessKeyId,
        AWS_SECRET_ACCESS_KEY: 'wrong-secret',
      });
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /S3 refused to list s3:\/\/.*--go-credentials-file/);
      // Neither the secret nor the SDK's string to sign (it names the access key ID).
      assert.ok(
        !denied.stderr.includes('wrong-secret') && !denied.stderr.includes('Credential='),
        denied.stderr,
      );
      assert.deepEqual(await s3Digest(env.s3Bucket, prefix), before);
    } finally {
      await purgeS3Prefix({ ...s3, prefix });
    }
  });

  it('refuses without an encryption key, naming the setting, and writes nothing', async () => {
    const root = path.join(dir, 'plain');
    const run = await cli(['import', '--from-go', goDir, '--cluster', 'host', '--local-path', root]);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(
      run.stderr,
      /refusing to import .* without encryption: \d+ object\(s\) hold secrets \(.*core\.cluster\.kubeconfig/,
    );
    assert.match(run.stderr, /storage\.encryption\.keyFile/);
    await assert.rejects(readdir(root), /ENOENT/);
  });

  it('never overwrites: a different object is refused; unknown and unparsable keys are reported', async () => {
    const messy = path.join(dir, 'messy');
    await writeGoStoreDir(messy, new Map([...goStore].filter(([k]) => !k.startsWith('iam-'))));
    await mkdir(path.join(messy, 'lost+found'));
    await writeFile(path.join(messy, 'notes.txt'), 'hello');
    await writeFile(path.join(messy, 'opensearch_enabled'), 'maybe');
    await writeFile(path.join(messy, 'core.cluster.kubeconfig'), '{"metadata":{},"items":[{"metad');
    await rm(path.join(messy, 'old-snapshot-controller'));
    await symlink('/etc/passwd', path.join(messy, 'old-snapshot-controller'));
    const root = path.join(dir, 'messy-ours');
    const store = await createResourceStore({ local: { path: root }, encryption: { keyFile } });
    const mine = { metadata: {}, items: [{ metadata: { name: 'written-by-ks-upgrade' } }] };
    await store.scope('host', 'network').save('network-ippools.crd.projectcalico.org.v1', mine);

    const dry = await importDir(messy, root, '--dry-run');
    assert.equal(dry.code, 1);
    assert.match(
      dry.stdout,
      /^WOULD IMPORT {1}core-workspace\.tenant\.kubesphere\.io\.v1alpha1 -> host\/core\//m,
    );
    assert.deepEqual(await store.list(), ['host/network/network-ippools.crd.projectcalico.org.v1']);

    const run = await importDir(messy, root, '--json');
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /some objects were not imported/);
    const items = byKey(report(run));
    const outcome = (k: string): [string | undefined, string | undefined] => [
      items.get(k)?.outcome,
      items.get(k)?.reason,
    ];
    assert.deepEqual(outcome('network-ippools.crd.projectcalico.org.v1'), [
      'refused',
      'our store already holds a different object under this key, and a backup is never overwritten',
    ]);
    assert.equal(items.get('lost+found')?.outcome, 'skipped');
    assert.match(outcome('notes.txt').join(' '), /^failed unknown key/);
    assert.match(outcome('opensearch_enabled').join(' '), /^failed unparsable: not "true" or "false"/);
    assert.match(outcome('core.cluster.kubeconfig').join(' '), /^failed unparsable: not valid JSON/);
    assert.match(outcome('old-snapshot-controller').join(' '), /^failed not a regular file/);
    assert.equal(items.get('network-done')?.outcome, 'imported');
    assert.deepEqual(
      await store.scope('host', 'network').load('network-ippools.crd.projectcalico.org.v1'),
      mine,
    );
  });

  it('backups list names objects the Go tool wrote and prints the import command', async () => {
    const run = await cli(['list', '--local-path', goDir]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /^core\.cluster\.kubeconfig\s+\d+\s+-\s+no\s+GO TOOL: core backup written by the original Go ks-upgrade$/m,
    );
    assert.match(run.stdout, /^kubesphere-config\s+\d+\s+-\s+no\s+GO TOOL: core \(shared\) backup/m);
    assert.match(run.stdout, /^appv-nginx-1\s+\d+\s+-\s+no\s+GO TOOL: application backup/m);
    assert.match(run.stdout, /^iam-users\.iam\.kubesphere\.io\s+\d+\s+-\s+no\s+GO TOOL: iam backup/m);
    assert.ok(!/DAMAGED/.test(run.stdout), run.stdout);
    assert.match(
      run.stdout,
      new RegExp(`${goStore.size} object\\(s\\) were written by the original Go ks-upgrade`),
    );
    assert.ok(
      run.stdout.includes(
        `ks-upgrade backups import --from-go ${goDir} --cluster <cluster> --config <config of the upgrade>`,
      ),
      run.stdout,
    );

    // In a store of ours: Go objects are named, damaged ones stay DAMAGED.
    const root = path.join(dir, 'mixed');
    const store = await createResourceStore({ local: { path: root }, encryption: { keyFile } });
    await store.scope('host', 'core').save('core.rollback.deployment-replicas', { 'ks-apiserver': 1 });
    await writeGoStoreDir(
      path.join(root, 'host', 'legacy'),
      new Map([['network-done', Buffer.from('2025-04-23 08:00:00 +0000 UTC')]]),
    );
    await writeFile(
      path.join(root, 'host', 'legacy', 'network-ippools.crd.projectcalico.org.v1'),
      '{"truncated',
    );
    const mixed = await cli(['list', '--config', await config(root)]);
    assert.equal(mixed.code, 0, mixed.stderr);
    assert.match(mixed.stdout, /^host\/core\/core\.rollback\.deployment-replicas\s+\d+\s+\S+Z\s+yes\s+no$/m);
    assert.match(mixed.stdout, /^host\/legacy\/network-done\s+\d+\s+-\s+no\s+GO TOOL: network backup/m);
    assert.match(
      mixed.stdout,
      /^host\/legacy\/network-ippools\.crd\.projectcalico\.org\.v1\s+-\s+-\s+-\s+DAMAGED: it has no ks-upgrade header/m,
    );
    assert.ok(
      mixed.stdout.includes(`--from-go ${path.join(root, 'host/legacy')} --cluster <cluster>`),
      mixed.stdout,
    );
    await rm(path.join(root, 'host', 'legacy'), { recursive: true });
  });

  it('usage errors exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['import', '--cluster', 'host'], /import needs --from-go/],
      [['import', '--from-go', goDir], /import needs --cluster/],
      [['import', '--from-go', goDir, '--cluster', 'Host_1'], /invalid cluster name "Host_1"/],
      [['import', '--from-go', path.join(dir, 'nope'), '--cluster', 'host'], /--from-go .*nope: ENOENT/],
      [
        ['import', '--from-go', goDir, '--cluster', 'host', '--go-region', 'x'],
        /--go-region is for an S3 source/,
      ],
      [['list', '--from-go', goDir], /--from-go is an option of 'import', not of 'list'/],
      [['import', '--from-go', goDir, '--cluster', 'host', '--prefix', 'x/'], /'import' takes no --prefix/],
    ];
    for (const [args, pattern] of cases) {
      const run = await cli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      assert.match(run.stderr, pattern);
    }
  });
});
