// The contract of preflight: read-only checks run before anything changes (first step of
// `upgradeCluster`, of `ks-upgrade plan`, and of each cluster in a fleet plan).
import { PREFLIGHT_CHECKS } from '../../workflows/pure/checks.js';

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

/** The checks, in the order they run (defined with the workflow's input validation). */
export { PREFLIGHT_CHECKS };
export type PreflightCheckName = (typeof PREFLIGHT_CHECKS)[number];
