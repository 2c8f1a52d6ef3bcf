// What changed on a cluster: every object the API server lists, by resource, namespace and name,
// with its resourceVersion — two snapshots equal means nothing was written in between.
import assert from 'node:assert/strict';
import type { ResourceClient } from '../../src/kube/client.js';

/** One object as the API server listed it, with the API base (`/api/v1`, `/apis/<g>/<v>`) and resource. */
export interface ListedObject {
  base: string;
  resource: string;
  object: Record<string, unknown> & { metadata: { namespace?: string; name: string; uid?: string } };
}

/**
 * Every object of every listable resource the API server serves (preferred versions), except the
 * resources named in `skip`. An aggregated API whose backing service does not run here
 * (metrics.k8s.io) answers 503 and is passed over.
 */
export async function listEveryObject(
  kube: ResourceClient,
  skip: ReadonlySet<string>,
): Promise<ListedObject[]> {
  const get = async <T>(p: string): Promise<T | undefined> => {
    const res = await kube.transport.request({ method: 'GET', path: p });
    if (res.status === 503 || res.status === 404) return undefined;
    assert.equal(res.status, 200, `GET ${p}: HTTP ${res.status}`);
    return JSON.parse(res.text) as T;
  };
  const groups = await get<{ groups: { preferredVersion: { groupVersion: string } }[] }>('/apis');
  const bases = ['/api/v1', ...(groups?.groups ?? []).map((g) => `/apis/${g.preferredVersion.groupVersion}`)];
  const out: ListedObject[] = [];
  for (const base of bases) {
    const list = await get<{ resources: { name: string; verbs: string[] }[] }>(base);
    for (const r of list?.resources ?? []) {
      if (r.name.includes('/') || !r.verbs.includes('list') || skip.has(r.name)) continue;
      const items = await get<{ items: ListedObject['object'][] }>(`${base}/${r.name}`);
      for (const object of items?.items ?? []) out.push({ base, resource: r.name, object });
    }
  }
  return out;
}

/** Every object the API server lists, by resource, namespace and name → resourceVersion. */
export async function clusterSnapshot(kube: ResourceClient): Promise<Map<string, string>> {
  // Leases and events move on their own (the API server's heartbeats), not by the upgrade.
  const out = new Map<string, string>();
  for (const { base, resource, object: o } of await listEveryObject(kube, new Set(['leases', 'events']))) {
    out.set(
      `${base}/${resource} ${o.metadata.namespace ?? ''}/${o.metadata.name}`,
      (o.metadata as { resourceVersion?: string }).resourceVersion ?? '',
    );
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
