// The demo's backup summary: one line per cluster and job (objects, bytes, how many encrypted)
// instead of one line per object, and where to see the rest.
import type { ResourceStore } from '../src/store/index.js';

/** Backups of one job on one cluster. */
export interface JobBackups {
  /** `<cluster>/<job>`: the first two segments of the store key. */
  scope: string;
  objects: number;
  bytes: number;
  encrypted: number;
}

/** Groups the store's objects by `<cluster>/<job>`, sorted by scope. */
export async function backupsPerJob(store: ResourceStore): Promise<JobBackups[]> {
  const byScope = new Map<string, JobBackups>();
  for (const key of await store.list()) {
    const info = await store.stat(key);
    const scope = key.split('/').slice(0, 2).join('/');
    const row = byScope.get(scope) ?? { scope, objects: 0, bytes: 0, encrypted: 0 };
    byScope.set(scope, row);
    row.objects += 1;
    row.bytes += info.size;
    if (info.encrypted) row.encrypted += 1;
  }
  return [...byScope.values()].sort((a, b) => a.scope.localeCompare(b.scope));
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Human-readable bytes (KiB/MiB past 1024). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The summary lines: a total, one line per job, and the command that lists every object. */
export function backupSummaryLines(rows: readonly JobBackups[], listCommand: string): string[] {
  const total = rows.reduce(
    (t, r) => ({
      objects: t.objects + r.objects,
      bytes: t.bytes + r.bytes,
      encrypted: t.encrypted + r.encrypted,
    }),
    { objects: 0, bytes: 0, encrypted: 0 },
  );
  const width = Math.max(0, ...rows.map((r) => r.scope.length));
  return [
    `backed up: ${plural(total.objects, 'object')}, ${formatBytes(total.bytes)}, ${total.encrypted} encrypted, in ${plural(rows.length, 'job')}`,
    ...rows.map(
      (r) =>
        `  ${r.scope.padEnd(width)}  ${String(r.objects).padStart(4)} ${r.objects === 1 ? 'object ' : 'objects'}` +
        `  ${formatBytes(r.bytes).padStart(10)}  ${r.encrypted === r.objects ? 'all encrypted' : `${r.encrypted} encrypted`}`,
    ),
    `every object: ${listCommand}`,
  ];
}
