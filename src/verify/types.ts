// The contract of post-upgrade verification, shared by `upgradeCluster` (its last step), the fleet's
// wave gate and `ks-upgrade verify`. Small and secret-free: reports are kept in workflow history.

/** One verified fact about a cluster. */
export interface VerificationFinding {
  /** Stable name, e.g. `ks-core-release`, `rollout/ks-apiserver`, `installplan/devops`, `leftover/webhook/cluster.kubesphere.io`. */
  check: string;
  ok: boolean;
  /** What was observed (versions, states, object names), never resource bodies or secrets. */
  evidence: string;
  /** How to fix it, when `ok` is false. */
  fix?: string;
}

/** The result of verifying one cluster's upgrade on its observed state. */
export interface VerificationReport {
  cluster: string;
  ok: boolean;
  checkedAt: string;
  findings: VerificationFinding[];
}

/**
 * A v3 object a job removes and KubeSphere v4 never brings back: after a finished upgrade it must
 * be gone (a leftover v3 webhook, for one, breaks v4 with x509 errors). Declared by the job that
 * removes it, so the verification list and the jobs cannot drift apart.
 */
export interface Leftover {
  /** API group ('' for core), version and plural: where to GET it. */
  group: string;
  version: string;
  resource: string;
  /** Short kind for the finding name, e.g. `webhook`, `crd`, `deployment`. */
  kind: string;
  name: string;
  namespace?: string;
  /** Why it must be gone, and what happens when it is not. */
  why: string;
  /** Only on these cluster roles (default: every cluster). */
  roles?: ('host' | 'member' | 'none')[];
}
