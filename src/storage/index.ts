import type { StorageConfig } from '../config/types.js';
import { LocalStorage } from './local.js';
import { S3Storage } from './s3.js';
import type { Storage } from './storage.js';

export * from './storage.js';
export { LocalStorage } from './local.js';
export {
  S3Storage,
  resolveS3Credentials,
  readS3CredentialsFile,
  S3_CREDENTIAL_ERRORS,
  s3EndpointUrl,
  type S3Credentials,
  type S3StorageOptions,
} from './s3.js';

/**
 * The backend the config asks for: S3 when `storage.s3` is present, else the local directory
 * (the original tool's rule). Nothing is contacted yet; a missing bucket or an unwritable
 * directory shows on first use, as a {@link StorageUnavailableError} with the fix.
 */
export function createStorage(config: StorageConfig): Promise<Storage> {
  // A constructor that throws (bad credentials file, empty path) rejects rather than throws.
  return new Promise((resolve) => {
    resolve(config.s3 ? new S3Storage(config.s3) : new LocalStorage(config.local.path));
  });
}
