// Proves the dev S3 server is a real S3 implementation for what the storage layer relies on,
// conditional create (If-None-Match: *) above all.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { devEnv, uniqueName } from '../helpers/env.js';
import { devS3Client } from '../helpers/s3.js';

async function httpStatusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof S3ServiceException) return err.$metadata.httpStatusCode ?? -1;
    throw err;
  }
}

describe('S3 server smoke', () => {
  const s3 = devS3Client();
  const Bucket = devEnv().s3Bucket;
  const prefix = `${uniqueName('smoke')}/`;

  it('puts, heads, gets, lists and deletes objects', async () => {
    const body = randomBytes(64 * 1024);
    const sha = createHash('sha256').update(body).digest('hex');
    await s3.send(
      new PutObjectCommand({ Bucket, Key: `${prefix}a/obj.bin`, Body: body, Metadata: { sha256: sha } }),
    );
    await s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}a/second.txt`, Body: 'hello' }));
    await s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}b/third.txt`, Body: 'other prefix' }));

    const head = await s3.send(new HeadObjectCommand({ Bucket, Key: `${prefix}a/obj.bin` }));
    assert.equal(head.ContentLength, body.length);
    assert.equal(head.Metadata?.sha256, sha);

    const got = await s3.send(new GetObjectCommand({ Bucket, Key: `${prefix}a/obj.bin` }));
    assert.ok(got.Body);
    const bytes = Buffer.from(await got.Body.transformToByteArray());
    assert.equal(createHash('sha256').update(bytes).digest('hex'), sha);

    const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: `${prefix}a/` }));
    assert.deepEqual(
      (listed.Contents ?? []).map((o) => o.Key),
      [`${prefix}a/obj.bin`, `${prefix}a/second.txt`],
    );

    await s3.send(new DeleteObjectCommand({ Bucket, Key: `${prefix}a/obj.bin` }));
    assert.equal(
      await httpStatusOf(s3.send(new HeadObjectCommand({ Bucket, Key: `${prefix}a/obj.bin` }))),
      404,
    );
    assert.equal(
      await httpStatusOf(s3.send(new GetObjectCommand({ Bucket, Key: `${prefix}a/obj.bin` }))),
      404,
    );
  });

  it('paginates a listing with MaxKeys/ContinuationToken', async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `${prefix}page/${String(i).padStart(3, '0')}`);
    await Promise.all(keys.map((Key) => s3.send(new PutObjectCommand({ Bucket, Key, Body: Key }))));
    const seen: string[] = [];
    let ContinuationToken: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket, Prefix: `${prefix}page/`, MaxKeys: 10, ContinuationToken }),
      );
      pages++;
      seen.push(...(page.Contents ?? []).map((o) => o.Key ?? ''));
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    assert.equal(pages, 3);
    assert.deepEqual(seen, keys);
  });

  it('refuses a second PutObject with If-None-Match: * on an existing key (412)', async () => {
    const Key = `${prefix}once.json`;
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: '{"first":true}', IfNoneMatch: '*' }));
    const code = await httpStatusOf(
      s3.send(new PutObjectCommand({ Bucket, Key, Body: '{"first":false}', IfNoneMatch: '*' })),
    );
    assert.equal(code, 412);
    const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
    assert.ok(got.Body);
    assert.equal(await got.Body.transformToString(), '{"first":true}', 'the first write must survive');
  });

  it('rejects requests signed with wrong credentials', async () => {
    const { S3Client } = await import('@aws-sdk/client-s3');
    const env = devEnv();
    const bad = new S3Client({
      endpoint: env.s3Endpoint,
      region: env.s3Region,
      forcePathStyle: true,
      credentials: { accessKeyId: env.s3AccessKeyId, secretAccessKey: 'not-the-secret' },
    });
    const code = await httpStatusOf(bad.send(new ListObjectsV2Command({ Bucket, Prefix: prefix })));
    assert.equal(code, 403);
  });
});
