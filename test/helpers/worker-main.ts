// The life of a worker that a test runs as a child process: announce readiness on stdout (what
// startChildWorker waits for), shut down on SIGTERM, close the connection at the end.
import type { NativeConnection, Worker } from '@temporalio/worker';

/** Runs the worker until it is shut down. */
export async function serveUntilShutdown(worker: Worker, connection: NativeConnection): Promise<void> {
  const running = worker.run();
  process.stdout.write('worker ready\n');
  process.on('SIGTERM', () => {
    worker.shutdown();
  });
  await running;
  await connection.close();
}
