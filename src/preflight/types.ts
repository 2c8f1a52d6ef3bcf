// The contract of preflight: read-only checks run before anything changes (first step of
// `upgradeCluster`, of `ks-upgrade plan`, and of each cluster in a fleet plan).

/** One named preflight check and its outcome. */
export interface PreflightCheckResult {
  /** Stable name used by `--skip-check NAME`, e.g. `api-server`, `access`, `images`, `store`. */
  name: string;
  ok: boolean;
  /** What was observed. */
  evidence: string;
  /** How to fix it, when `ok` is false. */
  fix?: string;
  /** Set when an operator skipped a failing check (`--skip-check`), with who and why. */
  skipped?: { by: string; reason: string };
}

/** All checks of one cluster; `ok` is false when a check failed and was not skipped. */
export interface PreflightReport {
  cluster: string;
  ok: boolean;
  checkedAt: string;
  checks: PreflightCheckResult[];
}

/** The checks, in the order they run and are reported (the names `--skip-check` takes). */
export const PREFLIGHT_CHECKS = [
  'api-server',
  'kubesphere-version',
  'access',
  'charts',
  'images',
  'store',
  'concurrent-upgrade',
] as const;
export type PreflightCheckName = (typeof PREFLIGHT_CHECKS)[number];
