// Where the Go tool's backups are: its local directory (the ks-core chart's PVC) or its S3 bucket.
// A source can only list and read. The local directory is opened read-only and symlinks are not
// followed; on S3 only ListObjectsV2 and GetObject are sent. The source is never changed.
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { KsUpgradeError, ValidationError } from '../errors.js';
import {
  S3_CREDENTIAL_ERRORS,
  readS3CredentialsFile,
  s3EndpointUrl,
  type S3Credentials,
} from '../storage/index.js';

/** One entry of the Go store. Only regular files (objects) are values; the Go tool writes no folders. */
export interface GoStoreEntry {
  name: string;
  size: number;
  type: 'object' | 'folder' | 'other';
}

/** A Go tool store, read-only. */
export interface GoStoreSource {
  /** For messages and reports: `local:/path` or `s3://bucket/prefix (endpoint)`. Never credentials. */
  readonly location: string;
  /** Every entry, sorted by name. */
  list(): Promise<GoStoreEntry[]>;
  /** The bytes of one object. */
  read(name: string): Promise<Uint8Array>;
}

/** Objects above this size are not read (the Go tool's values are lists and chart archives). */
export const MAX_GO_OBJECT_BYTES = 512 * 1024 * 1024;

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** The Go tool's local directory (`storage.local.path` of its config, default `/tmp/ks-upgrade`). */
export class LocalGoStore implements GoStoreSource {
  readonly location: string;
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.location = `local:${this.dir}`;
  }

  async list(): Promise<GoStoreEntry[]> {
    let stat;
    try {
      stat = await fs.stat(this.dir);
    } catch (err) {
      throw new ValidationError(`--from-go ${this.dir}: ${errnoCode(err) ?? 'cannot be read'}`, {
        hint: "give the directory of the Go tool's backups (its storage.local.path, default /tmp/ks-upgrade; in the cluster the PVC ks-upgrade)",
      });
    }
    if (!stat.isDirectory()) {
      throw new ValidationError(`--from-go ${this.dir} is not a directory`, {
        hint: "give the directory of the Go tool's backups, not a file in it",
      });
    }
    const dirents = await fs.readdir(this.dir, { withFileTypes: true });
    const entries: GoStoreEntry[] = [];
    for (const d of dirents) {
      if (d.isFile()) {
        const { size } = await fs.lstat(path.join(this.dir, d.name));
        entries.push({ name: d.name, size, type: 'object' });
      } else {
        entries.push({ name: d.name, size: 0, type: d.isDirectory() ? 'folder' : 'other' });
      }
    }
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async read(name: string): Promise<Uint8Array> {
    if (name.includes('/') || name === '.' || name === '..') {
      throw new KsUpgradeError(`'${name}' is not a key of ${this.location}`);
    }
    // O_RDONLY (nothing can be written through this handle) and O_NOFOLLOW (a symlink planted in
    // the directory is not followed out of it).
    const handle = await fs.open(path.join(this.dir, name), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      const { size } = await handle.stat();
      if (size > MAX_GO_OBJECT_BYTES) {
        throw new KsUpgradeError(`'${name}' in ${this.location} is larger than ${MAX_GO_OBJECT_BYTES} bytes`);
      }
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  }
}

/** Where the Go tool's bucket is. Credentials come from a file or the AWS default chain, never flags. */
export interface GoS3Settings {
  bucket: string;
  /** Keys live under it (the Go tool used none; a copied bucket may). */
  prefix: string;
  /** `host:port` or a URL; empty for AWS. */
  endpoint: string;
  region: string;
  forcePathStyle: boolean;
  disableSSL: boolean;
  /** YAML/JSON with accessKeyID and secretAccessKey; else AWS_ACCESS_KEY_ID/… and profiles. */
  credentialsFile?: string;
}

/** The Go tool's S3 bucket (its `storage.s3`): the object key is the store key, under `prefix`. */
export class S3GoStore implements GoStoreSource {
  readonly location: string;
  private readonly client: S3Client;
  private readonly prefix: string;

  constructor(private readonly settings: GoS3Settings) {
    if (!settings.bucket)
      throw new ValidationError('--from-go s3:// needs a bucket: s3://<bucket>[/<prefix>]');
    const p = settings.prefix.replace(/^\/+/, '');
    this.prefix = p === '' || p.endsWith('/') ? p : `${p}/`;
    const endpoint = s3EndpointUrl(settings);
    this.location = `s3://${settings.bucket}/${this.prefix}${endpoint ? ` (${new URL(endpoint).host})` : ''}`;
    const credentials: S3Credentials | undefined = settings.credentialsFile
      ? readS3CredentialsFile(settings.credentialsFile, '--go-credentials-file')
      : undefined;
    this.client = new S3Client({
      ...(endpoint ? { endpoint } : {}),
      region: settings.region || 'us-east-1',
      forcePathStyle: settings.forcePathStyle,
      ...(credentials ? { credentials } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
    });
  }

  async list(): Promise<GoStoreEntry[]> {
    const entries: GoStoreEntry[] = [];
    let token: string | undefined;
    do {
      const page = await this.call('list', () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.settings.bucket,
            Prefix: this.prefix,
            ContinuationToken: token,
          }),
        ),
      );
      for (const o of page.Contents ?? []) {
        if (!o.Key?.startsWith(this.prefix)) continue;
        const name = o.Key.slice(this.prefix.length);
        if (name === '') continue;
        // The Go tool's keys are flat: anything in a "folder" was put there by something else.
        entries.push({ name, size: o.Size ?? 0, type: name.includes('/') ? 'other' : 'object' });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async read(name: string): Promise<Uint8Array> {
    return this.call(`read '${name}' from`, async () => {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.prefix + name }),
      );
      if ((out.ContentLength ?? 0) > MAX_GO_OBJECT_BYTES) {
        throw new KsUpgradeError(`'${name}' in ${this.location} is larger than ${MAX_GO_OBJECT_BYTES} bytes`);
      }
      const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
      if (out.ContentLength !== undefined && out.ContentLength !== bytes.byteLength) {
        throw new KsUpgradeError(
          `S3 returned ${bytes.byteLength} of ${out.ContentLength} bytes of '${name}' from ${this.location}`,
          { hint: 'retry; check the network path to the S3 endpoint' },
        );
      }
      return bytes;
    });
  }

  private async call<T>(action: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      if (err instanceof KsUpgradeError) throw err;
      const name = err instanceof Error ? err.name : typeof err;
      const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
      if (name === 'NoSuchBucket') {
        throw new ValidationError(`S3 bucket '${this.settings.bucket}' does not exist (${this.location})`, {
          hint: 'check the bucket in --from-go s3://<bucket>/<prefix> and --go-endpoint',
        });
      }
      // No `cause`: SDK errors for refused credentials carry the access key ID.
      if (S3_CREDENTIAL_ERRORS.has(name) || status === 403 || name === 'CredentialsProviderError') {
        throw new KsUpgradeError(`S3 refused to ${action} ${this.location}: ${name}`, {
          hint:
            "give credentials that may list and read the Go tool's bucket: --go-credentials-file <file> " +
            '(accessKeyID, secretAccessKey) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment',
        });
      }
      const code = errnoCode(err) ?? '';
      throw new KsUpgradeError(
        `cannot ${action} ${this.location}: ${code || name}${status ? ` (HTTP ${status})` : ''}`,
        { hint: 'check --go-endpoint, --go-region, --go-path-style and --go-disable-ssl', cause: err },
      );
    }
  }
}
