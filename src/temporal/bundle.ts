import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundleOption } from '@temporalio/worker';

/** This is the compiled code, built with the pre-built bundle beside it (sources may be newer). */
const COMPILED = import.meta.url.includes('/dist/src/');

/**
 * Where `npm run build` writes the pre-built workflow bundle: `<root>/dist/workflow-bundle.js`,
 * found from the sources (src/temporal) and from the compiled code (dist/src/temporal) alike.
 */
export const PREBUILT_BUNDLE_PATH = fileURLToPath(
  new URL(COMPILED ? '../../workflow-bundle.js' : '../../dist/workflow-bundle.js', import.meta.url),
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
 * The workflow code for a Worker: for the compiled code, the pre-built bundle of the same build
 * (a production worker starts in about a second); when running the sources (tsx), or without a
 * bundle, one built once per process from the workflow sources, so an edit is never hidden by a
 * stale bundle.
 */
export function workflowBundle(): Promise<WorkflowBundleOption> {
  cached ??=
    COMPILED && existsSync(PREBUILT_BUNDLE_PATH)
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
