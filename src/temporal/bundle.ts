import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundleOption } from '@temporalio/worker';

/**
 * Where `npm run build` writes the pre-built workflow bundle: `<root>/dist/workflow-bundle.js`,
 * found from the sources (src/temporal) and from the compiled code (dist/src/temporal) alike.
 */
export const PREBUILT_BUNDLE_PATH = fileURLToPath(
  new URL(
    import.meta.url.includes('/dist/src/') ? '../../workflow-bundle.js' : '../../dist/workflow-bundle.js',
    import.meta.url,
  ),
);

/** The workflow sources (bundled on the fly when there is no pre-built bundle). */
export const WORKFLOWS_PATH = (() => {
  for (const candidate of ['../../workflows/index.ts', '../../workflows/index.js']) {
    const p = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(p)) return p;
  }
  return fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));
})();

let cached: Promise<WorkflowBundleOption> | undefined;

/**
 * The workflow code for a Worker: the pre-built bundle when present (a production worker starts in
 * about a second), otherwise a bundle built once per process from the sources (development).
 */
export function workflowBundle(): Promise<WorkflowBundleOption> {
  cached ??= existsSync(PREBUILT_BUNDLE_PATH)
    ? Promise.resolve({ codePath: PREBUILT_BUNDLE_PATH })
    : bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
  return cached;
}

const noop = (): void => undefined;
const quietBundlerLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: console.error,
  log: noop,
};
