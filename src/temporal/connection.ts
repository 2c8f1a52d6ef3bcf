import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from '@temporalio/client';
import { ValidationError } from '../errors.js';
import { codecKeySource, type CodecKeySource } from './codec.js';

/** How to reach a Temporal service. Flags win over the environment (same names as the temporal CLI). */
export interface TemporalSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  /** mTLS client certificate and key files, and an optional server CA file. */
  tlsCertPath?: string;
  tlsKeyPath?: string;
  tlsCaPath?: string;
  /** Temporal Cloud API key (read from the environment only, never from flags or files in git). */
  apiKey?: string;
  /** The payload codec's keys (none: payloads are not encrypted). */
  codec?: CodecKeySource;
}

export const DEFAULT_TASK_QUEUE = 'ks-upgrade';

/**
 * Settings from flags and env: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_CERT/KEY/CA,
 * TEMPORAL_API_KEY, KS_UPGRADE_CODEC_KEY_FILE / KS_UPGRADE_CODEC_KEY.
 */
export function temporalSettings(
  flags: Partial<
    Pick<TemporalSettings, 'address' | 'namespace' | 'taskQueue' | 'tlsCertPath' | 'tlsKeyPath' | 'tlsCaPath'>
  > & { codecKeyFile?: string },
  env: NodeJS.ProcessEnv = process.env,
): Partial<TemporalSettings> & Pick<TemporalSettings, 'namespace' | 'taskQueue'> {
  const address = flags.address ?? env.TEMPORAL_ADDRESS;
  const cert = flags.tlsCertPath ?? env.TEMPORAL_TLS_CERT;
  const key = flags.tlsKeyPath ?? env.TEMPORAL_TLS_KEY;
  const ca = flags.tlsCaPath ?? env.TEMPORAL_TLS_CA;
  const codec = codecKeySource(flags, env);
  return {
    ...(address ? { address } : {}),
    namespace: flags.namespace ?? env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: flags.taskQueue ?? env.KS_UPGRADE_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
    ...(cert ? { tlsCertPath: cert } : {}),
    ...(key ? { tlsKeyPath: key } : {}),
    ...(ca ? { tlsCaPath: ca } : {}),
    ...(env.TEMPORAL_API_KEY ? { apiKey: env.TEMPORAL_API_KEY } : {}),
    ...(codec.keyFile || codec.keys ? { codec } : {}),
  };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch {
    throw new ValidationError(`cannot read the ${what} file ${file}`, {
      hint: `check --tls-${what} / TEMPORAL_TLS_*`,
    });
  }
}

/** Connection options for @temporalio/client and NativeConnection (TLS and API key included). */
export function connectionOptions(
  s: TemporalSettings,
): Pick<ConnectionOptions, 'address' | 'tls'> & { apiKey?: string } {
  if ((s.tlsCertPath === undefined) !== (s.tlsKeyPath === undefined)) {
    throw new ValidationError('mTLS needs both a client certificate and its key', {
      hint: 'set both --tls-cert and --tls-key (or TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY)',
    });
  }
  const tls =
    s.tlsCertPath && s.tlsKeyPath
      ? {
          clientCertPair: { crt: readPem(s.tlsCertPath, 'cert'), key: readPem(s.tlsKeyPath, 'key') },
          ...(s.tlsCaPath ? { serverRootCACertificate: readPem(s.tlsCaPath, 'ca') } : {}),
        }
      : s.tlsCaPath
        ? { serverRootCACertificate: readPem(s.tlsCaPath, 'ca') }
        : s.apiKey
          ? true
          : undefined;
  return {
    address: s.address,
    ...(tls === undefined ? {} : { tls }),
    ...(s.apiKey ? { apiKey: s.apiKey } : {}),
  };
}
