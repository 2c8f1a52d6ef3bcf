import { KsUpgradeError } from '../errors.js';
import { StorageKeyNotFound } from '../storage/storage.js';

/**
 * No backup under this key. Extends {@link StorageKeyNotFound}, so code written against either
 * catches it. `key` is the key as the caller named it (relative to its scope); `storageKey` is the
 * full key in the backend.
 */
export class BackupKeyNotFound extends StorageKeyNotFound {
  constructor(
    key: string,
    readonly storageKey: string,
    location: string,
  ) {
    super(key, storageKey === key ? location : `${location} (stored as '${storageKey}')`);
  }
}

/** What an absent record says (docs/backups.md, "Absent records"). */
export interface AbsentRecord {
  absent: true;
  /** Why there was nothing to back up, e.g. `CRD ippools.network.kubesphere.io not found`. */
  reason: string;
  /** Who recorded it: `<job> <phase>`, or the importer of a Go tool store. */
  recordedBy: string;
}

/**
 * The key records that its backup was taken and there was nothing to back up. A subclass of
 * {@link BackupKeyNotFound}, so code that treats "not stored" as "nothing to restore" keeps
 * working; code that must tell "recorded absent" from "never taken" checks for this class.
 */
export class BackupRecordedAbsent extends BackupKeyNotFound {
  constructor(
    key: string,
    storageKey: string,
    location: string,
    readonly record: AbsentRecord,
  ) {
    super(key, storageKey, location);
    this.message = `backup '${key}' records that there was nothing to back up (${record.reason}; recorded by ${record.recordedBy})`;
  }
}

/**
 * A stored object failed verification: no or wrong header, header for another key, truncated,
 * size or sha256 mismatch, or an AES-GCM authentication failure. The object is never parsed.
 * Retrying cannot help (non-retryable).
 */
export class IntegrityError extends KsUpgradeError {
  constructor(
    readonly storageKey: string,
    location: string,
    /** What is wrong, without the key and location (for tables such as `backups verify`). */
    readonly problem: string,
    hint?: string,
  ) {
    super(`backup object '${storageKey}' in ${location} failed verification: ${problem}`, {
      hint:
        hint ??
        'the object was changed or damaged after ks-upgrade wrote it: restore it from a copy of the backup ' +
          'storage; run `ks-upgrade backups verify` to find every damaged object',
    });
  }
}

/**
 * The encryption key is unusable (bad length or format, unreadable file, unset variable) or is not
 * the key an object was encrypted with. The message names the setting, never the key.
 */
export class EncryptionKeyError extends KsUpgradeError {}

/**
 * Refused to store a Secret, a kubeconfig or other sensitive data in plaintext: no encryption key
 * is configured. Nothing was written.
 */
export class PlaintextSecretError extends KsUpgradeError {}
