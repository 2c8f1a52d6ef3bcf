// The names of the preflight checks, for the workflow's input validation (`skipChecks`). A pure
// module written for the workflow sandbox; src/preflight/types.ts re-exports it.

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
