// `npm run test:faults [-- options]`: the fault-injection suite on the real servers. Prints one
// line per scenario, the summary `faults injected N, survived N`, and writes the JSON record.
//
//   --seed N             the draw of boundaries, moments and HTTP faults (default: time-based, printed)
//   --sample             the CI sample (see SAMPLE below) instead of the full sweep
//   --scenarios a,b      only these (names: see SCENARIOS in suite.ts)
//   --boundaries all|N   worker kills at every activity boundary (full sweep) or N drawn by the seed
//   --out FILE           the JSON record (default test-results/faults-<seed>.json)
// Exit code 0 only when every scenario survived.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../helpers/env.js';
import { runFaultSuite, SAMPLE, SCENARIOS, summaryLine, type Scenario, type SuiteOptions } from './suite.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    sample: { type: 'boolean', default: false },
    scenarios: { type: 'string' },
    boundaries: { type: 'string' },
    out: { type: 'string' },
  },
});

const seed = values.seed === undefined ? Date.now() % 1_000_000 : Number(values.seed);
if (!Number.isInteger(seed)) throw new Error(`--seed ${values.seed}: an integer, please`);
const base: Omit<SuiteOptions, 'log'> = values.sample ? { ...SAMPLE, seed } : { ...FULL(), seed };
let scenarios: readonly Scenario[] = base.scenarios;
if (values.scenarios) {
  const wanted = values.scenarios.split(',');
  const unknown = wanted.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
  if (unknown.length)
    throw new Error(`--scenarios: unknown ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  scenarios = wanted as Scenario[];
}
let boundaries = base.boundaries;
if (values.boundaries !== undefined) {
  boundaries = values.boundaries === 'all' ? 'all' : Number(values.boundaries);
  if (boundaries !== 'all' && !(Number.isInteger(boundaries) && boundaries > 0))
    throw new Error(`--boundaries ${values.boundaries}: 'all' or a positive integer`);
}

function FULL(): Omit<SuiteOptions, 'log' | 'seed'> {
  return { scenarios: SCENARIOS, boundaries: 'all', randomKills: 10, outageMs: 30_000, apiFaultRate: 0.02 };
}

// Exit through process.exit so the suite's servers and workers are killed (servers.ts).
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

const started = Date.now();
const record = await runFaultSuite({
  ...base,
  scenarios,
  boundaries,
  log: (l) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${l}\n`),
});
const out = values.out ?? path.join(repoRoot, 'test-results', `faults-${seed}.json`);
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ ...record, durationMs: Date.now() - started }, null, 2)}\n`);
process.stdout.write(
  `${summaryLine(record)} (seed ${seed}, ${Math.round((Date.now() - started) / 1000)} s; record: ${out})\n`,
);
process.exitCode = record.scenarios.every((s) => s.survived) ? 0 : 1;
