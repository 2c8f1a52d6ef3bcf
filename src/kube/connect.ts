import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { ValidationError } from '../errors.js';
import { ResourceClient } from './client.js';
import { KubeTransport, type TransportOptions } from './transport.js';

/** Where to find a cluster's credentials. Secret-free: paths and names only. */
export interface KubeTarget {
  /** Kubeconfig file; default: `KUBECONFIG`, then `~/.kube/config`, then in-cluster. */
  kubeconfig?: string;
  /** Context in the kubeconfig; default: its current context. */
  context?: string;
  /** Use the pod's service account (in-cluster config), ignoring kubeconfig files. */
  inCluster?: boolean;
}

/** A connected cluster: one transport (one keep-alive agent) and a client over it. */
export interface ClusterConnection {
  /** The context name (in-cluster: `in-cluster`). */
  context: string;
  server: string;
  client: ResourceClient;
  close(): void;
}

/** Loads a kubeconfig for `target`, with errors that name the file or context to fix. */
export function loadKubeConfig(target: KubeTarget = {}): KubeConfig {
  const kc = new KubeConfig();
  if (target.inCluster) {
    kc.loadFromCluster();
    return kc;
  }
  if (target.kubeconfig) {
    if (!existsSync(target.kubeconfig)) {
      throw new ValidationError(`kubeconfig file ${target.kubeconfig} does not exist`, {
        hint: 'pass an existing file with --kubeconfig, or unset it to use KUBECONFIG / ~/.kube/config',
      });
    }
    kc.loadFromFile(target.kubeconfig);
  } else {
    kc.loadFromDefault();
  }
  if (target.context) {
    if (!kc.getContextObject(target.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new ValidationError(`kubeconfig has no context '${target.context}'`, {
        hint: `use one of: ${known.join(', ') || '(none)'}`,
      });
    }
    kc.setCurrentContext(target.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new ValidationError(`kubeconfig context '${kc.getCurrentContext()}' has no cluster`, {
      hint: 'select a valid context with --context',
    });
  }
  return kc;
}

/** Connects to one cluster (no request is made until the client is used). */
export async function connectCluster(
  target: KubeTarget = {},
  options?: TransportOptions,
): Promise<ClusterConnection> {
  const kc = loadKubeConfig(target);
  const transport = await KubeTransport.create(kc, options);
  return {
    context: target.inCluster ? 'in-cluster' : kc.getCurrentContext(),
    server: transport.server,
    client: new ResourceClient(transport),
    close: () => {
      transport.close();
    },
  };
}

const pool = new Map<string, Promise<ClusterConnection>>();

/**
 * A process-wide connection per target, so every activity of a worker reuses one keep-alive pool
 * per cluster instead of opening sockets per call.
 */
export function sharedConnection(
  target: KubeTarget = {},
  options?: TransportOptions,
): Promise<ClusterConnection> {
  const key = JSON.stringify([target.inCluster ?? false, target.kubeconfig ?? '', target.context ?? '']);
  let conn = pool.get(key);
  if (!conn) {
    conn = connectCluster(target, options);
    // A failed connect must not poison the pool: the next call tries again.
    conn.catch(() => pool.delete(key));
    pool.set(key, conn);
  }
  return conn;
}

/** Closes every shared connection (worker shutdown, end of a CLI run). */
export async function closeSharedConnections(): Promise<void> {
  const conns = [...pool.values()];
  pool.clear();
  for (const c of conns) {
    try {
      (await c).close();
    } catch {
      // it never connected; nothing to close
    }
  }
}
