// Recognising, in a store listing, objects the original Go ks-upgrade wrote: no ks-upgrade header,
// a key the Go tool writes, and the format that key promises.
import { FORMAT_MAGIC } from '../store/index.js';
import { decodeGoValue } from './formats.js';
import { CHART_INDEX_KEY, goKeyRule, type GoKeyRule, type GoStoreFacts } from './layout.js';

const MAGIC_FAMILY = Buffer.from(FORMAT_MAGIC.slice(0, FORMAT_MAGIC.indexOf('/') + 1), 'ascii');

/** The last segment of a storage key: the Go tool's keys are flat. */
export function goKeyName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/** The chart keys a folder's Go objects imply: the names in its HelmApplicationVersion list. */
export function goFactsFrom(objects: ReadonlyMap<string, Uint8Array>): GoStoreFacts {
  const chartNames = new Set<string>();
  for (const [key, bytes] of objects) {
    if (goKeyName(key) !== CHART_INDEX_KEY) continue;
    try {
      const list = JSON.parse(Buffer.from(bytes).toString('utf8')) as {
        items?: { metadata?: { name?: unknown } }[] | null;
      };
      for (const item of list.items ?? []) {
        if (typeof item.metadata?.name === 'string') chartNames.add(item.metadata.name);
      }
    } catch {
      // Not a list: its charts are not recognised either.
    }
  }
  return { chartNames };
}

/** The rule of a Go-written object, or undefined when the bytes are not one (ours, or damaged). */
export function goToolObject(key: string, bytes: Uint8Array, facts: GoStoreFacts): GoKeyRule | undefined {
  if (Buffer.from(bytes.subarray(0, MAGIC_FAMILY.length)).equals(MAGIC_FAMILY)) return undefined;
  const name = goKeyName(key);
  const rule = goKeyRule(name, facts);
  if (!rule) return undefined;
  try {
    decodeGoValue(rule, name, bytes);
    return rule;
  } catch {
    return undefined;
  }
}
