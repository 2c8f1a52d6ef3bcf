// The original's store formats, kept byte-compatible in content so an upgrade the Go tool started
// can be finished here (and the other way round): phase status markers and timestamped snapshots.
import { KsUpgradeError } from '../../errors.js';
import type { KubeObject } from '../../kube/types.js';
import { BackupKeyNotFound, type ResourceStore } from '../../store/index.js';
import { KEYS, type ResourceKey, type StatusPhase } from './constants.js';
import { unixNow } from './util.js';

/** One snapshot: `list` is base64 of the list's JSON (Go's encoding of a `[]byte` field). */
export interface SnapshotEntry {
  list: string;
  timestamp: number;
}

/** A Kubernetes list as the original serialised it (`UserList`, `RoleBindingList` …). */
export interface SnapshotList<T extends KubeObject = KubeObject> {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion?: string };
  items: T[];
}

/** The phase marker: `{"status":"success","time":"<RFC3339>"}`. */
export interface PhaseStatus {
  status: string;
  time?: string;
}

/** A stored value does not have the original's format. */
export class SnapshotFormatError extends KsUpgradeError {}

async function loadJson(store: ResourceStore, key: string): Promise<unknown> {
  let raw: Uint8Array;
  try {
    raw = await store.loadRaw(key);
  } catch (err) {
    if (err instanceof BackupKeyNotFound) return undefined;
    throw err;
  }
  // loadRaw, not load: an object imported from the Go tool's store may carry any content type.
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.from(raw).toString('utf8')) as unknown;
  } catch (err) {
    throw new SnapshotFormatError(`backup '${key}' is not JSON`, {
      cause: err,
      hint: `move ${store.location}/${key} away to start that part of the upgrade afresh`,
    });
  }
}

/** The phase's marker, undefined when the phase never completed. */
export async function readStatus(store: ResourceStore, phase: StatusPhase): Promise<PhaseStatus | undefined> {
  const value = await loadJson(store, KEYS.status(phase));
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || typeof (value as PhaseStatus).status !== 'string') {
    throw new SnapshotFormatError(`backup '${KEYS.status(phase)}' is not a {status, time} marker`, {
      hint: `delete ${store.location}/${KEYS.status(phase)} to run the ${phase} phase of iam again`,
    });
  }
  return value as PhaseStatus;
}

/** True when the original (or we) recorded the phase as done. */
export async function phaseDone(store: ResourceStore, phase: StatusPhase): Promise<boolean> {
  return (await readStatus(store, phase))?.status === 'success';
}

/** Records the phase as done, in the original's format. */
export async function markPhaseDone(store: ResourceStore, phase: StatusPhase): Promise<void> {
  const status: PhaseStatus = { status: 'success', time: new Date().toISOString() };
  await store.save(KEYS.status(phase), status);
}

/** Every snapshot of a resource, in the order they were appended ([] when none). */
export async function loadSnapshots(store: ResourceStore, resource: ResourceKey): Promise<SnapshotEntry[]> {
  const key = KEYS.snapshot(resource);
  const value = await loadJson(store, key);
  if (value === undefined || value === null) return [];
  if (
    !Array.isArray(value) ||
    !value.every(
      (e) =>
        typeof e === 'object' &&
        e !== null &&
        typeof (e as SnapshotEntry).list === 'string' &&
        typeof (e as SnapshotEntry).timestamp === 'number',
    )
  ) {
    throw new SnapshotFormatError(`backup '${key}' is not a list of {list, timestamp} snapshots`, {
      hint: 'it was not written by ks-upgrade (Go or TypeScript); restore it from a copy of the store',
    });
  }
  return value as SnapshotEntry[];
}

/** When this attempt's pre-upgrade first started: the snapshots it took are the ones at or after it. */
interface AttemptStart {
  /** Unix seconds, the snapshot timestamps' clock. */
  startedAt: number;
}

/**
 * The start of this attempt's pre-upgrade, written once: a retry (worker killed, API server or S3
 * down) reads the first attempt's value, so it recognises the snapshots that attempt took.
 */
export async function attemptStart(store: ResourceStore): Promise<number> {
  const { value } = await store.saveOnce<AttemptStart>(KEYS.snapshotAttempt, { startedAt: unixNow() });
  return value.startedAt;
}

/**
 * Appends a snapshot unless this attempt already took one (the original appended one per run;
 * every run of ours before the phase marker is a retry of the same attempt, and a retry never
 * appends to or rewrites a backup). A snapshot taken before `since` — by the Go tool, or an
 * earlier attempt that was not rolled back — is kept and ours appended after it.
 * Encrypted: user snapshots hold password hashes. Returns whether it appended.
 */
export async function appendSnapshotOnce(
  store: ResourceStore,
  resource: ResourceKey,
  list: SnapshotList,
  since: number,
): Promise<boolean> {
  const entries = await loadSnapshots(store, resource);
  if (entries.some((e) => e.timestamp >= since)) return false;
  entries.push({
    list: Buffer.from(JSON.stringify(list), 'utf8').toString('base64'),
    timestamp: Math.max(unixNow(), since),
  });
  await store.save(KEYS.snapshot(resource), entries, { sensitive: true });
  return true;
}

/**
 * The newest snapshot by timestamp; among equal timestamps the one appended last. (The original
 * meant this but its comparison never updated the running maximum, so it took the last entry
 * with a positive timestamp — the same result only while clocks never go backwards.)
 */
export function newestSnapshot(entries: readonly SnapshotEntry[]): SnapshotEntry | undefined {
  let best: SnapshotEntry | undefined;
  for (const e of entries) if (!best || e.timestamp >= best.timestamp) best = e;
  return best;
}

/** The oldest snapshot: the state before this attempt changed anything (what rollback restores). */
export function oldestSnapshot(entries: readonly SnapshotEntry[]): SnapshotEntry | undefined {
  let best: SnapshotEntry | undefined;
  for (const e of entries) if (!best || e.timestamp < best.timestamp) best = e;
  return best;
}

/** Decodes one snapshot's list. */
export function decodeSnapshot<T extends KubeObject = KubeObject>(entry: SnapshotEntry): SnapshotList<T> {
  try {
    const list = JSON.parse(Buffer.from(entry.list, 'base64').toString('utf8')) as SnapshotList<T>;
    list.items = Array.isArray(list.items) ? list.items : [];
    return list;
  } catch (err) {
    throw new SnapshotFormatError(`snapshot taken at ${entry.timestamp} does not decode to a JSON list`, {
      cause: err,
      hint: 'the store object was damaged; restore it from a copy of the store',
    });
  }
}

/** Items of the newest snapshot of a resource; undefined when there is no snapshot at all. */
export async function newestItems<T extends KubeObject = KubeObject>(
  store: ResourceStore,
  resource: ResourceKey,
): Promise<T[] | undefined> {
  const entry = newestSnapshot(await loadSnapshots(store, resource));
  return entry ? decodeSnapshot<T>(entry).items : undefined;
}
