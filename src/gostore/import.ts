// `ks-upgrade backups import --from-go`: copies the Go tool's backups of one cluster into our
// store, so post-upgrade can finish an upgrade the Go tool started. Two passes over the source:
// the first reads and checks every value and decides where it goes, holding only small facts; if
// a value that holds secrets would have to be stored without encryption, nothing is written. The
// second reads each value again, verifies it did not change, and writes it with `saveRawOnce`.
// A key already in our store is never overwritten: identical → skipped, different → refused.
import { createHash } from 'node:crypto';
import { KsUpgradeError, ValidationError, describeError } from '../errors.js';
import { BackupKeyNotFound, PlaintextSecretError, SHARED_SCOPE, type ResourceStore } from '../store/index.js';
import { decodeGoValue, GoFormatError } from './formats.js';
import { CHART_INDEX_KEY, goKeyRule, type GoKeyRule, type GoStoreFacts } from './layout.js';
import { MAX_GO_OBJECT_BYTES, type GoStoreEntry, type GoStoreSource } from './source.js';

/**
 * - `imported`: written into our store (with `--dry-run`: would be);
 * - `skipped`: nothing to do — already stored with the same content, or a value meaning "absent";
 * - `refused`: our store holds something else under that key (never overwritten) or it is unreadable;
 * - `failed`: not imported — an unknown key, a value that does not parse, an unreadable object.
 */
export type ImportOutcome = 'imported' | 'skipped' | 'refused' | 'failed';

export interface ImportItem {
  /** The key in the Go store. */
  goKey: string;
  outcome: ImportOutcome;
  /** The job whose scope the value belongs to. */
  job?: string;
  /** The full key in our store (`<cluster>/<job>/<key>`). */
  key?: string;
  /** Why it was skipped, refused or failed. */
  reason?: string;
  /** Changes to the Go bytes (e.g. Go's `null` slice stored as `[]`). */
  notes?: string[];
  bytes: number;
  sensitive: boolean;
}

export interface ImportReport {
  source: string;
  target: string;
  cluster: string;
  dryRun: boolean;
  items: ImportItem[];
  counts: Record<ImportOutcome, number>;
}

export interface ImportOptions {
  source: GoStoreSource;
  /** The root store the upgrade uses (its `storage` and `storage.encryption`). */
  store: ResourceStore;
  /** The logical cluster name of the upgrade whose backups these are. */
  cluster: string;
  /** Check and report only; write nothing. */
  dryRun?: boolean;
  /** Called as each item is decided. */
  onItem?: (item: ImportItem) => void;
}

interface Planned {
  entry: GoStoreEntry;
  rule: GoKeyRule;
  sha256: string;
  key: string;
  sensitive: boolean;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Facts the key table needs from the whole store: the chart keys are named by a list in it. */
async function storeFacts(source: GoStoreSource, entries: readonly GoStoreEntry[]): Promise<GoStoreFacts> {
  const chartNames = new Set<string>();
  if (entries.some((e) => e.name === CHART_INDEX_KEY && e.type === 'object')) {
    try {
      const list = JSON.parse(Buffer.from(await source.read(CHART_INDEX_KEY)).toString('utf8')) as {
        items?: { metadata?: { name?: unknown } }[] | null;
      };
      for (const item of list.items ?? []) {
        if (typeof item.metadata?.name === 'string') chartNames.add(item.metadata.name);
      }
    } catch {
      // Reported on its own when that key is checked; its charts then show up as unknown keys.
    }
  }
  return { chartNames };
}

function scopeFor(store: ResourceStore, cluster: string, rule: GoKeyRule): ResourceStore {
  const scoped = store.scope(cluster, rule.job);
  return rule.shared ? scoped.shared() : scoped;
}

function fullKey(cluster: string, rule: GoKeyRule, key: string): string {
  return `${cluster}/${rule.shared ? SHARED_SCOPE : rule.job}/${key}`;
}

/** What our store holds under the key: its verified payload, or undefined when absent. */
async function storedPayload(scoped: ResourceStore, key: string): Promise<Uint8Array | undefined> {
  try {
    return await scoped.loadRaw(key);
  } catch (err) {
    if (err instanceof BackupKeyNotFound) return undefined;
    throw err;
  }
}

const NEVER_OVERWRITTEN =
  'our store already holds a different object under this key, and a backup is never overwritten';

/**
 * Imports one cluster's Go store into `store` under `<cluster>/<job>/`. Never changes the source;
 * safe to run again (a second run finds every key stored and identical). Throws before writing
 * anything when the target cannot take the values (no encryption key for secrets, a bad cluster
 * name, an unreadable source listing); per-object problems are items of the report.
 */
export async function importGoStore(options: ImportOptions): Promise<ImportReport> {
  const { source, store, cluster, dryRun = false } = options;
  // Validates the cluster name before anything is read.
  store.scope(cluster, 'core');
  const items: ImportItem[] = [];
  const emit = (item: ImportItem): void => {
    items.push(item);
    options.onItem?.(item);
  };

  // ---- pass 1: read and check everything; decide; write nothing ----
  const entries = await source.list();
  const facts = await storeFacts(source, entries);
  const planned: Planned[] = [];
  for (const entry of entries) {
    const base = { goKey: entry.name, bytes: entry.size, sensitive: false };
    if (entry.type !== 'object') {
      emit({
        ...base,
        outcome: entry.type === 'folder' ? 'skipped' : 'failed',
        reason:
          entry.type === 'folder'
            ? 'a folder: the Go tool writes none (e.g. lost+found of the volume)'
            : 'not a regular file (a symlink or a key in a sub-folder): not followed',
      });
      continue;
    }
    const rule = goKeyRule(entry.name, facts);
    if (!rule) {
      emit({
        ...base,
        outcome: 'failed',
        reason: 'unknown key: the Go ks-upgrade writes no such key (behaviour reference, Appendix A)',
      });
      continue;
    }
    if (rule.notImported) {
      emit({
        ...base,
        job: rule.job,
        outcome: 'skipped',
        reason: rule.notImported,
        sensitive: rule.sensitive,
      });
      continue;
    }
    if (entry.size > MAX_GO_OBJECT_BYTES) {
      emit({ ...base, job: rule.job, outcome: 'failed', reason: `larger than ${MAX_GO_OBJECT_BYTES} bytes` });
      continue;
    }
    let bytes: Uint8Array;
    try {
      bytes = await source.read(entry.name);
    } catch (err) {
      emit({ ...base, job: rule.job, outcome: 'failed', reason: `cannot read it: ${describeError(err)}` });
      continue;
    }
    try {
      const decoded = decodeGoValue(rule, entry.name, bytes);
      if (decoded.skip) {
        emit({ ...base, job: rule.job, outcome: 'skipped', reason: decoded.skip });
        continue;
      }
      planned.push({
        entry: { ...entry, size: bytes.byteLength },
        rule,
        sha256: sha256(bytes),
        key: decoded.key,
        sensitive: decoded.sensitive !== undefined,
      });
    } catch (err) {
      if (!(err instanceof GoFormatError)) throw err;
      emit({
        ...base,
        job: rule.job,
        outcome: 'failed',
        reason: `unparsable: ${err.message} (expected ${rule.format} for ${rule.key}, reference ${rule.ref})`,
      });
    }
  }

  if (store.encryptionKeyId === undefined) {
    const secret = planned.filter((p) => p.sensitive);
    if (secret.length > 0) {
      const names = secret.map((p) => p.entry.name);
      throw new PlaintextSecretError(
        `refusing to import ${source.location} into ${store.location} without encryption: ` +
          `${secret.length} object(s) hold secrets (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}); nothing was written`,
        {
          hint:
            'configure an encryption key for the backup store: storage.encryption.keyFile (a file with 32 random bytes: ' +
            '`head -c 32 /dev/urandom > backup.key`) or storage.encryption.keyEnv in the --config file, or pass --key-file',
        },
      );
    }
  }

  // ---- pass 2: write ----
  for (const p of planned) {
    const key = fullKey(cluster, p.rule, p.key);
    const base = { goKey: p.entry.name, job: p.rule.job, key, bytes: p.entry.size, sensitive: p.sensitive };
    let bytes: Uint8Array;
    try {
      bytes = await source.read(p.entry.name);
    } catch (err) {
      emit({ ...base, outcome: 'failed', reason: `cannot read it: ${describeError(err)}` });
      continue;
    }
    if (sha256(bytes) !== p.sha256) {
      emit({
        ...base,
        outcome: 'failed',
        reason: 'it changed while being imported (is the Go tool still running?); run the import again',
      });
      continue;
    }
    const decoded = decodeGoValue(p.rule, p.entry.name, bytes);
    const notes = decoded.notes.length > 0 ? { notes: decoded.notes } : {};
    const scoped = scopeFor(store, cluster, p.rule);
    try {
      const stored = await storedPayload(scoped, decoded.key);
      if (stored !== undefined) {
        emit(
          sameBytes(stored, decoded.payload)
            ? { ...base, ...notes, outcome: 'skipped', reason: 'already in our store, identical' }
            : { ...base, ...notes, outcome: 'refused', reason: NEVER_OVERWRITTEN },
        );
        continue;
      }
      if (dryRun) {
        emit({ ...base, ...notes, outcome: 'imported' });
        continue;
      }
      const { created, value } = await scoped.saveRawOnce(decoded.key, decoded.payload, {
        contentType: decoded.contentType,
        sensitive: p.sensitive,
      });
      emit(
        created || sameBytes(value, decoded.payload)
          ? {
              ...base,
              ...notes,
              outcome: created ? 'imported' : 'skipped',
              ...(created ? {} : { reason: 'already in our store, identical' }),
            }
          : { ...base, ...notes, outcome: 'refused', reason: NEVER_OVERWRITTEN },
      );
    } catch (err) {
      if (err instanceof ValidationError) throw err;
      if (!(err instanceof KsUpgradeError)) throw err;
      // A damaged object, or one encrypted with another key: not ours to replace.
      emit({
        ...base,
        ...notes,
        outcome: 'refused',
        reason: `the object in our store cannot be compared: ${describeError(err)}`,
      });
    }
  }

  const counts: Record<ImportOutcome, number> = { imported: 0, skipped: 0, refused: 0, failed: 0 };
  for (const i of items) counts[i.outcome]++;
  items.sort((a, b) => (a.goKey < b.goKey ? -1 : a.goKey > b.goKey ? 1 : 0));
  return { source: source.location, target: store.location, cluster, dryRun, items, counts };
}

/** One line: what happened, e.g. `imported 57, skipped 2, refused 0, failed 1 (…)`. */
export function importSummary(report: ImportReport): string {
  const c = report.counts;
  const verb = report.dryRun ? 'would import' : 'imported';
  return (
    `${verb} ${c.imported}, skipped ${c.skipped}, refused ${c.refused}, failed ${c.failed} ` +
    `of ${report.items.length} object(s) from ${report.source} into ${report.target} [${report.cluster}/]`
  );
}
