// What the fault suite compares between runs: every object of a cluster, normalised so two runs
// of the same upgrade on fresh servers can be compared leaf by leaf, and the differences two clean
// runs show between themselves (the noise: generated names, keys, ports) learned rather than
// guessed, so a faulted run is held to everything that is deterministic.
import type { ResourceClient } from '../../src/kube/client.js';
import { listEveryObject } from '../helpers/snapshot.js';

/** Object key (`<api>/<resource> <ns>/<name>`) → leaf path → value. */
export type ClusterState = Map<string, Map<string, string>>;

const RFC3339 = /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})\b/g;
const LOOPBACK_ADDR = /127\.0\.0\.1:\d+/g;
const CLUSTER_IP = /^\.spec\.clusterIPs?(\[\d+\])?$/;
const DROPPED_METADATA = new Set([
  'resourceVersion',
  'uid',
  'creationTimestamp',
  'managedFields',
  'selfLink',
]);

/** Replaces run-specific names (the clusters' generated names) and addresses in a string. */
export function normaliseText(text: string, names: [string, string][]): string {
  let out = text;
  for (const [from, to] of names) out = out.split(from).join(to);
  return out.replace(RFC3339, '<time>').replace(LOOPBACK_ADDR, '127.0.0.1:<port>');
}

function flatten(value: unknown, prefix: string, out: Map<string, string>, names: [string, string][]): void {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(prefix, '[]');
    value.forEach((v, i) => {
      flatten(v, `${prefix}[${i}]`, out, names);
    });
  } else if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) out.set(prefix, '{}');
    for (const [k, v] of entries) {
      if (prefix === '.metadata' && DROPPED_METADATA.has(k)) continue;
      flatten(v, `${prefix}.${normaliseText(k, names)}`, out, names);
    }
  } else if (CLUSTER_IP.test(prefix) && value !== 'None' && value !== '') {
    // Drawn at random by the API server's allocator for each Service it creates.
    out.set(prefix, '"<cluster-ip>"');
  } else {
    out.set(prefix, normaliseText(JSON.stringify(value), names));
  }
}

/**
 * Every object the API server lists (leases and events excepted: the API server's own heartbeats),
 * flattened to leaves after dropping resourceVersion, uid, creationTimestamp and managed fields and
 * replacing timestamps, the run's names and loopback ports; UIDs anywhere else (owner references)
 * become `<uid>`.
 */
export async function clusterState(kube: ResourceClient, names: [string, string][]): Promise<ClusterState> {
  // Leases and events are the API server's heartbeats; IP addresses and service CIDRs its random
  // ClusterIP allocations (a Service's clusterIP is learned as noise instead).
  const volatile = new Set(['leases', 'events', 'ipaddresses', 'servicecidrs']);
  const objects: [string, Record<string, unknown>][] = [];
  const uids = new Set<string>();
  for (const { base, resource, object: o } of await listEveryObject(kube, volatile)) {
    if (o.metadata.uid) uids.add(o.metadata.uid);
    const api = base.replace(/^\/apis?\//, '').replace(/\/v[0-9a-z]+$/, '');
    objects.push([
      normaliseText(`${api}/${resource} ${o.metadata.namespace ?? ''}/${o.metadata.name}`, names),
      o,
    ]);
  }
  const withUids: [string, string][] = [...names, ...[...uids].map((u): [string, string] => [u, '<uid>'])];
  const state: ClusterState = new Map();
  for (const [key, o] of objects) {
    const leaves = new Map<string, string>();
    flatten(o, '', leaves, withUids);
    state.set(key, leaves);
  }
  return state;
}

/** Object keys and `<key> <path>` leaves on which two states differ. */
export function stateDifferences(a: ClusterState, b: ClusterState): Set<string> {
  const out = new Set<string>();
  for (const [key, leaves] of a) {
    const other = b.get(key);
    if (!other) {
      out.add(key);
      continue;
    }
    for (const [p, v] of leaves) if (other.get(p) !== v) out.add(`${key} ${p}`);
    for (const p of other.keys()) if (!leaves.has(p)) out.add(`${key} ${p}`);
  }
  for (const key of b.keys()) if (!a.has(key)) out.add(key);
  return out;
}

/**
 * How `faulted` differs from `clean`, leaving out `noise` (what two clean runs differ on), each as
 * a readable line: `missing <obj>`, `extra <obj>`, `changed <obj> <path>: <clean> → <faulted>`.
 */
export function compareStates(clean: ClusterState, faulted: ClusterState, noise: Set<string>): string[] {
  const problems: string[] = [];
  for (const [key, leaves] of clean) {
    if (noise.has(key)) continue;
    const other = faulted.get(key);
    if (!other) {
      problems.push(`missing ${key}`);
      continue;
    }
    for (const [p, v] of leaves) {
      if (!noise.has(`${key} ${p}`) && other.get(p) !== v)
        problems.push(`changed ${key} ${p}: ${v} → ${other.get(p) ?? '(absent)'}`);
    }
    for (const [p, v] of other) {
      if (!leaves.has(p) && !noise.has(`${key} ${p}`)) problems.push(`changed ${key} ${p}: (absent) → ${v}`);
    }
  }
  for (const key of faulted.keys()) if (!clean.has(key) && !noise.has(key)) problems.push(`extra ${key}`);
  return problems;
}

/** `<verb> <resource> <ns>/<name>` → how many times the upgrade's writes of it succeeded. */
export type WriteCounts = Map<string, number>;

/** Differences of two write counts, leaving out `noise`. */
export interface CountDifferences {
  /** Writes done more often than in the clean run: a duplicate side effect. */
  more: string[];
  /** Writes the faulted run's audit log shows less often than the clean run's. */
  fewer: string[];
}

/** Compares write counts, each difference as `<write>: <clean> in the clean run, <n> here`. */
export function compareCounts(
  clean: WriteCounts,
  faulted: WriteCounts,
  noise: Set<string>,
): CountDifferences {
  const out: CountDifferences = { more: [], fewer: [] };
  for (const k of new Set([...clean.keys(), ...faulted.keys()])) {
    if (noise.has(k)) continue;
    const a = clean.get(k) ?? 0;
    const b = faulted.get(k) ?? 0;
    if (a !== b) (b > a ? out.more : out.fewer).push(`${k}: ${a} in the clean run, ${b} here`);
  }
  out.more.sort();
  out.fewer.sort();
  return out;
}

/** Keys whose counts differ between two clean runs. */
export function countNoise(a: WriteCounts, b: WriteCounts): Set<string> {
  const out = new Set<string>();
  for (const k of new Set([...a.keys(), ...b.keys()])) if (a.get(k) !== b.get(k)) out.add(k);
  return out;
}
