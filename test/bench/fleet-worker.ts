// The fleet benchmark's worker, in a process of its own so its peak RSS is measured alone:
// node --import tsx fleet-worker.ts <address> <taskQueue> <bundle.js>   (a pre-built workflow bundle,
// as production workers use: bundling at start-up would dominate the memory figures)
import { NativeConnection } from '@temporalio/worker';
import { JobRegistry } from '../../src/jobs/registry.js';
import { createUpgradeWorker, installRuntime } from '../../src/temporal/worker.js';
import { jobs } from './fleet-sim-jobs.js';

const [address = '', taskQueue = '', codePath = ''] = process.argv.slice(2);
installRuntime({ logLevel: 'ERROR' });
const registry = new JobRegistry();
for (const j of jobs) registry.register(j);
const connection = await NativeConnection.connect({ address });
const worker = await createUpgradeWorker({
  connection,
  namespace: 'default',
  taskQueue,
  registry,
  workflowBundle: { codePath },
});
const running = worker.run();
process.stdout.write(`worker ready rss=${Math.round(process.memoryUsage.rss() / 1048576)}\n`);
process.on('SIGTERM', () => {
  worker.shutdown();
});
await running;
await connection.close();
