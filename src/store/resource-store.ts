import { load as loadYaml } from 'js-yaml';
import { KsUpgradeError, ValidationError } from '../errors.js';
import {
  StorageKeyNotFound,
  UnsafeKeyError,
  assertSafePrefix,
  unsafeKeyReason,
  type Storage,
} from '../storage/storage.js';
import { headerKeyFor, moveAttemptAside, type MovedAttempt } from './attempts.js';
import type { EncryptionKey } from './encryption.js';
import {
  BackupKeyNotFound,
  BackupRecordedAbsent,
  PlaintextSecretError,
  type AbsentRecord,
} from './errors.js';
import { encodeObject, openPayload, parseObject, type BackupHeader } from './format.js';
import { sensitiveBytesReason, sensitiveItemsReason, sensitiveReason } from './sensitive.js';
import { spoolObject } from './spool.js';

/**
 * Keys a job may read or write outside its own scope, through {@link ResourceStore.shared}, with
 * the jobs that use them. Adding one is a design decision: document it in docs/backups.md.
 */
export const SHARED_KEYS = [
  /** The v3 kubesphere.yaml (raw YAML), written by `core` in pre-upgrade, read by `gateway`. */
  'kubesphere-config',
  /**
   * Written by `backups import --from-go`: this cluster's backups came from the Go tool's store,
   * which writes nothing where there was nothing to back up (a {@link GoImportRecord}).
   */
  'go-store-import',
] as const;

/** The shared key `backups import --from-go` writes: {@link GoImportRecord}. */
export const GO_IMPORT_KEY = 'go-store-import';

/** What `backups import --from-go` records under the shared key {@link GO_IMPORT_KEY}. */
export interface GoImportRecord {
  /** Where the Go store was read (a path, or `s3://bucket/prefix`). */
  source: string;
  /** When the import ran (ISO 8601). */
  importedAt: string;
}

export type SharedKey = (typeof SHARED_KEYS)[number];

/** The folder of shared keys inside a cluster; job names cannot start with `_`. */
export const SHARED_SCOPE = '_shared';

export const JSON_CONTENT_TYPE = 'application/json';
export const BINARY_CONTENT_TYPE = 'application/octet-stream';
/**
 * The content type of an "absent record": the key's backup was taken and there was nothing to
 * back up (docs/backups.md). Its payload is an {@link AbsentRecord}.
 */
export const ABSENT_CONTENT_TYPE = 'application/vnd.ks-upgrade.absent+json';

const JOB_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const CLUSTER_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

export interface SaveOptions {
  /**
   * The data is secret even if it does not look like it (a base64 blob, a values file with a
   * password): it is encrypted, or refused when no key is configured. Secrets, kubeconfigs and
   * Clusters with a kubeconfig are detected without this flag.
   */
  sensitive?: boolean;
}

export interface SaveRawOptions extends SaveOptions {
  /** Stored in the header; `load` parses `application/json` and `…yaml` content. */
  contentType?: string;
}

/** The result of a write-if-absent: what is stored now, and whether this call stored it. */
export interface SaveOnceResult<T> {
  value: T;
  created: boolean;
}

/** Options of {@link ResourceStore.saveOnceStream}. */
export interface SaveStreamOptions {
  /** Stored in the header; default `application/octet-stream`. */
  contentType?: string;
  /**
   * The stream is not scanned for Secrets or kubeconfigs (a chunk is not a document): pass
   * `true` when it may hold any. Encrypted with a key, refused before anything is read without.
   */
  sensitive?: boolean;
}

/** The result of a streamed write-if-absent: the header facts of what is stored now. */
export interface SaveStreamResult {
  /** Whether this call stored it; false: an object was there already and is kept. */
  created: boolean;
  info: BackupInfo;
}

/** Options of {@link ResourceStore.saveListOnce}. */
export interface SaveListOptions<T> {
  /**
   * Encrypt (and refuse without a key) even if no item looks secret: `true`, or a test asked of
   * every page before it is written (true for any page marks the whole list).
   */
  sensitive?: boolean | ((items: readonly T[]) => boolean);
}

/** {@link SaveStreamResult} of a list. */
export interface SaveListResult extends SaveStreamResult {
  /** How many items this call stored; undefined when it did not store the list. */
  items: number | undefined;
}

/** Header facts of one stored object, as `backups list` shows them. */
export interface BackupInfo {
  /** Key relative to the store's scope. */
  key: string;
  size: number;
  contentType: string;
  createdAt: string;
  sensitive: boolean;
  encrypted: boolean;
  keyId: string | undefined;
  sha256: string;
  writer: string;
}

/** A fully verified object, decrypted. */
export interface BackupEntry {
  info: BackupInfo;
  payload: Uint8Array;
}

/** Outcome of {@link ResourceStore.verify}: `decrypted` is false for encrypted objects without a key. */
export interface VerifyResult {
  info: BackupInfo;
  decrypted: boolean;
}

type ScopeKind =
  { kind: 'root' } | { kind: 'job'; cluster: string; job: string } | { kind: 'shared'; cluster: string };

function scopeLabel(scope: ScopeKind): string {
  switch (scope.kind) {
    case 'root':
      return 'the backup root';
    case 'job':
      return `scope ${scope.cluster}/${scope.job}`;
    case 'shared':
      return `shared scope ${scope.cluster}/${SHARED_SCOPE}`;
  }
}

/**
 * Object-level backup store (the original's `ResourceStore`) over a byte {@link Storage}.
 * Every object carries a header with its key, size, sha256 and (optionally) AES-256-GCM
 * parameters, and is verified on every load. Secrets and kubeconfigs are never stored in
 * plaintext. Jobs get a store scoped to `<cluster>/<job>/` through {@link ResourceStore.scope}.
 */
export class ResourceStore {
  readonly #storage: Storage;
  readonly #key: EncryptionKey | undefined;
  readonly #base: string;
  readonly #scope: ScopeKind;

  constructor(
    storage: Storage,
    options: { encryptionKey?: EncryptionKey | undefined } = {},
    /** @internal scopes are made with {@link ResourceStore.scope}, not by hand. */
    scope: ScopeKind = { kind: 'root' },
  ) {
    this.#storage = storage;
    this.#key = options.encryptionKey;
    this.#scope = scope;
    this.#base =
      scope.kind === 'root'
        ? ''
        : scope.kind === 'job'
          ? `${scope.cluster}/${scope.job}/`
          : `${scope.cluster}/${SHARED_SCOPE}/`;
  }

  /** Where the objects live, e.g. `local:/var/lib/ks-upgrade` or `s3://bucket/prefix/`, plus the scope. */
  get location(): string {
    return this.#base === '' ? this.#storage.location : `${this.#storage.location} [${this.#base}]`;
  }

  /** Fingerprint of the configured key, undefined when objects are written in plaintext. */
  get encryptionKeyId(): string | undefined {
    return this.#key?.id;
  }

  /**
   * The store of one job on one cluster: keys live under `<cluster>/<job>/` and cannot leave it.
   * Both names are DNS-label-like (`[a-z0-9-]`, cluster names may also contain dots).
   */
  scope(cluster: string, job: string): ResourceStore {
    if (this.#scope.kind !== 'root') {
      throw new ValidationError(`cannot scope ${scopeLabel(this.#scope)} again`, {
        hint: 'call scope(cluster, job) on the root store',
      });
    }
    if (!CLUSTER_NAME.test(cluster)) {
      throw new ValidationError(`invalid cluster name ${JSON.stringify(cluster)} for the backup store`, {
        hint: 'cluster names are lowercase letters, digits, "-" and "." (start and end alphanumeric, ≤ 253)',
      });
    }
    if (!JOB_NAME.test(job)) {
      throw new ValidationError(`invalid job name ${JSON.stringify(job)} for the backup store`, {
        hint: 'job names are DNS labels: lowercase letters, digits and "-", start and end alphanumeric, ≤ 63',
      });
    }
    return new ResourceStore(this.#storage, { encryptionKey: this.#key }, { kind: 'job', cluster, job });
  }

  /** The cluster's shared keys ({@link SHARED_KEYS}), for data one job hands to another. */
  shared(): ResourceStore {
    if (this.#scope.kind !== 'job') {
      throw new ValidationError(`shared() needs a job scope, not ${scopeLabel(this.#scope)}`, {
        hint: 'call store.scope(cluster, job).shared()',
      });
    }
    return new ResourceStore(
      this.#storage,
      { encryptionKey: this.#key },
      { kind: 'shared', cluster: this.#scope.cluster },
    );
  }

  /**
   * Files the backups of an aborted attempt away (root store only): every object of the given job
   * scopes and of `_shared` moves, byte for byte, under `<cluster>/_attempts/<attempt>/`, where
   * `backups list`, `show` and `verify` still read it. See src/store/attempts.ts.
   */
  async moveAttemptAside(cluster: string, jobs: readonly string[], attempt: string): Promise<MovedAttempt> {
    if (this.#scope.kind !== 'root') {
      throw new ValidationError(`moveAttemptAside needs the root store, not ${scopeLabel(this.#scope)}`);
    }
    return moveAttemptAside(this.#storage, { cluster, scopes: [...jobs, SHARED_SCOPE], attempt });
  }

  /** Writes `obj` as JSON, replacing what is there. Use {@link saveOnce} for backups. */
  async save(key: string, obj: unknown, opts: SaveOptions = {}): Promise<void> {
    const full = this.fullKey(key);
    const bytes = this.encode(full, key, jsonBytes(obj, key), JSON_CONTENT_TYPE, this.isSensitive(obj, opts));
    await this.#storage.put(full, bytes);
  }

  /**
   * Writes `obj` only if nothing is stored under `key`; otherwise returns the stored (verified)
   * value. A retried step therefore never replaces the pre-change backup with post-change state.
   * `value` is the JSON round trip of what is stored, so both outcomes look the same. A key that
   * records the object as absent ({@link saveAbsentOnce}) keeps that record: this throws
   * {@link BackupRecordedAbsent}, as {@link load} does.
   */
  async saveOnce<T>(key: string, obj: T, opts: SaveOptions = {}): Promise<SaveOnceResult<T>> {
    const full = this.fullKey(key);
    const json = jsonBytes(obj, key);
    const bytes = this.encode(full, key, json, JSON_CONTENT_TYPE, this.isSensitive(obj, opts));
    if (await this.#storage.putIfAbsent(full, bytes)) {
      return { value: JSON.parse(Buffer.from(json).toString('utf8')) as T, created: true };
    }
    return { value: await this.load<T>(key), created: false };
  }

  /**
   * {@link saveRawOnce} for a payload that arrives in pieces and need not fit in memory: the
   * pieces are spooled to a temporary file (src/store/spool.ts), then the object is created if
   * absent, with the write-once semantics of {@link saveOnce}. When something is stored under
   * `key` already, `source` is not read at all and that object (verified, decrypted) is kept; an
   * absent record throws {@link BackupRecordedAbsent}. When `source` throws, nothing is stored.
   */
  async saveOnceStream(
    key: string,
    source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
    opts: SaveStreamOptions = {},
  ): Promise<SaveStreamResult> {
    const reason = opts.sensitive ? 'the caller marked it sensitive' : undefined;
    return this.saveStreamOnce(key, source, opts.contentType ?? BINARY_CONTENT_TYPE, () => reason);
  }

  /**
   * {@link saveOnce} of `{ ...head, items }` for a list read page by page: stores exactly the
   * bytes `saveOnce` would (the same JSON, the same sha256 when unencrypted), holding one page at
   * a time. Every page is checked for Secrets and kubeconfigs as `saveOnce` checks the whole
   * list, before its bytes are written anywhere; without a key a sensitive page throws
   * {@link PlaintextSecretError} and nothing is stored. Otherwise as {@link saveOnceStream}.
   */
  async saveListOnce<T>(
    key: string,
    head: object,
    pages: AsyncIterable<readonly T[]> | Iterable<readonly T[]>,
    opts: SaveListOptions<T> = {},
  ): Promise<SaveListResult> {
    const { items: _items, ...fields } = head as Record<string, unknown>;
    const shell = JSON.stringify({ ...fields, items: [] });
    if (!shell.endsWith('"items":[]}')) {
      throw new ValidationError(`the head of list '${key}' does not serialise as a JSON object`);
    }
    let reason =
      opts.sensitive === true ? 'the caller marked it sensitive' : sensitiveReason(JSON.parse(shell));
    let count = 0;
    const isSensitive = typeof opts.sensitive === 'function' ? opts.sensitive : undefined;
    const refuse = (r: string | undefined): void => {
      this.refusePlaintext(key, r);
    };
    async function* chunks(): AsyncGenerator<string | Uint8Array> {
      refuse(reason);
      yield shell.slice(0, -2);
      for await (const page of pages) {
        if (page.length === 0) continue;
        reason ??= isSensitive?.(page)
          ? 'the caller marked it sensitive'
          : sensitiveItemsReason(fields, page, count);
        // Before the page's bytes reach the spool.
        refuse(reason);
        // `[a,b]` → `a,b` as bytes: slicing or concatenating the string would make V8 flatten a copy.
        const json = Buffer.from(JSON.stringify(page), 'utf8');
        if (count > 0) yield ',';
        yield json.subarray(1, -1);
        count += page.length;
      }
      yield ']}';
    }
    const result = await this.saveStreamOnce(key, chunks(), JSON_CONTENT_TYPE, () => reason);
    return { ...result, items: result.created ? count : undefined };
  }

  /**
   * Records, once, that the backup under `key` was taken and found nothing to back up (the object
   * or its kind did not exist). False when something is stored under `key` already (a backup or
   * an earlier record): the first record of the pre-change state wins, as with {@link saveOnce}.
   * Loading the key then throws {@link BackupRecordedAbsent} carrying `record`.
   */
  async saveAbsentOnce(key: string, record: Omit<AbsentRecord, 'absent'>): Promise<boolean> {
    const full = this.fullKey(key);
    const payload: AbsentRecord = { absent: true, reason: record.reason, recordedBy: record.recordedBy };
    const bytes = this.encode(full, key, jsonBytes(payload, key), ABSENT_CONTENT_TYPE, undefined);
    return this.#storage.putIfAbsent(full, bytes);
  }

  /**
   * Reads and verifies the object, and parses it: JSON, or YAML for a `…yaml` content type.
   * Throws {@link BackupKeyNotFound} (or its subclass {@link BackupRecordedAbsent} for a key that
   * records "nothing to back up"), {@link IntegrityError} or {@link EncryptionKeyError}.
   */
  async load<T = unknown>(key: string): Promise<T> {
    const { info, payload } = await this.loadPresent(key);
    const text = Buffer.from(payload).toString('utf8');
    if (info.contentType === JSON_CONTENT_TYPE || info.contentType.endsWith('+json')) {
      try {
        return JSON.parse(text) as T;
      } catch {
        // Verified bytes that do not parse were written that way (saveRaw with a wrong type).
        throw new KsUpgradeError(
          `backup object '${key}' in ${this.location} is marked JSON but is not valid JSON`,
          {
            hint: 'it was written with saveRaw and a wrong contentType; read it with loadRaw',
          },
        );
      }
    }
    if (/yaml/i.test(info.contentType)) {
      try {
        return loadYaml(text) as T;
      } catch {
        throw new KsUpgradeError(
          `backup object '${key}' in ${this.location} is marked YAML but does not parse`,
          {
            hint: 'read it with loadRaw',
          },
        );
      }
    }
    throw new KsUpgradeError(
      `backup object '${key}' in ${this.location} holds ${info.contentType}, not JSON or YAML`,
      { hint: 'read it with loadRaw' },
    );
  }

  /** Writes bytes (or UTF-8 text) as is, replacing what is there. */
  async saveRaw(key: string, data: Uint8Array | string, opts: SaveRawOptions = {}): Promise<void> {
    const full = this.fullKey(key);
    const bytes = toBytes(data);
    const contentType = opts.contentType ?? (typeof data === 'string' ? 'text/plain' : BINARY_CONTENT_TYPE);
    await this.#storage.put(
      full,
      this.encode(full, key, bytes, contentType, this.isRawSensitive(bytes, opts)),
    );
  }

  /** {@link saveOnce} for bytes: writes only if absent, else returns the stored bytes. */
  async saveRawOnce(
    key: string,
    data: Uint8Array | string,
    opts: SaveRawOptions = {},
  ): Promise<SaveOnceResult<Uint8Array>> {
    const full = this.fullKey(key);
    const bytes = toBytes(data);
    const contentType = opts.contentType ?? (typeof data === 'string' ? 'text/plain' : BINARY_CONTENT_TYPE);
    const encoded = this.encode(full, key, bytes, contentType, this.isRawSensitive(bytes, opts));
    if (await this.#storage.putIfAbsent(full, encoded)) return { value: bytes, created: true };
    return { value: await this.loadRaw(key), created: false };
  }

  /** The verified (and decrypted) bytes; errors as {@link load}. */
  async loadRaw(key: string): Promise<Uint8Array> {
    return (await this.loadPresent(key)).payload;
  }

  /**
   * The verified, decrypted payload together with its header facts — any object, absent records
   * included (their content type is {@link ABSENT_CONTENT_TYPE}).
   */
  async loadEntry(key: string): Promise<BackupEntry> {
    const full = this.fullKey(key);
    const parsed = parseObject(await this.read(key, full), headerKeyFor(full), this.#storage.location);
    const payload = openPayload(parsed, this.#key, this.#storage.location);
    return { info: this.info(key, parsed.header), payload };
  }

  /**
   * Checks one object completely without parsing its payload. Encrypted objects are decrypted
   * when a key is configured; without one only size and sha256 of the ciphertext are checked.
   */
  async verify(key: string): Promise<VerifyResult> {
    const full = this.fullKey(key);
    const parsed = parseObject(await this.read(key, full), headerKeyFor(full), this.#storage.location);
    if (parsed.header.encryption && !this.#key)
      return { info: this.info(key, parsed.header), decrypted: false };
    openPayload(parsed, this.#key, this.#storage.location);
    return { info: this.info(key, parsed.header), decrypted: parsed.header.encryption !== null };
  }

  /** Header facts after the size and sha256 check, without decrypting. */
  async stat(key: string): Promise<BackupInfo> {
    const full = this.fullKey(key);
    const parsed = parseObject(await this.read(key, full), headerKeyFor(full), this.#storage.location);
    return this.info(key, parsed.header);
  }

  /** Removes the object; false when there was none. */
  async delete(key: string): Promise<boolean> {
    return this.#storage.delete(this.fullKey(key));
  }

  async exists(key: string): Promise<boolean> {
    return this.#storage.exists(this.fullKey(key));
  }

  /** Keys in this scope starting with `prefix`, relative to the scope, sorted. */
  async list(prefix = ''): Promise<string[]> {
    assertSafePrefix(prefix, this.location);
    const keys = await this.#storage.list(this.#base + prefix);
    const relative = keys.map((k) => k.slice(this.#base.length));
    return this.#scope.kind === 'shared'
      ? relative.filter((k) => (SHARED_KEYS as readonly string[]).includes(k))
      : relative;
  }

  /** Would the store refuse to write this value in plaintext? (Reason, or undefined.) */
  static sensitiveReason(value: unknown): string | undefined {
    return sensitiveReason(value);
  }

  private fullKey(key: string): string {
    const reason = unsafeKeyReason(key);
    if (reason !== undefined) {
      throw new UnsafeKeyError(
        `unsafe backup key ${JSON.stringify(key)} in ${scopeLabel(this.#scope)}: ${reason}`,
        {
          hint: 'keys are relative to the job scope: "/"-separated segments, no "..", no leading "/" or "."',
        },
      );
    }
    if (this.#scope.kind === 'shared' && !(SHARED_KEYS as readonly string[]).includes(key)) {
      throw new UnsafeKeyError(
        `'${key}' is not a shared backup key; shared keys are: ${SHARED_KEYS.join(', ')}`,
        {
          hint: 'keep job data in the job scope, or add the key to SHARED_KEYS (src/store) and docs/backups.md',
        },
      );
    }
    return this.#base + key;
  }

  /** {@link loadEntry}, with an absent record turned into {@link BackupRecordedAbsent}. */
  private async loadPresent(key: string): Promise<BackupEntry> {
    const entry = await this.loadEntry(key);
    if (entry.info.contentType !== ABSENT_CONTENT_TYPE) return entry;
    throw new BackupRecordedAbsent(
      key,
      this.fullKey(key),
      this.#storage.location,
      parseAbsentRecord(entry.payload, key, this.location),
    );
  }

  private async read(key: string, full: string): Promise<Uint8Array> {
    try {
      return await this.#storage.get(full);
    } catch (err) {
      if (err instanceof StorageKeyNotFound && !(err instanceof BackupKeyNotFound)) {
        throw new BackupKeyNotFound(key, full, this.#storage.location);
      }
      throw err;
    }
  }

  /** Spool, then create if absent; see {@link saveOnceStream}. `sensitive` is asked at the end. */
  private async saveStreamOnce(
    key: string,
    source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
    contentType: string,
    sensitive: () => string | undefined,
  ): Promise<SaveStreamResult> {
    const full = this.fullKey(key);
    this.refusePlaintext(key, sensitive());
    // Like backupOnce's load first: a stored object wins, and the source (a cluster read) is not needed.
    if (await this.#storage.exists(full)) return { created: false, info: (await this.loadPresent(key)).info };
    const spooled = await spoolObject(source, {
      key: full,
      contentType,
      encryptionKey: this.#key,
      sensitive: () => {
        const reason = sensitive();
        this.refusePlaintext(key, reason);
        return reason !== undefined;
      },
    });
    try {
      if (await this.#storage.putIfAbsentFrom(full, spooled.source)) {
        return { created: true, info: this.info(key, spooled.header) };
      }
    } finally {
      await spooled.close();
    }
    return { created: false, info: (await this.loadPresent(key)).info };
  }

  private isSensitive(obj: unknown, opts: SaveOptions): string | undefined {
    return opts.sensitive ? 'the caller marked it sensitive' : sensitiveReason(obj);
  }

  private isRawSensitive(bytes: Uint8Array, opts: SaveOptions): string | undefined {
    return opts.sensitive ? 'the caller marked it sensitive' : sensitiveBytesReason(bytes);
  }

  private encode(
    full: string,
    key: string,
    plaintext: Uint8Array,
    contentType: string,
    sensitive: string | undefined,
  ): Buffer {
    this.refusePlaintext(key, sensitive);
    return encodeObject({
      key: full,
      plaintext,
      contentType,
      sensitive: sensitive !== undefined,
      encryptionKey: this.#key,
    });
  }

  /** Throws {@link PlaintextSecretError} for sensitive data when no key is configured. */
  private refusePlaintext(key: string, sensitive: string | undefined): void {
    if (sensitive !== undefined && !this.#key) {
      throw new PlaintextSecretError(
        `refusing to store '${key}' in ${this.location} in plaintext: it contains ${sensitive}`,
        {
          hint:
            'configure an encryption key: storage.encryption.keyFile (a file with 32 random bytes: ' +
            '`head -c 32 /dev/urandom > backup.key`) or storage.encryption.keyEnv (a variable with 64 hex characters)',
        },
      );
    }
  }

  private info(key: string, header: BackupHeader): BackupInfo {
    return {
      key,
      size: header.size,
      contentType: header.contentType,
      createdAt: header.createdAt,
      sensitive: header.sensitive,
      encrypted: header.encryption !== null,
      keyId: header.encryption?.keyId,
      sha256: header.sha256,
      writer: header.writer,
    };
  }
}

function parseAbsentRecord(payload: Uint8Array, key: string, location: string): AbsentRecord {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    value = undefined;
  }
  const r = value as Partial<AbsentRecord> | undefined;
  if (r?.absent !== true || typeof r.reason !== 'string' || typeof r.recordedBy !== 'string') {
    throw new KsUpgradeError(
      `backup object '${key}' in ${location} is marked absent but is not an absent record`,
      {
        hint: 'an absent record is {"absent": true, "reason": …, "recordedBy": …} (docs/backups.md); delete the object and take the backup again',
      },
    );
  }
  return { absent: true, reason: r.reason, recordedBy: r.recordedBy };
}

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

function jsonBytes(obj: unknown, key: string): Buffer {
  // Typed as string, but undefined for `undefined`, functions and symbols.
  let json: string | undefined;
  try {
    const stringify: (value: unknown) => string | undefined = JSON.stringify;
    json = stringify(obj);
  } catch (err) {
    throw new ValidationError(`cannot save '${key}': ${err instanceof Error ? err.message : String(err)}`, {
      hint: 'save plain JSON data (no cycles, no BigInt)',
    });
  }
  // JSON.stringify(undefined) and of a function is undefined: storing nothing would read back as
  // a parse error much later, far from the bug.
  if (json === undefined) {
    throw new ValidationError(`cannot save '${key}': the value is ${typeof obj}, not JSON-serialisable`);
  }
  return Buffer.from(json, 'utf8');
}
