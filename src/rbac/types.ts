// The contract of least privilege: one table of what each job touches. It feeds the preflight
// access check (SelfSubjectAccessReview per verb × resource), `ks-upgrade rbac` and the generated
// RBAC manifests, so the three can never disagree.

/** Access one job needs to one resource. */
export interface AccessRule {
  /** API group; '' for the core group. */
  group: string;
  /** Plural resource names, optionally with a subresource (`deployments/scale`). */
  resources: string[];
  verbs: string[];
  /** Narrowed to these namespaces when set (Roles there); cluster-wide otherwise. */
  namespaces?: string[];
  /** Narrowed to these object names when set. */
  resourceNames?: string[];
  /** Why the job needs it (shown by `ks-upgrade rbac` and the docs). */
  why: string;
  /**
   * `members`: needed on every member cluster, reached from the host through the kubeconfig of its
   * `Cluster` object (KubeSphere's own credentials there), not through ks-upgrade's identity.
   * Absent: on the cluster being upgraded, as ks-upgrade's identity.
   */
  on?: 'members';
}

/** Everything one job (or the framework itself, as job `_framework`) needs. */
export interface JobAccess {
  job: string;
  rules: AccessRule[];
}
