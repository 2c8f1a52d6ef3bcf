// `helm uninstall` from the release record alone: delete what the release's manifest created
// (newest revision), then the release records. No helm binary or chart is needed. Limits (see
// docs/helm.md): hooks are not run (their `pre-delete`/`post-delete` jobs do not exist for the
// KubeSphere v3 charts ks-upgrade removes), and objects are deleted in reverse manifest order rather
// than helm's kind order.
import * as yaml from 'js-yaml';
import { SecretResource } from '../api/core.js';
import type { ResourceClient } from '../kube/client.js';
import { resolveResource } from '../kube/discovery.js';
import type { KubeObject } from '../kube/types.js';
import { sleep } from '../util/concurrency.js';
import { isRecord } from '../util/object.js';
import { releaseHistory, type HelmRelease } from './release.js';

export interface UninstallOptions {
  /** Wait until every deleted object is gone (helm's --wait). */
  wait?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
}

export interface UninstallResult {
  /** False when there was no such release (nothing done — not an error, as in the original). */
  found: boolean;
  deleted: string[];
  /** Objects helm would keep (`helm.sh/resource-policy: keep`) and kinds the server no longer serves. */
  kept: string[];
}

/** The objects of a release's manifest (empty documents and comments dropped). */
export function manifestObjects(release: HelmRelease): KubeObject[] {
  return yaml
    .loadAll(release.manifest)
    .filter((d): d is KubeObject => isRecord(d) && typeof d.kind === 'string' && isRecord(d.metadata));
}

/** Uninstalls a release from its release record. */
export async function uninstallRelease(
  client: ResourceClient,
  namespace: string,
  name: string,
  options: UninstallOptions = {},
): Promise<UninstallResult> {
  const history = await releaseHistory(client, namespace, name);
  const latest = history[0];
  if (!latest) return { found: false, deleted: [], kept: [] };
  const deleted: string[] = [];
  const kept: string[] = [];
  const pending: {
    rt: NonNullable<Awaited<ReturnType<typeof resolveResource>>>;
    name: string;
    ns: string | undefined;
  }[] = [];
  for (const obj of manifestObjects(latest.release).reverse()) {
    const id = `${obj.kind ?? ''} ${obj.metadata.namespace ?? namespace}/${obj.metadata.name ?? ''}`;
    if (obj.metadata.annotations?.['helm.sh/resource-policy'] === 'keep') {
      kept.push(id);
      continue;
    }
    const rt = await resolveResource(client, obj.apiVersion ?? '', obj.kind ?? '');
    if (!rt) {
      kept.push(`${id} (kind not served)`);
      continue;
    }
    const ns = rt.namespaced ? (obj.metadata.namespace ?? namespace) : undefined;
    if (await client.delete(rt, obj.metadata.name ?? '', ns, { propagationPolicy: 'Background' })) {
      deleted.push(id);
      pending.push({ rt, name: obj.metadata.name ?? '', ns });
      options.onProgress?.(`deleted ${id}`);
    }
  }
  for (const { secret } of history) {
    await client.delete(SecretResource, secret.metadata.name ?? '', namespace);
  }
  if (options.wait) {
    const deadline = Date.now() + (options.timeoutMs ?? 20 * 60_000);
    for (const p of pending) {
      while (await client.tryGet(p.rt, p.name, p.ns)) {
        if (Date.now() > deadline) {
          throw new Error(
            `uninstall of ${namespace}/${name}: ${p.rt.kind} ${p.name} still exists after the timeout`,
          );
        }
        options.onProgress?.(`waiting for ${p.rt.kind} ${p.name} to go`);
        await sleep(1000, options.signal);
      }
    }
  }
  return { found: true, deleted, kept };
}
