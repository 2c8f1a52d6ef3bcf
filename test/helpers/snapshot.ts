// What changed on a cluster: every object the API server lists, by resource, namespace and name,
// with its resourceVersion — two snapshots equal means nothing was written in between.
import assert from 'node:assert/strict';
import type { ResourceClient } from '../../src/kube/client.js';

/** Every object the API server lists, by resource, namespace and name → resourceVersion. */
export async function clusterSnapshot(kube: ResourceClient): Promise<Map<string, string>> {
  const get = async <T>(p: string): Promise<T | undefined> => {
    const res = await kube.transport.request({ method: 'GET', path: p });
    // An aggregated API whose backing service does not run here (metrics.k8s.io) answers 503.
    if (res.status === 503) return undefined;
    assert.equal(res.status, 200, `GET ${p}: HTTP ${res.status}`);
    return JSON.parse(res.text) as T;
  };
  interface Resources {
    resources: { name: string; verbs: string[] }[];
  }
  const groups = await get<{ groups: { preferredVersion: { groupVersion: string } }[] }>('/apis');
  const bases = ['/api/v1', ...(groups?.groups ?? []).map((g) => `/apis/${g.preferredVersion.groupVersion}`)];
  // Leases and events move on their own (the API server's heartbeats), not by the upgrade.
  const volatile = new Set(['leases', 'events']);
  const out = new Map<string, string>();
  for (const base of bases) {
    const list = await get<Resources>(base);
    for (const r of list?.resources ?? []) {
      if (r.name.includes('/') || !r.verbs.includes('list') || volatile.has(r.name)) continue;
      const items = await get<{
        items: { metadata: { namespace?: string; name: string; resourceVersion: string } }[];
      }>(`${base}/${r.name}`);
      for (const o of items?.items ?? []) {
        out.set(
          `${base}/${r.name} ${o.metadata.namespace ?? ''}/${o.metadata.name}`,
          o.metadata.resourceVersion,
        );
      }
    }
  }
  return out;
}

/** What differs between two snapshots: `changed`, `deleted` or `created` with the object. */
export function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const changes: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) changes.push(b.has(k) ? `changed ${k}` : `deleted ${k}`);
  for (const k of b.keys()) if (!a.has(k)) changes.push(`created ${k}`);
  return changes;
}
