// `npm run bench [-- row ...]`: benchmarks against the real servers, every row a ratio against a
// baseline measured in the same run, with peak RSS. Prints one Markdown table and writes
// test-results/bench.json (docs/benchmarks.md records a run). Rows (ids): backup (backup-local,
// backup-s3, backup-memory), iam (iam, iam-writes), orchestration, upgrade, rss, list; fleet (200 and 1,000 simulated
// clusters, long) runs only when named: `npm run bench -- fleet`.
//   BENCH_UPGRADE_FIRST (ours | baseline: which side of the upgrade row runs first; default ours)
//   BENCH_BACKUP_OBJECTS (20000), BENCH_BACKUP_SMALL (5000), BENCH_BACKUP_ROUNDS (3)
//   BENCH_IAM_USERS (10000), BENCH_NOOP_JOBS (20), BENCH_RSS_USERS (2000)
//   BENCH_LIST_OBJECTS (5000)
//   BENCH_FLEET_SIZES (200,1000), BENCH_FLEET_CONCURRENCY (50)
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg, cpus, totalmem } from 'node:os';
import path from 'node:path';
import { startEphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { benchBackup } from './backup.js';
import { comparisonRow, formatTable, placeholderRow, type Row } from './harness.js';
import { benchFleet, formatFleet, type FleetBench } from './fleet.js';
import { benchIam } from './iam.js';
import { benchList } from './list.js';
import { benchOrchestration } from './orchestration.js';
import { benchRss } from './rss.js';
import { benchUpgrade } from './upgrade.js';

const num = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const only = new Set(process.argv.slice(2));
const want = (name: string): boolean => only.size === 0 || only.has(name);
const rows: Row[] = [];
const loads: number[][] = [];
const sampleLoad = (): void => {
  loads.push(loadavg());
};
const loadTimer = setInterval(sampleLoad, 10_000);
sampleLoad();
const started = Date.now();

const add = (r: Row | Row[]): void => {
  for (const row of Array.isArray(r) ? r : [r]) {
    rows.push(row);
    process.stderr.write(`${formatTable([row]).split('\n').pop() ?? ''}\n`);
  }
};

const fleet: FleetBench[] = [];
try {
  if (want('backup')) {
    const cluster = await startEphemeralCluster('bench-backup');
    try {
      add(
        await benchBackup(cluster, {
          objects: num('BENCH_BACKUP_OBJECTS', 20_000),
          smallObjects: num('BENCH_BACKUP_SMALL', 5_000),
          rounds: num('BENCH_BACKUP_ROUNDS', 3),
        }),
      );
    } finally {
      await cluster.remove();
    }
  }
  if (want('orchestration')) {
    const cluster = await startEphemeralCluster('bench-noop');
    try {
      add(await benchOrchestration(cluster, num('BENCH_NOOP_JOBS', 20)));
    } finally {
      await cluster.remove();
    }
  }
  if (want('upgrade')) {
    add(await benchUpgrade(process.env.BENCH_UPGRADE_FIRST === 'baseline' ? 'baseline' : 'ours'));
  }
  if (want('rss')) {
    const cluster = await startEphemeralCluster('bench-rss');
    try {
      add(await benchRss(cluster, num('BENCH_RSS_USERS', 2000)));
    } finally {
      await cluster.remove();
    }
  }
  if (want('iam')) {
    add(
      await benchIam({
        users: num('BENCH_IAM_USERS', 10_000),
        sweepObjects: num('BENCH_IAM_SWEEP', 2_000),
        concurrencies: [4, 16, 32, 64, 128],
      }),
    );
  }
  if (only.has('fleet')) {
    const cluster = await startEphemeralCluster('bench-fleet');
    try {
      for (const size of (process.env.BENCH_FLEET_SIZES ?? '200,1000').split(',').map(Number)) {
        const r = await benchFleet(cluster, size, num('BENCH_FLEET_CONCURRENCY', 50));
        fleet.push(r);
        process.stdout.write(`${formatFleet(r)}\n\n`);
      }
    } finally {
      await cluster.remove();
    }
  } else if (only.size === 0) {
    add(
      placeholderRow(
        'fleet',
        'fleet, 200 and 1,000 simulated clusters',
        'worker RSS ≤ 512 MB, history ≤ 10,000 events',
        'not in the default run (about 30 min): `npm run bench -- fleet`, figures in docs/benchmarks.md',
      ),
    );
  }
  if (want('list')) {
    const cluster = await startEphemeralCluster('bench-list');
    try {
      add(comparisonRow('list', await benchList(cluster, num('BENCH_LIST_OBJECTS', 5000), 500)));
    } finally {
      await cluster.remove();
    }
  }
} finally {
  clearInterval(loadTimer);
  sampleLoad();
}

const load1 = loads.map((l) => l[0] ?? 0);
const machine = {
  cpus: cpus().length,
  memGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  loadAvg1m: {
    min: Math.min(...load1),
    max: Math.max(...load1),
    mean: load1.reduce((a, b) => a + b, 0) / load1.length,
  },
};
const table = formatTable(rows);
process.stdout.write(`\n${table}\n\n`);
process.stdout.write(
  `machine: ${machine.cpus} cores, ${machine.memGiB} GiB, Node ${machine.node}; 1-min load average during the run ` +
    `${machine.loadAvg1m.min.toFixed(1)}–${machine.loadAvg1m.max.toFixed(1)} (mean ${machine.loadAvg1m.mean.toFixed(1)}); ` +
    `${Math.round((Date.now() - started) / 1000)} s\n`,
);
mkdirSync(path.join(repoRoot, 'test-results'), { recursive: true });
writeFileSync(
  path.join(repoRoot, 'test-results/bench.json'),
  JSON.stringify(
    { at: new Date().toISOString(), machine, args: process.argv.slice(2), rows, table, fleet },
    null,
    2,
  ),
);
process.stdout.write(`results: test-results/bench.json\n`);
