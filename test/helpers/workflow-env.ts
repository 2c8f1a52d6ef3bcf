// Temporal's time-skipping test server for the fast workflow suite (test/workflows): the Java
// server from Maven Central that deploy/dev/install builds, one per test file, used through the
// SDK's own TestWorkflowEnvironment. Timers and timeouts of hours pass in milliseconds while the test
// awaits a result (or calls env.sleep); queries, updates and signals run in real time.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../../src/temporal/bundle.js';
import { SEARCH_ATTRIBUTE_NAMES } from '../../workflows/search-attributes.js';
import { installTestRuntime } from './temporal.js';

/** The wrapper script deploy/dev/install writes (test/run exports its path). */
function testServerPath(): string {
  const path = process.env.KS_TEMPORAL_TEST_SERVER;
  if (!path) {
    throw new Error(
      'KS_TEMPORAL_TEST_SERVER is not set: run the suite through `npm test -- <file>` (test/run), ' +
        'which builds the time-skipping server (deploy/dev/install temporal-test-server) and sets it',
    );
  }
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run \`bash deploy/dev/install temporal-test-server\``);
  }
  return path;
}

/** A free TCP port on 127.0.0.1 (the OS picks it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** Resolves once `port` accepts connections; rejects when `child` exits first or at the deadline. */
async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the time-skipping test server exited (${child.exitCode ?? child.signalCode})`);
    }
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => {
        resolve(false);
      });
    });
    if (open) return;
    if (Date.now() > deadline)
      throw new Error(`the time-skipping test server did not listen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The time-skipping environment of one test file; `teardown` stops the server too. */
export interface TimeSkippingEnv {
  env: TestWorkflowEnvironment;
  teardown(): Promise<void>;
}

/**
 * Starts the time-skipping server with the upgrade search attributes registered. The server is
 * started here, not by the SDK: the SDK gives it 5 s to answer, which a cold JVM on a loaded 2-core
 * machine misses (measured: 8 s to 36 s under load). Once it listens, the SDK's environment attaches
 * to its port (its `server.port` option) through a placeholder process.
 */
export async function startTimeSkippingEnv(): Promise<TimeSkippingEnv> {
  installTestRuntime();
  const port = await freePort();
  const server = spawn(testServerPath(), [String(port)], { stdio: 'ignore' });
  const stop = (): void => {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  };
  process.once('exit', stop);
  try {
    await waitForPort(port, server, 120_000);
    const env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { port, executable: { type: 'existing-path', path: PLACEHOLDER } },
    });
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      // Keyword, as deploy/dev/up registers them on the dev server.
      searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTE_NAMES.map((name) => [name, 2])),
    });
    return {
      env,
      teardown: async () => {
        await env.teardown();
        const exited = new Promise((r) => server.once('exit', r));
        stop();
        await exited;
        process.removeListener('exit', stop);
      },
    };
  } catch (err) {
    stop();
    throw err;
  }
}

const PLACEHOLDER = fileURLToPath(new URL('./attached-test-server', import.meta.url));

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The workflow code bundled from the sources (never a stale pre-built bundle), once per process. */
export function sourceWorkflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} },
  });
  return bundle;
}
