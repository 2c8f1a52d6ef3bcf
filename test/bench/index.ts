// `npm run bench`: benchmarks against the real servers, each with a baseline measured in the same
// run. Results print as a table and go to test-results/bench.json.
//   BENCH_LIST_OBJECTS (default 5000), BENCH_USERS (default 2000), BENCH_FLEET_SIZES (default
//   200,1000), BENCH_FLEET_CONCURRENCY (default 50)
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startEphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { benchFleet, formatFleet, type FleetBench } from './fleet.js';
import { format, type Comparison } from './harness.js';
import { benchIam } from './iam.js';
import { benchList } from './list.js';

const only = new Set(process.argv.slice(2));
const want = (name: string): boolean => only.size === 0 || only.has(name);
const results: Comparison[] = [];
const fleet: FleetBench[] = [];
const cluster = await startEphemeralCluster('bench');
try {
  if (want('list')) {
    const r = await benchList(cluster, Number(process.env.BENCH_LIST_OBJECTS ?? 5000), 500);
    results.push(r);
    process.stdout.write(`${format(r)}\n\n`);
  }
  if (want('iam')) {
    const r = await benchIam(
      Number(process.env.BENCH_USERS ?? 2000),
      Number(process.env.BENCH_IAM_ROUNDS ?? 3),
    );
    results.push(r);
    process.stdout.write(`${format(r)}\n\n`);
  }
  if (want('fleet')) {
    for (const size of (process.env.BENCH_FLEET_SIZES ?? '200,1000').split(',').map(Number)) {
      const r = await benchFleet(cluster, size, Number(process.env.BENCH_FLEET_CONCURRENCY ?? 50));
      fleet.push(r);
      process.stdout.write(`${formatFleet(r)}\n\n`);
    }
  }
} finally {
  await cluster.remove();
}
mkdirSync(path.join(repoRoot, 'test-results'), { recursive: true });
writeFileSync(
  path.join(repoRoot, 'test-results/bench.json'),
  JSON.stringify({ at: new Date().toISOString(), node: process.version, results, fleet }, null, 2),
);
process.stdout.write(`results: test-results/bench.json\n`);
