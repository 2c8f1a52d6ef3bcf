import type { GateMode } from './types.js';

/**
 * Defaults of settings that are absent (or null). The first group is the original tool's code
 * defaults (not its repository config.yaml, which enables more); the rest are ours.
 */
export const CONFIG_DEFAULTS = {
  localPath: '/tmp/ks-upgrade',
  ksVersionEnabled: false,
  museumEnabled: false,
  museumNamespace: 'kubesphere-system',
  museumName: 'extensions-museum',
  museumSyncIntervalMs: 0,
  /** Also used when watchTimeout is 0, as the original does. */
  museumWatchTimeoutMs: 5 * 60_000,
  jobEnabled: false,
  jobPriority: 0,
  gate: 'signal' as GateMode,
  /** upgrade.sh of KubeSphere v4.1.3 runs `helm upgrade … --timeout 30m`. */
  helmTimeoutMs: 30 * 60_000,
  s3CreateBucket: false,
  s3MultipartThreshold: 8 * 1024 * 1024,
} as const;

/** S3 rejects multipart parts below 5 MiB (except the last), so a lower threshold cannot work. */
export const MIN_MULTIPART_THRESHOLD = 5 * 1024 * 1024;

/** The original README's snake_case spellings of S3 keys, accepted as aliases of the canonical key. */
export const S3_KEY_ALIASES: readonly (readonly [alias: string, canonical: string])[] = [
  ['access_key_id', 'accessKeyID'],
  ['secret_access_key', 'secretAccessKey'],
  ['session_token', 'sessionToken'],
  ['disable_ssl', 'disableSSL'],
  ['force_path_style', 'forcePathStyle'],
];

/** Values `redactConfig` writes in place of credentials. */
export const REDACTED = '<redacted>';
