import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './env.js';

/** A demo-job worker in a child process. */
export interface ChildWorker {
  process: ChildProcess;
  /** Resolves with the signal or exit code when the process ends. */
  exited: Promise<NodeJS.Signals | number | null>;
  kill(): Promise<void>;
}

/**
 * Starts the worker and waits until it polls. `script` is another worker program with the same
 * arguments and "worker ready" line (default: the demo-job worker).
 */
export async function startChildWorker(
  address: string,
  namespace: string,
  taskQueue: string,
  options: { script?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ChildWorker> {
  const script = options.script ?? path.join(repoRoot, 'test/helpers/worker-process.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script, address, namespace, taskQueue], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
    ...(options.env ? { env: options.env } : {}),
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => {
    child.on('exit', (code, signal) => {
      resolve(signal ?? code);
    });
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('worker ready')) resolve();
    });
    void exited.then((how) => {
      reject(new Error(`worker exited before it was ready (${String(how)})`));
    });
  });
  return {
    process: child,
    exited,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
