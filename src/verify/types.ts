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
