// `ks-upgrade backups list|show|verify` as an operator runs it: the real bin script in a child process.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStorage } from '../../src/storage/index.js';
import { abortedAttemptName, createResourceStore } from '../../src/store/index.js';
import { cli as runCli, type CliResult } from '../helpers/cli.js';
import { devS3Config, purgeS3Prefix, tempDir } from '../helpers/storage.js';

const cli = (...args: string[]): Promise<CliResult> => runCli(['backups', ...args]);

const MARKER = 'cli-secret-marker-91c2';

describe('ks-upgrade backups', () => {
  let dir: string;
  let root: string;
  let keyFile: string;
  let configFile: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    ({ dir, cleanup } = await tempDir('cli'));
    root = path.join(dir, 'backups');
    keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o400 });
    configFile = path.join(dir, 'config.yaml');
    await writeFile(
      configFile,
      `storage:\n  local:\n    path: ${root}\n  encryption:\n    keyFile: ${keyFile}\njobs:\n  core: {enabled: true}\n`,
    );
    const store = await createResourceStore({ local: { path: root }, encryption: { keyFile } });
    const core = store.scope('host', 'core');
    await core.saveOnce('core.resource.kubesphere.system', {
      kind: 'DeploymentList',
      items: [{ name: 'ks-apiserver' }],
    });
    await core.saveOnce('core.cluster.kubeconfig', {
      kind: 'ClusterList',
      apiVersion: 'cluster.kubesphere.io/v1alpha1',
      items: [{ metadata: { name: 'member1' }, spec: { connection: { kubeconfig: MARKER } } }],
    });
    await core.shared().saveRaw('kubesphere-config', 'monitoring:\n  endpoint: http://prometheus\n', {
      contentType: 'application/yaml',
    });
    await store.scope('host', 'iam').save('iam-users', [{ name: 'admin' }]);
  });
  after(() => cleanup());

  it('list prints every key with size, creation time, encryption and sensitivity', async () => {
    const run = await cli('list', '--config', configFile);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^KEY\s+SIZE\s+CREATED\s+ENCRYPTED\s+SENSITIVE$/);
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(/\s+/)[0]),
      [
        'host/_shared/kubesphere-config',
        'host/core/core.cluster.kubeconfig',
        'host/core/core.resource.kubesphere.system',
        'host/iam/iam-users',
      ],
    );
    assert.match(
      run.stdout,
      /host\/core\/core\.cluster\.kubeconfig\s+\d+\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+yes\s+yes/,
    );
    assert.match(run.stdout, /host\/iam\/iam-users\s+\d+\s+\S+\s+yes\s+no/);

    const scoped = await cli('list', '--local-path', root, '--prefix', 'host/iam/');
    assert.equal(scoped.code, 0, scoped.stderr);
    assert.deepEqual(
      scoped.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/)[0]),
      ['host/iam/iam-users'],
    );
  });

  it("list shows an aborted attempt's backups apart; show and verify read them where they are", async () => {
    const store = await createResourceStore({ local: { path: root }, encryption: { keyFile } });
    const attempt = abortedAttemptName('2026-12-02T17:55:00Z', '1a2b3c4d-run');
    await store.scope('member9', 'devops').save('devops-jenkins', { replicas: 1 });
    await store.moveAttemptAside('member9', ['devops'], attempt);
    try {
      const run = await cli('list', '--config', configFile);
      assert.equal(run.code, 0, run.stderr);
      const [current, older] = run.stdout.split('\n\n');
      assert.ok(current && older, run.stdout);
      assert.ok(!current.includes('_attempts'), current);
      assert.match(
        older,
        new RegExp(
          `^older attempt member9/${attempt} \\(aborted; 1 object\\(s\\), kept apart, not used by new attempts\\):\nKEY\\s+SIZE`,
        ),
      );
      assert.match(
        older,
        new RegExp(`member9/_attempts/${attempt}/devops/devops-jenkins\\s+\\d+\\s+\\S+\\s+yes\\s+no`),
      );
      const shown = await cli(
        'show',
        `member9/_attempts/${attempt}/devops/devops-jenkins`,
        '--config',
        configFile,
      );
      assert.equal(shown.code, 0, shown.stderr);
      assert.deepEqual(JSON.parse(shown.stdout), { replicas: 1 });
      const verified = await cli('verify', 'member9/_attempts/', '--config', configFile);
      assert.equal(verified.code, 0, verified.stdout);
      assert.match(verified.stdout, /1 object\(s\): 1 OK, 0 FAILED/);
    } finally {
      for (const key of await store.list('member9/')) {
        await (await createStorage({ local: { path: root } })).delete(key);
      }
    }
  });

  it('show pretty-prints JSON and YAML, and refuses sensitive objects without --reveal', async () => {
    const shown = await cli('show', 'host/core/core.resource.kubesphere.system', '--config', configFile);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(
      shown.stdout,
      `${JSON.stringify({ kind: 'DeploymentList', items: [{ name: 'ks-apiserver' }] }, null, 2)}\n`,
    );

    const yaml = await cli('show', '--prefix', 'host/_shared/', 'kubesphere-config', '--config', configFile);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.equal(yaml.stdout, 'monitoring:\n  endpoint: http://prometheus\n');

    const refused = await cli('show', 'host/core/core.cluster.kubeconfig', '--config', configFile);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.match(
      refused.stderr,
      /refusing to print 'host\/core\/core\.cluster\.kubeconfig': it holds secrets.*--reveal/,
    );
    assert.ok(!refused.stderr.includes(MARKER));

    const revealed = await cli(
      'show',
      'host/core/core.cluster.kubeconfig',
      '--reveal',
      '--config',
      configFile,
    );
    assert.equal(revealed.code, 0, revealed.stderr);
    assert.ok(revealed.stdout.includes(MARKER));

    // Refused before decryption: no key needed to be told no.
    const noKey = await cli('show', 'host/core/core.cluster.kubeconfig', '--local-path', root);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /refusing to print/);
    const noKeyReveal = await cli('show', 'host/iam/iam-users', '--local-path', root);
    assert.equal(noKeyReveal.code, 1);
    assert.match(noKeyReveal.stderr, /encrypted with key [0-9a-f]{16}, but no encryption key is configured/);

    const missing = await cli('show', 'host/core/nope', '--config', configFile);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /backup key 'host\/core\/nope' not found/);
  });

  it('verify reports OK per object, and FAILED with the reason and exit 1 on a damaged one', async () => {
    const ok = await cli('verify', '--config', configFile);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^OK {6}host\/core\/core\.cluster\.kubeconfig \(decrypted\)$/m);
    assert.match(ok.stdout, /4 object\(s\): 4 OK, 0 FAILED/);

    const withoutKey = await cli('verify', '--local-path', root);
    assert.equal(withoutKey.code, 0);
    assert.match(withoutKey.stdout, /not decrypted: no key configured/);

    const storage = await createStorage({ local: { path: root } });
    const victim = 'host/iam/iam-users';
    const bytes = Buffer.from(await storage.get(victim));
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
    await storage.put(victim, bytes);
    await storage.put('host/iam/legacy-go-object', Buffer.from('{"plain":"json"}'));

    const bad = await cli('verify', 'host/', '--config', configFile);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^FAILED {2}host\/iam\/iam-users: .*sha256 mismatch/m);
    assert.match(bad.stdout, /^FAILED {2}host\/iam\/legacy-go-object: .*no ks-upgrade header/m);
    assert.match(bad.stdout, /^OK {6}host\/core\/core\.resource\.kubesphere\.system/m);
    assert.match(bad.stdout, /5 object\(s\): 3 OK, 2 FAILED/);

    const list = await cli('list', '--config', configFile, '--prefix', 'host/iam/');
    assert.equal(list.code, 0);
    assert.match(list.stdout, /host\/iam\/legacy-go-object\s+-\s+-\s+-\s+DAMAGED: .*no ks-upgrade header/);

    const scoped = await cli('verify', '--config', configFile, '--prefix', 'host/core/');
    assert.equal(scoped.code, 0, scoped.stdout);
  });

  it('reads S3 storage from the config', async () => {
    const s3 = devS3Config();
    try {
      const store = await createResourceStore({ local: { path: '/nonexistent' }, s3 });
      await store.scope('host', 'network').save('network-ippools', { items: [] });
      const file = path.join(dir, 's3.yaml');
      // The README's snake_case keys work too.
      await writeFile(
        file,
        `storage:\n  s3:\n    endpoint: ${s3.endpoint.replace('http://', '')}\n    disableSSL: true\n    forcePathStyle: true\n` +
          `    region: ${s3.region}\n    bucket: ${s3.bucket}\n    prefix: ${s3.prefix}\n` +
          `    access_key_id: ${s3.accessKeyID ?? ''}\n    secret_access_key: ${s3.secretAccessKey ?? ''}\n`,
      );
      const run = await cli('verify', '--config', file);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /^OK {6}host\/network\/network-ippools$/m);
      assert.ok(!run.stdout.includes(s3.secretAccessKey ?? '-'));
    } finally {
      await purgeS3Prefix(s3);
    }
  });

  it('usage errors exit 2 with a message', async () => {
    const cases: [string[], RegExp][] = [
      [[], /a command is required/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['show'], /'show' takes 1 argument/],
      [['list', 'extra'], /'list' takes 0 argument/],
      [['list', '--bogus'], /Unknown option '--bogus'/],
      [
        ['list', '--config', '/no/such/config.yaml'],
        /\/no\/such\/config\.yaml: file not found; check the path given with --config/,
      ],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(...args)));
    for (const [i, [args, pattern]] of cases.entries()) {
      const run = runs[i];
      assert.ok(run);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, pattern);
    }
    const help = await cli('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: ks-upgrade backups <command>/);
  });
});
