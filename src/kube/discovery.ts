import { KsUpgradeError } from '../errors.js';
import type { ResourceClient } from './client.js';
import { defineResource, lookupResource, type ResourceType } from './types.js';

interface APIResourceList {
  resources: { name: string; kind: string; namespaced: boolean }[];
}

const cache = new Map<string, Promise<APIResourceList | undefined>>();

/**
 * The resource type for an apiVersion + kind: from the registry, else from the API server's
 * discovery document (`/api/v1`, `/apis/<group>/<version>`). Undefined when the server does not
 * serve it. Needed where objects of any kind show up, e.g. in Helm release manifests.
 */
export async function resolveResource(
  client: ResourceClient,
  apiVersion: string,
  kind: string,
): Promise<ResourceType | undefined> {
  const known = lookupResource(apiVersion, kind);
  if (known) return known;
  const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const key = `${client.transport.server}${path}`;
  let list = cache.get(key);
  if (!list) {
    list = client.transport.request({ method: 'GET', path }).then((res) => {
      if (res.status === 404) return undefined;
      if (res.status !== 200) {
        throw new KsUpgradeError(`discovery of ${apiVersion} failed: HTTP ${res.status}`);
      }
      return JSON.parse(res.text) as APIResourceList;
    });
    list.catch(() => cache.delete(key));
    cache.set(key, list);
  }
  const resource = (await list)?.resources.find((r) => r.kind === kind && !r.name.includes('/'));
  if (!resource) return undefined;
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return defineResource({
    group: group ?? '',
    version: version ?? '',
    kind,
    plural: resource.name,
    namespaced: resource.namespaced,
  });
}
