// A stalled S3 server (connections accepted, nothing answered) behind the fault proxy: a backup
// write fails well inside the activity heartbeat timeout (60 s by default) with an error that names
// the server and the key — never a bare heartbeat TIMED_OUT — and without any credential; and once
// the server answers again, the same store works.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StorageUnavailableError } from '../../src/storage/storage.js';
import { S3Storage } from '../../src/storage/s3.js';
import { FaultProxy } from '../faults/proxy.js';
import { devEnv } from '../helpers/env.js';
import { devS3Config, purgeS3Prefix } from '../helpers/storage.js';

/** The workflow's default activity heartbeat timeout (workflows/upgrade.ts). */
const HEARTBEAT_TIMEOUT_MS = 60_000;

describe('S3 storage against a stalled server', () => {
  const env = devEnv();
  let proxy: FaultProxy;
  const config = devS3Config();
  let storage: S3Storage;

  before(async () => {
    proxy = await FaultProxy.start({ target: env.s3Endpoint });
    storage = new S3Storage({ ...config, endpoint: `http://${proxy.address}` });
    await storage.put('before-the-stall', new TextEncoder().encode('ok'));
  });
  after(async () => {
    await proxy.close();
    await purgeS3Prefix(config);
  });

  it('a write fails inside the heartbeat timeout, naming the endpoint, bucket and key', async () => {
    proxy.setMode('stall');
    const started = Date.now();
    const outcome = await Promise.race([
      storage.put('iam-users.iam.kubesphere.io', new TextEncoder().encode('x')).then(
        () => new Error('the write succeeded against a stalled server'),
        (err: unknown) => err,
      ),
      new Promise<Error>((resolve) => {
        setTimeout(() => {
          resolve(new Error(`no answer after ${HEARTBEAT_TIMEOUT_MS} ms: the activity would time out first`));
        }, HEARTBEAT_TIMEOUT_MS).unref();
      }),
    ]);
    const elapsed = Date.now() - started;
    proxy.setMode('pass');
    assert.ok(outcome instanceof StorageUnavailableError, `${String(outcome)} (after ${elapsed} ms)`);
    assert.match(outcome.message, /iam-users\.iam\.kubesphere\.io/, 'names the key');
    assert.match(outcome.message, new RegExp(`s3://${config.bucket}/`), 'names the bucket');
    assert.ok(outcome.message.includes(proxy.address), `names the endpoint: ${outcome.message}`);
    assert.match(outcome.message, /did not answer|timed out|TimeoutError/i, outcome.message);
    // (The dev server's access key ID is the bucket's name, which the message must name.)
    assert.ok(!outcome.message.includes(env.s3SecretAccessKey), 'no credential in the message');
    assert.ok(!(outcome.hint ?? '').includes(env.s3SecretAccessKey), 'no credential in the hint');
  });

  it('works again once the server answers', async () => {
    await storage.put('after-the-stall', new TextEncoder().encode('ok'));
    assert.deepEqual(await storage.list('after-'), ['after-the-stall']);
  });
});
