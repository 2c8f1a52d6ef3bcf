import { readFileSync } from 'node:fs';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type BucketLocationConstraint,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { load as loadYaml } from 'js-yaml';
import type { S3StorageConfig } from '../config/types.js';
import { KsUpgradeError, ValidationError, type Outage } from '../errors.js';
import {
  KeyConflictError,
  StorageKeyNotFound,
  StorageUnavailableError,
  assertSafeKey,
  assertSafePrefix,
  bytesSource,
  unsafeKeyReason,
  type ObjectSource,
  type Storage,
} from './storage.js';

/** Static S3 credentials, structurally the SDK's `AwsCredentialIdentity`. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Knobs for tests and tuning; the config decides everything else. */
export interface S3StorageOptions {
  /** ListObjectsV2 page size (S3's default and maximum is 1000). */
  listPageSize?: number;
  /** Multipart part size in bytes; at least 5 MiB (S3's minimum for all parts but the last). */
  partSize?: number;
  /** Parts uploaded at once. */
  partConcurrency?: number;
  /**
   * How long one request may go without a byte from the server before it is given up, ms. With
   * the SDK's {@link S3_MAX_ATTEMPTS} attempts, a stalled server fails a call well inside an
   * activity's heartbeat timeout (60 s by default), with an error naming S3 and the key.
   */
  requestTimeoutMs?: number;
}

/** Attempts per S3 call (the SDK's standard retry strategy, with its backoff). */
export const S3_MAX_ATTEMPTS = 3;
const DEFAULT_REQUEST_TIMEOUT_MS = 12_000;
const CONNECTION_TIMEOUT_MS = 5_000;

const MIB = 1024 * 1024;
const MIN_PART_SIZE = 5 * MIB;
const MAX_PARTS = 10_000;
const DEFAULT_MULTIPART_THRESHOLD = 8 * MIB;

/** S3 error names that mean the credentials were refused (never quote such an SDK error). */
export const S3_CREDENTIAL_ERRORS: ReadonlySet<string> = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  // versitygw answers an unknown access key with 404 XAdminUserNotFound.
  'XAdminUserNotFound',
]);

const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/**
 * Within one process, conditional creates of the same object are serialised. S3 itself makes
 * `If-None-Match: *` atomic, but some S3-compatible servers check the condition before writing
 * (versitygw 1.7 does), so two concurrent writers could both "win". Across processes the
 * server's guarantee is all there is; see docs/backups.md.
 */
const createLocks = new Map<string, Promise<void>>();

async function withCreateLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
  const previous = createLocks.get(id) ?? Promise.resolve();
  let release = (): void => undefined;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = previous.then(() => mine);
  createLocks.set(id, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (createLocks.get(id) === tail) createLocks.delete(id);
  }
}

/** `host:port` gets a scheme from `disableSSL`; a URL is used as is; empty means AWS. */
export function s3EndpointUrl(config: Pick<S3StorageConfig, 'endpoint' | 'disableSSL'>): string | undefined {
  const endpoint = config.endpoint.trim();
  if (endpoint === '') return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint)) return endpoint;
  return `${config.disableSSL ? 'http' : 'https'}://${endpoint}`;
}

/** The endpoint without user info, for messages. */
function displayEndpoint(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '<unparsable endpoint>';
  }
}

/**
 * Static credentials from the config: inline keys first, then `credentialsFile`. Undefined means
 * "use the AWS default chain" (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, IRSA, IMDS).
 * Throws {@link ValidationError} naming the setting or the file, never a credential value.
 */
export function resolveS3Credentials(config: S3StorageConfig): S3Credentials | undefined {
  if (config.accessKeyID || config.secretAccessKey) {
    if (!config.accessKeyID || !config.secretAccessKey) {
      throw new ValidationError(`storage.s3 sets only one of accessKeyID and secretAccessKey`, {
        hint: 'set both, or neither (credentialsFile or the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment)',
      });
    }
    return {
      accessKeyId: config.accessKeyID,
      secretAccessKey: config.secretAccessKey,
      ...(config.sessionToken ? { sessionToken: config.sessionToken } : {}),
    };
  }
  if (config.credentialsFile) return readS3CredentialsFile(config.credentialsFile);
  return undefined;
}

/**
 * Static credentials from a YAML or JSON file (`accessKeyID`, `secretAccessKey`, `sessionToken`).
 * Errors name `setting` and the file, never a value.
 */
export function readS3CredentialsFile(file: string, setting = 'storage.s3.credentialsFile'): S3Credentials {
  const hint = `the file must be YAML or JSON with accessKeyID and secretAccessKey (and optionally sessionToken)`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
    throw new ValidationError(`cannot read ${setting} ${file}: ${reason}`, {
      hint: `mount the file at ${file} or fix ${setting}`,
    });
  }
  let doc: unknown;
  try {
    doc = loadYaml(text);
  } catch {
    // The parser's message quotes the offending line, which may hold the secret: leave it out.
    throw new ValidationError(`${setting} ${file} is not valid YAML or JSON`, { hint });
  }
  const record = doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>) : {};
  const pick = (...names: string[]): string | undefined => {
    for (const name of names) {
      const value = record[name];
      if (typeof value === 'string' && value !== '') return value;
    }
    return undefined;
  };
  const accessKeyId = pick('accessKeyID', 'accessKeyId', 'access_key_id');
  const secretAccessKey = pick('secretAccessKey', 'secret_access_key');
  const sessionToken = pick('sessionToken', 'session_token');
  if (!accessKeyId || !secretAccessKey) {
    throw new ValidationError(
      `${setting} ${file} has no ${accessKeyId ? 'secretAccessKey' : 'accessKeyID'}`,
      { hint },
    );
  }
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

function httpStatus(err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}

function isNoSuchBucket(err: unknown): boolean {
  return errorName(err) === 'NoSuchBucket';
}

function isNotFound(err: unknown): boolean {
  const name = errorName(err);
  return name === 'NoSuchKey' || name === 'NotFound' || (httpStatus(err) === 404 && name !== 'NoSuchBucket');
}

/**
 * Backups in an S3 bucket (AWS or compatible: versitygw, MinIO, Ceph RGW). Object key =
 * `prefix + key`. Objects above `multipartThreshold` go up in parts; `putIfAbsent` is a conditional
 * write (`If-None-Match: *`). Location and messages never contain credentials.
 */
export class S3Storage implements Storage {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly endpoint: string | undefined;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly listPageSize: number;
  private readonly requestTimeoutMs: number;
  #bucketSeen = false;
  #creatingBucket: Promise<void> | undefined;

  constructor(
    private readonly config: S3StorageConfig,
    options: S3StorageOptions = {},
  ) {
    if (!config.bucket) {
      throw new ValidationError('storage.s3.bucket is empty', { hint: 'set storage.s3.bucket' });
    }
    this.bucket = config.bucket;
    // The config loader normalises the prefix; be forgiving for direct callers.
    const trimmed = config.prefix.replace(/^\/+/, '');
    this.prefix = trimmed === '' || trimmed.endsWith('/') ? trimmed : `${trimmed}/`;
    if (this.prefix !== '') assertSafeKey(this.prefix.slice(0, -1), `storage.s3.prefix`);
    this.endpoint = s3EndpointUrl(config);
    this.location =
      `s3://${this.bucket}/${this.prefix}` + (this.endpoint ? ` (${displayEndpoint(this.endpoint)})` : '');
    this.multipartThreshold =
      config.multipartThreshold > 0 ? config.multipartThreshold : DEFAULT_MULTIPART_THRESHOLD;
    this.partSize = Math.max(MIN_PART_SIZE, options.partSize ?? 8 * MIB);
    this.partConcurrency = Math.max(1, options.partConcurrency ?? 4);
    this.listPageSize = Math.min(1000, Math.max(1, options.listPageSize ?? 1000));
    this.requestTimeoutMs = Math.max(1, options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    const credentials = resolveS3Credentials(config);
    this.client = new S3Client({
      ...(this.endpoint ? { endpoint: this.endpoint } : {}),
      region: config.region || 'us-east-1',
      forcePathStyle: config.forcePathStyle,
      ...(credentials ? { credentials } : {}),
      // Integrity is checked end to end by the resource store (sha256 in every object); the SDK's
      // default CRC trailers are not supported by every S3-compatible server.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Bounded: a silent endpoint must fail the call with an error naming S3 and the key before
      // the activity's heartbeat timeout ends the attempt as a bare TIMED_OUT.
      maxAttempts: S3_MAX_ATTEMPTS,
      // requestTimeout bounds the wait for the response (it only warns unless told to throw);
      // socketTimeout bounds a silence inside it, a response body included.
      requestHandler: {
        connectionTimeout: CONNECTION_TIMEOUT_MS,
        requestTimeout: this.requestTimeoutMs,
        throwOnRequestTimeout: true,
        socketTimeout: this.requestTimeoutMs,
      },
    });
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const objectKey = this.objectKey(key);
    if (data.byteLength > this.multipartThreshold) {
      await this.multipartUpload(key, objectKey, bytesSource(data), false);
      return;
    }
    await this.call('write', key, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: objectKey,
          Body: data,
          ContentLength: data.byteLength,
        }),
      ),
    );
  }

  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    return this.putIfAbsentFrom(key, bytesSource(data));
  }

  /**
   * Up to `multipartThreshold` bytes go up in one conditional PutObject, read into memory first:
   * the SDK does not retry a request whose body is a stream. Larger sources go up in parts, each
   * read when it is sent, so at most `partConcurrency` parts are in memory.
   */
  async putIfAbsentFrom(key: string, source: ObjectSource): Promise<boolean> {
    const objectKey = this.objectKey(key);
    return withCreateLock(`${this.endpoint ?? 'aws'}\n${this.bucket}\n${objectKey}`, async () => {
      const multipart = source.size > this.multipartThreshold;
      const data = multipart || source.size === 0 ? new Uint8Array(0) : await source.read(0, source.size);
      // AWS answers 409 ConditionalRequestConflict when conditional writes race; the next try
      // then sees the winner (412).
      for (let attempt = 1; ; attempt++) {
        try {
          if (multipart) {
            // Uploading megabytes only to be refused at the end is wasteful: look first.
            if (await this.exists(key)) return false;
            return await this.multipartUpload(key, objectKey, source, true);
          }
          await this.call('create', key, () =>
            this.client.send(
              new PutObjectCommand({
                Bucket: this.bucket,
                Key: objectKey,
                Body: data,
                ContentLength: data.byteLength,
                IfNoneMatch: '*',
              }),
            ),
          );
          return true;
        } catch (err) {
          const cause = err instanceof KsUpgradeError && err.cause !== undefined ? err.cause : err;
          if (httpStatus(cause) === 412) return false;
          if (httpStatus(cause) === 409 && errorName(cause) === 'ConditionalRequestConflict' && attempt < 3) {
            continue;
          }
          throw err;
        }
      }
    });
  }

  async get(key: string): Promise<Uint8Array> {
    const objectKey = this.objectKey(key);
    return this.call('read', key, async () => {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
      // A connection cut mid-body must not pass for a short object.
      if (out.ContentLength !== undefined && out.ContentLength !== bytes.byteLength) {
        throw new StorageUnavailableError(
          `S3 read of '${key}' in ${this.location} returned ${bytes.byteLength} of ${out.ContentLength} bytes`,
          { hint: 'retry; check the network path to the S3 endpoint' },
        );
      }
      return bytes;
    });
  }

  async exists(key: string): Promise<boolean> {
    const objectKey = this.objectKey(key);
    try {
      await this.call('check', key, () =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey })),
      );
      return true;
    } catch (err) {
      if (!(err instanceof StorageKeyNotFound)) throw err;
    }
    // HEAD has no body, so a missing bucket also reads as a plain 404: tell them apart once.
    if (!this.#bucketSeen) await this.probeBucket(key);
    return false;
  }

  /**
   * S3 does not say whether DeleteObject removed anything; a HEAD first gives the same answer as
   * local storage (false for an absent key). The answer is advisory under concurrent writers.
   */
  async delete(key: string): Promise<boolean> {
    const objectKey = this.objectKey(key);
    if (!(await this.exists(key))) return false;
    await this.call('delete', key, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey })),
    );
    return true;
  }

  /** Keys under `prefix`, sorted. Objects whose names are not valid keys (folder markers) are skipped. */
  async list(prefix: string): Promise<string[]> {
    assertSafePrefix(prefix, this.location);
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.call('list', prefix, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            MaxKeys: this.listPageSize,
            ContinuationToken: token,
          }),
        ),
      );
      for (const object of page.Contents ?? []) {
        const name = object.Key;
        if (name === undefined || !name.startsWith(this.prefix)) continue;
        const key = name.slice(this.prefix.length);
        if (unsafeKeyReason(key) === undefined) keys.push(key);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  private objectKey(key: string): string {
    assertSafeKey(key, this.location);
    return this.prefix + key;
  }

  /** Runs one request; creates a missing bucket once when allowed, and turns SDK errors into ours. */
  private async call<T>(action: string, key: string, request: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await request();
        this.#bucketSeen = true;
        return result;
      } catch (err) {
        if (isNoSuchBucket(err) && this.config.createBucket && attempt === 0) {
          await this.createBucketOnce();
          continue;
        }
        throw this.translate(err, action, key);
      }
    }
  }

  private createBucketOnce(): Promise<void> {
    this.#creatingBucket ??= (async () => {
      const region = this.config.region || 'us-east-1';
      try {
        await this.client.send(
          new CreateBucketCommand({
            Bucket: this.bucket,
            // us-east-1 is the one region that must not be named here.
            ...(region === 'us-east-1'
              ? {}
              : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
          }),
        );
      } catch (err) {
        // Another writer created it first: fine. Anything else is reported on the retried request.
        const name = errorName(err);
        if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') {
          this.#creatingBucket = undefined;
          throw this.translate(err, 'create the bucket for', '');
        }
      }
    })();
    return this.#creatingBucket;
  }

  /** Marks a network-level failure as an outage that a step may wait out (a one-key list probe). */
  private withOutage(err: StorageUnavailableError): StorageUnavailableError {
    const server = `S3 at ${this.endpoint ? displayEndpoint(this.endpoint) : 'the AWS default endpoint'}`;
    Object.assign(err, {
      outage: {
        server,
        probe: () =>
          this.client
            .send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: 1 }))
            .then(
              () => true,
              () => false,
            ),
      } satisfies Outage,
    });
    return err;
  }

  private async probeBucket(key: string): Promise<void> {
    await this.call('check', key, () =>
      this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: 1 })),
    );
  }

  /**
   * Uploads in parts. Any failure aborts the upload, so no parts are left behind (except when the
   * process dies; a bucket lifecycle rule for incomplete multipart uploads cleans those).
   * With `ifAbsent`, completion is conditional and a refusal returns false.
   */
  private async multipartUpload(
    key: string,
    objectKey: string,
    source: ObjectSource,
    ifAbsent: boolean,
  ): Promise<boolean> {
    const created = await this.call('write', key, () =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey })),
    );
    const uploadId = created.UploadId;
    if (!uploadId) throw new KsUpgradeError(`S3 gave no upload ID for '${key}' in ${this.location}`);
    try {
      const partSize = Math.max(this.partSize, Math.ceil(source.size / MAX_PARTS));
      const count = Math.max(1, Math.ceil(source.size / partSize));
      const parts: CompletedPart[] = [];
      let next = 0;
      let failed = false;
      const uploader = async (): Promise<void> => {
        while (!failed && next < count) {
          const index = next++;
          try {
            const start = index * partSize;
            const body = await source.read(start, Math.min(partSize, source.size - start));
            const out = await this.call('write', key, () =>
              this.client.send(
                new UploadPartCommand({
                  Bucket: this.bucket,
                  Key: objectKey,
                  UploadId: uploadId,
                  PartNumber: index + 1,
                  Body: body,
                  ContentLength: body.byteLength,
                }),
              ),
            );
            parts[index] = { PartNumber: index + 1, ETag: out.ETag };
          } catch (err) {
            failed = true;
            throw err;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.partConcurrency, count) }, uploader));
      await this.call(ifAbsent ? 'create' : 'write', key, () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: objectKey,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
            ...(ifAbsent ? { IfNoneMatch: '*' } : {}),
          }),
        ),
      );
      return true;
    } catch (err) {
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId }))
        .catch(() => undefined);
      const cause = err instanceof KsUpgradeError && err.cause !== undefined ? err.cause : err;
      if (ifAbsent && httpStatus(cause) === 412) return false;
      throw err;
    }
  }

  private translate(err: unknown, action: string, key: string): Error {
    if (err instanceof KsUpgradeError) return err;
    const name = errorName(err);
    const status = httpStatus(err);
    const what = key === '' ? this.location : `'${key}' in ${this.location}`;
    if (isNoSuchBucket(err)) {
      return new StorageUnavailableError(`S3 bucket '${this.bucket}' does not exist (${this.location})`, {
        hint: `create bucket '${this.bucket}' or set storage.s3.createBucket: true`,
      });
    }
    // No `cause` here: SDK errors for bad credentials carry the access key ID and the string to sign.
    if (S3_CREDENTIAL_ERRORS.has(name) || status === 403) {
      return new StorageUnavailableError(
        `S3 refused to ${action} ${what}: ${name}${status ? ` (HTTP ${status})` : ''}`,
        {
          hint:
            'check the credentials (storage.s3.accessKeyID/secretAccessKey, storage.s3.credentialsFile or ' +
            'AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and that they may read, write, delete and list ' +
            `in bucket '${this.bucket}'`,
        },
      );
    }
    if ((action === 'read' || action === 'check') && isNotFound(err)) {
      return new StorageKeyNotFound(key, this.location);
    }
    if (name === 'CredentialsProviderError') {
      return new StorageUnavailableError(`no S3 credentials found to ${action} ${what}`, {
        hint: 'set storage.s3.credentialsFile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment',
      });
    }
    if (name === 'ObjectParentIsFile') {
      return new KeyConflictError(
        `cannot ${action} ${what}: a leading part of the key is already an object`,
        {
          hint: 'a key cannot be both an object and a folder of other keys; choose another key',
        },
      );
    }
    const code = err instanceof Error && 'code' in err ? String(err.code) : '';
    if (name === 'TimeoutError') {
      return this.withOutage(
        new StorageUnavailableError(
          `S3 did not answer: ${action} ${what} timed out (${S3_MAX_ATTEMPTS} attempts, ${this.requestTimeoutMs / 1000} s without an answer each)`,
          {
            hint: `check that the S3 server at ${this.endpoint ? displayEndpoint(this.endpoint) : 'the AWS default endpoint'} is up and not overloaded, and the network path to it; the step is retried`,
            cause: err,
          },
        ),
      );
    }
    if (NETWORK_ERRORS.has(code) || name === 'RequestTimeout') {
      return this.withOutage(
        new StorageUnavailableError(`cannot reach S3 to ${action} ${what}: ${code || name}`, {
          hint: `check storage.s3.endpoint (${this.endpoint ? displayEndpoint(this.endpoint) : 'AWS default'}), disableSSL and the network path`,
          cause: err,
        }),
      );
    }
    const message = err instanceof Error ? err.message : String(err);
    return new KsUpgradeError(
      `S3 failed to ${action} ${what}: ${name}${status ? ` (HTTP ${status})` : ''}: ${message}`,
      { cause: err },
    );
  }
}
