import { DefaultLogger, Runtime } from '@temporalio/worker';

let installed = false;

/**
 * Installs the Temporal runtime once per test process with ERROR-level logging, so worker state
 * changes do not drown the test report. Must run before any Worker or NativeConnection exists.
 */
export function installTestRuntime(): void {
  if (installed) return;
  // ERROR: tests provoke activity failures on purpose; the worker logs each at WARN.
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  installed = true;
}
