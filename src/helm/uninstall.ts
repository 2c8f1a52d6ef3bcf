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
import { isRecord } from '../util/object.js';
import { WaitTimeoutError, notYet, waitFor, type WaitReporter } from '../util/wait.js';
import { releaseHistory, type HelmRelease } from './release.js';

export interface UninstallOptions {
  /** Wait until every deleted object is gone (helm's --wait). */
  wait?: boolean;
  /** Bound of that wait (default 20 min). */
  timeoutMs?: number;
  /** Where deletions are reported and the wait logs and heartbeats; its cancellation (a job passes its context). */
  reporter?: WaitReporter;
}

/** Objects of an uninstalled release were still there when the wait ended. */
export class UninstallTimeoutError extends WaitTimeoutError {}

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
    id: string;
  }[] = [];
  const step = `uninstall helm release ${namespace}/${name}`;
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
      pending.push({ rt, name: obj.metadata.name ?? '', ns, id });
      options.reporter?.heartbeat?.({ step, message: `deleted ${id}` });
    }
  }
  for (const { secret } of history) {
    await client.delete(SecretResource, secret.metadata.name ?? '', namespace);
  }
  if (options.wait && pending.length > 0) {
    let left = pending;
    await waitFor(
      {
        what: `the ${pending.length} deleted objects of helm release ${namespace}/${name} to be gone`,
        timeoutMs: options.timeoutMs ?? 20 * 60_000,
        check: async () => {
          const still: typeof pending = [];
          for (const p of left) if (await client.tryGet(p.rt, p.name, p.ns)) still.push(p);
          left = still;
          if (left.length === 0) return true;
          const shown = left.slice(0, 5).map((p) => p.id);
          return notYet(
            `${left.length} still there: ${shown.join(', ')}${left.length > shown.length ? ', …' : ''}`,
          );
        },
        hint:
          'an object stays while its finalizers are set (see metadata.finalizers); a PersistentVolumeClaim stays ' +
          'while a pod still uses it, a Namespace until its contents are gone — the controllers of ' +
          'kube-controller-manager remove those. Fix what holds them, then retry the step',
        timeoutError: UninstallTimeoutError,
      },
      options.reporter,
    );
  }
  return { found: true, deleted, kept };
}
