import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { S3StorageConfig, StorageConfig } from '../../src/config/types.js';
import { S3Storage } from '../../src/storage/s3.js';
import { ABSENT_CONTENT_TYPE, createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { devEnv, repoRoot, uniqueName } from './env.js';

export const MIB = 1024 * 1024;

/** S3 storage config for the dev server under a fresh prefix of the shared test bucket. */
export function devS3Config(overrides: Partial<S3StorageConfig> = {}): S3StorageConfig {
  const env = devEnv();
  return {
    endpoint: env.s3Endpoint,
    region: env.s3Region,
    bucket: env.s3Bucket,
    disableSSL: true,
    forcePathStyle: true,
    prefix: `${uniqueName('storage')}/`,
    createBucket: false,
    multipartThreshold: 8 * MIB,
    accessKeyID: env.s3AccessKeyId,
    secretAccessKey: env.s3SecretAccessKey,
    ...overrides,
  };
}

/** A temp dir removed by the returned cleanup. */
export async function tempDir(label: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `ks-upgrade-${label}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Deletes everything under the config's prefix (the shared bucket would fill up otherwise). */
export async function purgeS3Prefix(config: S3StorageConfig): Promise<void> {
  const storage = new S3Storage(config);
  const keys = await storage.list('');
  for (let i = 0; i < keys.length; i += 64) {
    await Promise.all(keys.slice(i, i + 64).map((k) => storage.delete(k)));
  }
}

export function localStorageConfig(dir: string, extra: Partial<StorageConfig> = {}): StorageConfig {
  return { local: { path: dir }, ...extra };
}

/** Deterministic, position-dependent bytes: any cut, shift or mix of two payloads is visible. */
export function patternBytes(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    // xorshift32: cheap and never repeats within the sizes used here.
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export const CHILD_SCRIPT = path.join(repoRoot, 'test/helpers/storage-child.ts');

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts test/helpers/storage-child.ts; the task goes in on stdin (payloads can exceed the
 * 128 KiB limit of one command-line argument).
 */
export function spawnChild(
  task: unknown,
  env: NodeJS.ProcessEnv = process.env,
): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD_SCRIPT], { cwd: repoRoot, env });
  child.stdin.end(JSON.stringify(task));
  return child;
}

/** Runs the child to completion and collects its output. */
export function runChild(task: unknown, env: NodeJS.ProcessEnv = process.env): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(task, env);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * A local backup store with encryption (as the jobs that store credentials require), in a fresh
 * temporary directory with a random key file.
 */
export async function encryptedTempStore(
  label: string,
): Promise<{ store: ResourceStore; dir: string; keyFile: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), label));
  const keyFile = path.join(dir, 'backup.key');
  await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
  const store = await createResourceStore({
    local: { path: path.join(dir, 'store') },
    encryption: { keyFile },
  });
  return { store, dir, keyFile };
}

/** The keys of a (scoped) store that hold a backup, sorted: absent records left out. */
export async function backedUpKeys(store: ResourceStore): Promise<string[]> {
  const keys: string[] = [];
  for (const key of await store.list())
    if ((await store.stat(key)).contentType !== ABSENT_CONTENT_TYPE) keys.push(key);
  return keys.sort();
}

/**
 * Runs `fn` while `key` is missing from `store` (as if the step that takes that backup never ran
 * against it), then puts the object back as it was.
 */
export async function withoutBackup<T>(store: ResourceStore, key: string, fn: () => Promise<T>): Promise<T> {
  const kept = await store.loadEntry(key);
  await store.delete(key);
  try {
    return await fn();
  } finally {
    await store.saveRaw(key, kept.payload, {
      contentType: kept.info.contentType,
      sensitive: kept.info.sensitive,
    });
  }
}
