import { REDACTED } from './defaults.js';
import type { UpgradeConfig } from './types.js';

const SECRET_KEYS = ['accessKeyID', 'secretAccessKey', 'sessionToken'] as const;

/**
 * A deep copy of the config with inline S3 credentials replaced by `'<redacted>'`, for plans, logs
 * and anything else a human or a workflow history may see. Paths (credentialsFile, keyFile) and
 * variable names (keyEnv) are not secrets and stay.
 */
export function redactConfig(config: UpgradeConfig): UpgradeConfig {
  const copy = structuredClone(config);
  const s3 = copy.storage.s3;
  if (s3 !== undefined) {
    for (const key of SECRET_KEYS) if (s3[key] !== undefined) s3[key] = REDACTED;
  }
  return copy;
}

/**
 * The literal secret strings present in the config (inline S3 credentials), for checks that they
 * never reach workflow input, history, logs or backups.
 */
export function configSecrets(config: UpgradeConfig): string[] {
  const s3 = config.storage.s3;
  if (s3 === undefined) return [];
  return SECRET_KEYS.map((key) => s3[key]).filter((v): v is string => v !== undefined && v !== '');
}
