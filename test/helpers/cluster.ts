import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectCluster, type ClusterConnection } from '../../src/kube/connect.js';
import { repoRoot, uniqueName } from './env.js';

const run = promisify(execFile);

/** A Kubernetes API server of the test's own: empty, isolated from every other test. */
export interface EphemeralCluster {
  name: string;
  kubeconfig: string;
  connection: ClusterConnection;
  /** Stops the API server (its etcd data is dropped with the dev servers). */
  remove(): Promise<void>;
}

/**
 * Starts a fresh kube-apiserver (about 2–3 s) on the dev etcd under its own prefix. Tests whose
 * subject is cluster-wide state — CRDs, Users, Workspaces, InstallPlans — use one each, so they can
 * run in parallel and assert on exact cluster contents.
 */
export async function startEphemeralCluster(prefix = 'eph'): Promise<EphemeralCluster> {
  const name = uniqueName(prefix).slice(0, 40).replace(/-+$/, '');
  const script = path.join(repoRoot, 'deploy/dev/cluster');
  const { stdout } = await run('bash', [script, 'add', name], { cwd: repoRoot });
  const kubeconfig = stdout.trim().split('\n').pop() ?? '';
  const connection = await connectCluster({ kubeconfig });
  return {
    name,
    kubeconfig,
    connection,
    remove: async () => {
      connection.close();
      await run('bash', [script, 'remove', name], { cwd: repoRoot });
    },
  };
}
