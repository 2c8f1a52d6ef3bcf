// A worker with the built-in jobs and the real activities, run as a child process so a test can
// kill it. With KS_TEST_KILL_AFTER=<activity>, the process SIGKILLs itself the first time that
// activity returns — after its work is done, before Temporal hears of it (the worst moment for a
// step that must not repeat). With KS_FAULT_BOUNDARY_FILE, the fault suite's boundary kills (see
// killAtBoundaries). KS_FAULT_WORKFLOW_BUNDLE names a bundle built once by the caller, so a worker
// restarted a hundred times does not bundle a hundred times.
// Usage: node --import tsx builtin-worker-process.ts <address> <ns> <tq>
import { appendFileSync, closeSync, fsyncSync, openSync, readFileSync } from 'node:fs';
import { Context } from '@temporalio/activity';
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
const boundaryFile = process.env.KS_FAULT_BOUNDARY_FILE;
if (boundaryFile) killAtBoundaries(boundaryFile, process.env.KS_FAULT_BOUNDARY_PICK ?? 'all');

/**
 * Wraps every activity so the process SIGKILLs itself at chosen boundaries: the start of an
 * activity (before its body runs) and its end (its work done, before Temporal hears of it). The
 * file lists each boundary seen (`seen <n> <activity> <id> start|end`) and each kill, across
 * restarts, so boundary n is the same point in every run of the same upgrade and is killed at most
 * once: the retry passes it. `pick` is `all` or a comma-separated list of boundary numbers.
 */
function killAtBoundaries(file: string, pick: string): void {
  const picked = pick === 'all' ? undefined : new Set(pick.split(',').map(Number));
  const boundary = (key: string): void => {
    let lines: string[] = [];
    try {
      lines = readFileSync(file, 'utf8').split('\n');
    } catch {
      // No file yet: the first boundary of the run.
    }
    const seen = lines.filter((l) => l.startsWith('seen '));
    if (seen.some((l) => l.endsWith(` ${key}`))) return;
    const n = seen.length;
    const kill = picked === undefined || picked.has(n);
    const fd = openSync(file, 'a');
    appendFileSync(fd, `seen ${n} ${key}\n${kill ? `kill ${n} ${key}\n` : ''}`);
    fsyncSync(fd);
    closeSync(fd);
    if (kill) {
      process.stdout.write(`killing the worker at boundary ${n}: ${key}\n`);
      process.kill(process.pid, 'SIGKILL');
    }
  };
  for (const [name, fn] of Object.entries(activities)) {
    activities[name] = async (...args: unknown[]) => {
      const id = Context.current().info.activityId;
      boundary(`${name} ${id} start`);
      const result = await fn(...args);
      boundary(`${name} ${id} end`);
      return result;
    };
  }
}

const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection,
  namespace,
  taskQueue,
  workflowBundle: process.env.KS_FAULT_WORKFLOW_BUNDLE
    ? { codePath: process.env.KS_FAULT_WORKFLOW_BUNDLE }
    : await workflowBundle(),
  activities,
  stickyQueueScheduleToStartTimeout: '1s',
});
await serveUntilShutdown(worker, connection);
