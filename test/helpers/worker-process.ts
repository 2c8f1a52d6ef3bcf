// A worker with the demo jobs, run as a child process so a test can SIGKILL it (a real crash:
// no shutdown, no cleanup). Usage: node --import tsx worker-process.ts <address> <namespace> <taskQueue>
import { NativeConnection } from '@temporalio/worker';
import { createUpgradeWorker, installRuntime } from '../../src/temporal/worker.js';
import { demoRegistry } from '../jobs/demo.js';
import { serveUntilShutdown } from './worker-main.js';

const [address = '', namespace = 'default', taskQueue = ''] = process.argv.slice(2);
installRuntime({ logLevel: 'ERROR' });
const connection = await NativeConnection.connect({ address });
const worker = await createUpgradeWorker({
  connection,
  namespace,
  taskQueue,
  registry: demoRegistry(),
  stickyQueueScheduleToStartTimeout: '1s',
});
await serveUntilShutdown(worker, connection);
