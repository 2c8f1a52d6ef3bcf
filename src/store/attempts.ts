// Each attempt at upgrading a cluster keeps its backups apart. When an attempt is aborted or
// cancelled, its rollback restored what it could from them; then they are moved under
// `<cluster>/_attempts/aborted-<time>-<run>/`, so that a new attempt backs up the cluster as it is
// now (not as it was before the aborted one) and a second rollback can never restore stale objects.
// The moved objects keep their bytes, so `backups list`, `show` and `verify` still read them.
import { KsUpgradeError, ValidationError } from '../errors.js';
import { StorageKeyNotFound, type Storage } from '../storage/storage.js';

/** The folder of a cluster that holds the backups of earlier, aborted attempts. */
export const ATTEMPTS_SCOPE = '_attempts';

const ATTEMPT_NAME = /^aborted-\d{8}T\d{6}Z-[a-z0-9]{1,12}$/;
const CLUSTER_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const SCOPE_NAME = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?|_shared)$/;

/**
 * The folder name of an aborted attempt: `aborted-20261202T175500Z-1a2b3c4d` (UTC time of the abort,
 * then the start of the workflow run ID). Both come from the workflow, so a retried move uses the
 * same folder.
 */
export function abortedAttemptName(at: string | Date, runId: string): string {
  const time = new Date(at);
  if (Number.isNaN(time.getTime())) {
    throw new ValidationError(`invalid attempt time ${JSON.stringify(String(at))}`, {
      hint: 'pass an ISO 8601 time such as 2026-12-02T17:55:00Z',
    });
  }
  const compact = time
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const run = runId
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(0, 8);
  if (run === '') {
    throw new ValidationError(`invalid run ID ${JSON.stringify(runId)} for an attempt folder`, {
      hint: "pass the workflow run's ID",
    });
  }
  return `aborted-${compact}-${run}`;
}

/** Where an archived object lives: its attempt and the key it was written under. */
export interface ArchivedKey {
  cluster: string;
  attempt: string;
  /** The key the object was written under (its header names it), e.g. `host/core/core-replicas`. */
  originalKey: string;
}

/** For `<cluster>/_attempts/<attempt>/<rest>`: the attempt and `<cluster>/<rest>`; else undefined. */
export function parseArchivedKey(fullKey: string): ArchivedKey | undefined {
  const parts = fullKey.split('/');
  const [cluster, scope, attempt] = parts;
  if (cluster === undefined || attempt === undefined || scope !== ATTEMPTS_SCOPE || parts.length < 5) {
    return undefined;
  }
  if (!ATTEMPT_NAME.test(attempt)) return undefined;
  return { cluster, attempt, originalKey: [cluster, ...parts.slice(3)].join('/') };
}

/**
 * The key an object's header must name: its own key, or for an archived object the key it was
 * written under. An object copied anywhere else still fails verification.
 */
export function headerKeyFor(fullKey: string): string {
  return parseArchivedKey(fullKey)?.originalKey ?? fullKey;
}

/** What {@link moveAttemptAside} did. */
export interface MovedAttempt {
  /** `<cluster>/_attempts/<attempt>/` */
  folder: string;
  /** Keys moved by this call or an earlier, interrupted one (original keys, sorted). */
  moved: string[];
}

/**
 * Moves every object of `scopes` (job names, `_shared`) of `cluster` under
 * `<cluster>/_attempts/<attempt>/`, byte for byte: each object is copied if absent, checked, then
 * deleted at its old key. Safe to run again after a crash at any point: an object already copied
 * is not copied twice, and one whose copy differs stops the move rather than overwrite a backup.
 */
export async function moveAttemptAside(
  storage: Storage,
  options: { cluster: string; scopes: readonly string[]; attempt: string },
): Promise<MovedAttempt> {
  const { cluster, attempt } = options;
  if (!CLUSTER_NAME.test(cluster)) {
    throw new ValidationError(`invalid cluster name ${JSON.stringify(cluster)} for the backup store`);
  }
  if (!ATTEMPT_NAME.test(attempt)) {
    throw new ValidationError(`invalid attempt folder ${JSON.stringify(attempt)}`, {
      hint: 'make it with abortedAttemptName(time, runId)',
    });
  }
  const bad = options.scopes.filter((s) => !SCOPE_NAME.test(s));
  if (bad.length > 0) throw new ValidationError(`invalid backup scopes: ${bad.join(', ')}`);
  const folder = `${cluster}/${ATTEMPTS_SCOPE}/${attempt}/`;
  const moved = new Set<string>();
  for (const scope of [...new Set(options.scopes)].sort()) {
    for (const key of await storage.list(`${cluster}/${scope}/`)) {
      const target = folder + key.slice(cluster.length + 1);
      let bytes: Uint8Array;
      try {
        bytes = await storage.get(key);
      } catch (err) {
        if (err instanceof StorageKeyNotFound) continue; // moved by a concurrent retry
        throw err;
      }
      if (!(await storage.putIfAbsent(target, bytes))) {
        const stored = await storage.get(target);
        if (!Buffer.from(stored).equals(Buffer.from(bytes))) {
          throw new KsUpgradeError(
            `cannot move backup '${key}' aside: '${target}' in ${storage.location} already holds a different object`,
            {
              hint: `compare both objects (ks-upgrade backups show), keep the right one under '${target}', delete '${key}', then retry`,
            },
          );
        }
      }
      await storage.delete(key);
      moved.add(key);
    }
  }
  // Objects an interrupted earlier run already moved are part of the attempt too.
  for (const key of await storage.list(folder)) moved.add(`${cluster}/${key.slice(folder.length)}`);
  return { folder, moved: [...moved].sort() };
}

/** One aborted attempt of a cluster, as `backups list` shows it. */
export interface AttemptSummary {
  cluster: string;
  attempt: string;
  /** Full keys under the attempt's folder. */
  keys: string[];
}

/** Splits full keys into the current backups and those of aborted attempts, grouped by attempt. */
export function groupByAttempt(keys: readonly string[]): { current: string[]; attempts: AttemptSummary[] } {
  const current: string[] = [];
  const attempts = new Map<string, AttemptSummary>();
  for (const key of keys) {
    const archived = parseArchivedKey(key);
    if (!archived) {
      current.push(key);
      continue;
    }
    const id = `${archived.cluster}/${archived.attempt}`;
    let group = attempts.get(id);
    if (!group) {
      group = { cluster: archived.cluster, attempt: archived.attempt, keys: [] };
      attempts.set(id, group);
    }
    group.keys.push(key);
  }
  return { current, attempts: [...attempts.values()] };
}
