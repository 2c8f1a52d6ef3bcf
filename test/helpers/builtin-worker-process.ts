// A worker with the built-in jobs and the real activities, run as a child process so a test can
// kill it. With KS_TEST_KILL_AFTER=<activity>, the process SIGKILLs itself the first time that
// activity returns — after its work is done, before Temporal hears of it (the worst moment for a
// step that must not repeat). Usage: node --import tsx builtin-worker-process.ts <address> <ns> <tq>
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.js';
import { registerBuiltinJobs } from '../../src/jobs/builtin.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import { workflowBundle } from '../../src/temporal/bundle.js';
import { installRuntime } from '../../src/temporal/worker.js';
import { serveUntilShutdown } from './worker-main.js';

const [address = '', namespace = 'default', taskQueue = ''] = process.argv.slice(2);
installRuntime({ logLevel: 'ERROR' });
const registry = new JobRegistry();
registerBuiltinJobs(registry);
const activities = createActivities({ registry }) as Record<string, (...args: unknown[]) => Promise<unknown>>;
const killAfter = process.env.KS_TEST_KILL_AFTER;
const real = killAfter ? activities[killAfter] : undefined;
if (killAfter && real) {
  activities[killAfter] = async (...args: unknown[]) => {
    const result = await real(...args);
    process.stdout.write(`killing the worker after ${killAfter}\n`);
    process.kill(process.pid, 'SIGKILL');
    return result;
  };
}
const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection,
  namespace,
  taskQueue,
  workflowBundle: await workflowBundle(),
  activities,
  stickyQueueScheduleToStartTimeout: '1s',
});
await serveUntilShutdown(worker, connection);
