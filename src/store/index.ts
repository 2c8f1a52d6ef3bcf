import type { StorageConfig } from '../config/types.js';
import { createStorage } from '../storage/index.js';
import { loadEncryptionKey } from './encryption.js';
import { ResourceStore } from './resource-store.js';

export {
  ResourceStore,
  SHARED_KEYS,
  SHARED_SCOPE,
  GO_IMPORT_KEY,
  JSON_CONTENT_TYPE,
  BINARY_CONTENT_TYPE,
  ABSENT_CONTENT_TYPE,
  type SharedKey,
  type GoImportRecord,
  type SaveOptions,
  type SaveRawOptions,
  type SaveOnceResult,
  type SaveStreamOptions,
  type SaveStreamResult,
  type SaveListOptions,
  type SaveListResult,
  type BackupInfo,
  type BackupEntry,
  type VerifyResult,
} from './resource-store.js';
export {
  BackupKeyNotFound,
  BackupRecordedAbsent,
  IntegrityError,
  EncryptionKeyError,
  PlaintextSecretError,
  type AbsentRecord,
} from './errors.js';
export {
  ATTEMPTS_SCOPE,
  abortedAttemptName,
  groupByAttempt,
  parseArchivedKey,
  type AttemptSummary,
  type MovedAttempt,
} from './attempts.js';
export { EncryptionKey, loadEncryptionKey, parseKeyFile, ENCRYPTION_ALGORITHM } from './encryption.js';
export {
  FORMAT_MAGIC,
  encodeObject,
  parseObject,
  openPayload,
  type BackupHeader,
  type EncryptionHeader,
} from './format.js';
export { sensitiveReason, sensitiveBytesReason } from './sensitive.js';
export { SPOOL_PREFIX } from './spool.js';
export { growParts, laterParts, loadParts } from './parts.js';

/**
 * The root store for `storage`: the backend it names plus the encryption key of
 * `storage.encryption` (read from the file or from `env`). Jobs use `store.scope(cluster, job)`.
 * Throws {@link EncryptionKeyError} for an unusable key, before anything is read or written.
 */
export async function createResourceStore(
  config: StorageConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ResourceStore> {
  const encryptionKey = await loadEncryptionKey(config.encryption, env);
  const storage = await createStorage(config);
  return new ResourceStore(storage, { encryptionKey });
}
