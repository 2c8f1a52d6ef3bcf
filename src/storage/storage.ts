import { KsUpgradeError } from '../errors.js';

/**
 * Byte-level object storage for backups. Keys are `/`-separated relative paths (no leading `/`,
 * no `.` or `..` segments, no empty segments); backends reject anything else with
 * {@link UnsafeKeyError}. Both backends behave identically; one contract test suite covers both.
 */
export interface Storage {
  /** Human-readable location, e.g. `local:/tmp/ks-upgrade` or `s3://bucket/prefix/`. Never secrets. */
  readonly location: string;
  /** Writes (or overwrites) atomically: a reader sees the old bytes or the new, never a mix. */
  put(key: string, data: Uint8Array): Promise<void>;
  /**
   * Writes only if the key does not exist, atomically with respect to concurrent writers.
   * Returns true when this call created the object, false when it already existed (unchanged).
   */
  putIfAbsent(key: string, data: Uint8Array): Promise<boolean>;
  /**
   * {@link putIfAbsent} for bytes that are not held in memory (a spooled backup): the same atomic,
   * never-overwriting create, reading `source` range by range. Memory stays bounded by the
   * backend's chunk (local: 1 MiB) or part size (S3), whatever `source.size` is.
   */
  putIfAbsentFrom(key: string, source: ObjectSource): Promise<boolean>;
  /** The stored bytes; {@link StorageKeyNotFound} when absent. */
  get(key: string): Promise<Uint8Array>;
  exists(key: string): Promise<boolean>;
  /** Removes the key. Deleting an absent key is not an error (returns false). */
  delete(key: string): Promise<boolean>;
  /** Every key starting with `prefix` (a plain string prefix), sorted ascending. */
  list(prefix: string): Promise<string[]>;
}

/**
 * The bytes of an object to write, read in ranges. Ranges may be read more than once (a retried
 * request), so a source is a file or a buffer, not a one-shot stream.
 */
export interface ObjectSource {
  /** Total length in bytes. */
  readonly size: number;
  /** Bytes `[offset, offset + length)`, with `0 < length` and `offset + length <= size`. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** An {@link ObjectSource} over bytes already in memory (no copy). */
export function bytesSource(data: Uint8Array): ObjectSource {
  return {
    size: data.byteLength,
    read: (offset, length) => Promise.resolve(data.subarray(offset, offset + length)),
  };
}

/** The key is not in the storage. Same error from every backend. */
export class StorageKeyNotFound extends KsUpgradeError {
  constructor(
    readonly key: string,
    location: string,
  ) {
    super(`backup key '${key}' not found in ${location}`);
  }
}

/** A key that is malformed or would escape the storage root. */
export class UnsafeKeyError extends KsUpgradeError {}

/** The storage itself is unusable (missing bucket, no permission, unreachable endpoint). */
export class StorageUnavailableError extends KsUpgradeError {}

/**
 * Two keys collide because one would be a "folder" of the other (`a/b` and `a/b/c`): a file
 * system cannot hold both, and neither can S3 servers that store objects as files (versitygw).
 */
export class KeyConflictError extends KsUpgradeError {}

/** Longest key, in UTF-8 bytes, after the S3 prefix: S3's own limit is 1024 bytes. */
export const MAX_KEY_BYTES = 900;
/** Longest key segment, in UTF-8 bytes: NAME_MAX of common file systems. */
export const MAX_SEGMENT_BYTES = 255;

/**
 * Why `key` is not a safe storage key, or undefined when it is. The rules are the same for every
 * backend, so a key that works on local storage works on S3 and vice versa.
 */
export function unsafeKeyReason(key: string): string | undefined {
  if (key === '') return 'the key is empty';
  if (key.startsWith('/')) return 'it is an absolute path (keys are relative: no leading "/")';
  if (key.includes('\\')) return 'it contains a backslash (use "/" to separate segments)';
  // Control characters (NUL above all) are cut or rejected by file systems and S3 servers alike.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'it contains a control character (NUL, newline, …)';
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) return `it is longer than ${MAX_KEY_BYTES} bytes`;
  for (const segment of key.split('/')) {
    if (segment === '') return 'it has an empty segment ("//" or a trailing "/")';
    if (segment === '..') return 'it has a ".." segment, which would escape the storage root';
    if (segment === '.') return 'it has a "." segment';
    // Leading dots are reserved: local storage names its temporary files ".ks-upgrade-tmp-*",
    // and S3 servers keep their own state in dot-folders (versitygw: ".sgwtmp").
    if (segment.startsWith('.')) return `segment '${segment}' starts with "." (reserved for temporary files)`;
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) {
      return `segment '${segment.slice(0, 40)}…' is longer than ${MAX_SEGMENT_BYTES} bytes`;
    }
  }
  return undefined;
}

/** Throws {@link UnsafeKeyError} naming the key, the location and the rule it breaks. */
export function assertSafeKey(key: string, location: string): void {
  const reason = unsafeKeyReason(key);
  if (reason !== undefined) {
    throw new UnsafeKeyError(`unsafe storage key ${JSON.stringify(key)} for ${location}: ${reason}`, {
      hint: 'use "/"-separated relative keys of letters, digits, "-", "_" and "." (not leading)',
    });
  }
}

/**
 * Checks a listing prefix: everything up to its last `/` must be a safe key (so a listing cannot
 * walk out of the root); the part after it is a plain string prefix of a segment.
 */
export function assertSafePrefix(prefix: string, location: string): void {
  if (prefix === '') return;
  const slash = prefix.lastIndexOf('/');
  const dir = slash < 0 ? '' : prefix.slice(0, slash);
  const rest = slash < 0 ? prefix : prefix.slice(slash + 1);
  if (prefix.startsWith('/')) {
    throw new UnsafeKeyError(
      `unsafe listing prefix ${JSON.stringify(prefix)} for ${location}: it is absolute`,
    );
  }
  if (slash >= 0) assertSafeKey(dir, location);
  // eslint-disable-next-line no-control-regex
  if (rest.includes('\\') || /[\u0000-\u001f\u007f]/.test(rest)) {
    throw new UnsafeKeyError(
      `unsafe listing prefix ${JSON.stringify(prefix)} for ${location}: it contains a backslash or a control character`,
    );
  }
}
