// Which Kubernetes cluster a logical cluster name stands for. The name keys the workflow
// (`ks-upgrade-<name>`) and the backup folder (`<name>/…`): pointed at another cluster by a
// changed KUBECONFIG, an upgrade would restore one cluster's backups onto another, or call an
// upgrade "already succeeded" that never ran there. So the first run or phase command that uses a
// name records the API server's identity beside the backups, and every later one compares.
import { NamespaceResource } from '../api/core.js';
import { ValidationError } from '../errors.js';
import type { ClusterConnection } from '../kube/connect.js';
import type { ResourceStore } from '../store/index.js';

/**
 * What identifies a cluster: the UID of its `kube-system` namespace, which exists in every cluster,
 * is created once with it and never changes (a new cluster at the same address has another one).
 * The server URL is kept for the message only: one cluster may be reached at several addresses.
 */
export interface ClusterIdentity {
  server: string;
  kubeSystemUid: string;
}

/**
 * The binding of a cluster name to a cluster, as stored. When and by whom are in the stored
 * object's header (`backups list` shows them), so the same cluster always gives the same record.
 */
export interface ClusterBinding extends ClusterIdentity {
  cluster: string;
  /** The kubeconfig context of the first use (`in-cluster` for a pod's service account). */
  context: string;
}

/**
 * The key of the binding, relative to the storage root: in the cluster's own folder, so that it
 * travels with the backups it protects (one S3 bucket shared by several workers, a restored PVC)
 * and survives a reset of Temporal's state. `_cluster` cannot clash with a job name.
 */
export function clusterBindingKey(cluster: string): string {
  return `${cluster}/_cluster/identity.json`;
}

/** Reads the identity of the cluster a connection points at (one GET of `kube-system`). */
export async function readClusterIdentity(conn: ClusterConnection): Promise<ClusterIdentity> {
  const ns = await conn.client.get(NamespaceResource, 'kube-system');
  const uid = ns.metadata.uid;
  if (uid === undefined || uid === '') {
    throw new ValidationError(`the API server ${conn.server} returned kube-system without a uid`, {
      hint: 'ks-upgrade identifies a cluster by the uid of its kube-system namespace; check the API server',
    });
  }
  return { server: conn.server, kubeSystemUid: uid };
}

/** The cluster name is bound to another cluster than the one the kubeconfig points at. */
export class ClusterMismatchError extends ValidationError {}

export interface BindingCheck {
  cluster: string;
  conn: ClusterConnection;
  /** The root store (the binding lives outside every job's scope). */
  store: ResourceStore;
  /**
   * Record the binding when there is none (run and phase commands, job steps); `false` only
   * compares (plan, which never writes).
   */
  bind: boolean;
}

/**
 * Refuses a cluster name that is bound to another cluster, and binds an unbound name to this one
 * when `bind`. The record is written create-if-absent, so two first runs at once cannot both bind
 * the name. Returns the stored binding (undefined when unbound and `bind` is false).
 */
export async function checkClusterBinding(check: BindingCheck): Promise<ClusterBinding | undefined> {
  const { cluster, conn, store } = check;
  const identity = await readClusterIdentity(conn);
  const key = clusterBindingKey(cluster);
  let stored: ClusterBinding;
  if (check.bind) {
    const binding: ClusterBinding = { cluster, ...identity, context: conn.context };
    stored = (await store.saveOnce(key, binding)).value;
  } else {
    if (!(await store.exists(key))) return undefined;
    stored = await store.load<ClusterBinding>(key);
  }
  if (stored.kubeSystemUid === identity.kubeSystemUid) return stored;
  const { createdAt } = await store.stat(key);
  throw new ClusterMismatchError(
    `cluster name '${cluster}' belongs to another cluster: its backups (${cluster}/ in ${store.location}) ` +
      `are from the API server ${stored.server} (kube-system uid ${stored.kubeSystemUid}, context ` +
      `'${stored.context}', first used ${createdAt}), but context '${conn.context}' points at ` +
      `${identity.server} (kube-system uid ${identity.kubeSystemUid})`,
    {
      hint:
        `give this cluster its own name with --cluster <name>, or select the cluster '${cluster}' stands ` +
        `for with --context / --kubeconfig / KUBECONFIG (the binding is ${clusterBindingKey(cluster)} in the backup store)`,
    },
  );
}

const checked = new Map<string, Promise<unknown>>();

/**
 * {@link checkClusterBinding} once per process for a (cluster, connection, store): a worker runs
 * many steps of one upgrade, and the identity of a cluster does not change under a connection.
 * A failed check is not remembered, so it runs again on the next step.
 */
export function checkClusterBindingOnce(check: BindingCheck): Promise<unknown> {
  const key = JSON.stringify([check.cluster, check.conn.context, check.conn.server, check.store.location]);
  let pending = checked.get(key);
  if (pending === undefined) {
    pending = checkClusterBinding(check);
    pending.catch(() => checked.delete(key));
    checked.set(key, pending);
  }
  return pending;
}
