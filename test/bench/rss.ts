// Peak RSS of `ks-upgrade pre-upgrade` (core + iam, N generated users) — the CLI in process, as a
// Helm hook Job runs it — against a bare Node process that only loads the CLI: bin/ks-upgrade.js
// and the modules of the phase command (main.ts loads each command's modules on demand, so
// `--version` alone would load far less than a phase needs). Same Node, same loader (tsx): the
// difference is what the phase itself holds.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { allGenerated, generateIamObjects } from '../fixtures/kubesphere-v3/generate.js';
import { startStandInController } from '../fixtures/kubesphere-v4/controller.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { installKubeSphereV3 } from '../helpers/kubesphere.js';
import type { Row } from './harness.js';
import { measureProcess, type ProcessRun } from './measure.js';

const BIN = path.join(repoRoot, 'bin/ks-upgrade.js');
const PRELOAD = ['--import', 'tsx', '--import', path.join(repoRoot, 'test/bench/memory-report.ts')];

function memoryOf(run: ProcessRun): Record<string, number> {
  const line = run.stderr.split('\n').find((l) => l.startsWith('BENCH_MEMORY '));
  return line ? (JSON.parse(line.slice('BENCH_MEMORY '.length)) as Record<string, number>) : {};
}

export async function benchRss(cluster: EphemeralCluster, users: number): Promise<Row> {
  const kube = cluster.connection.client;
  await installKubeSphereV3(kube, { extraObjects: allGenerated(generateIamObjects({ users })) });
  const controller = startStandInController(kube, { intervalMs: 200 });
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-rss-'));
  try {
    const keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    const config = path.join(dir, 'config.yaml');
    await writeFile(
      config,
      yaml.dump({
        storage: { local: { path: path.join(dir, 'store') }, encryption: { keyFile } },
        jobs: {
          core: { enabled: true, priority: 10000 },
          iam: { enabled: true, priority: 999 },
        },
      }),
    );
    const args = [
      '--no-defaults',
      '--kubeconfig',
      cluster.kubeconfig,
      '--cluster',
      'host',
      '--config',
      config,
    ];
    const loadOnly = [
      ...PRELOAD,
      '--input-type=module',
      '-e',
      `await import(${JSON.stringify(BIN)}).catch(() => {}); await import(${JSON.stringify(path.join(repoRoot, 'src/cli/phase.ts'))});`,
    ];
    const bare = await measureProcess(process.execPath, loadOnly);
    await measureProcess(process.execPath, [BIN, 'prepare-upgrade', ...args]);
    const pre = await measureProcess(process.execPath, [...PRELOAD, BIN, 'pre-upgrade', ...args]);
    if (!/\[Job\] iam pre-upgrade: succeeded/.test(pre.stdout)) throw new Error(`pre-upgrade: ${pre.stdout}`);
    const bareAgain = await measureProcess(process.execPath, loadOnly);
    const baseRss = Math.max(bare.peakRssMb, bareAgain.peakRssMb);
    const over = pre.peakRssMb - baseRss;
    return {
      id: 'rss',
      workload: `peak RSS of pre-upgrade (core + iam, ${users} users)`,
      baseline: {
        label: 'bare Node loading the CLI (bin/ks-upgrade.js + the phase command modules)',
        value: baseRss,
        unit: 'MiB',
        peakRssMb: baseRss,
      },
      ours: {
        label: `ks-upgrade pre-upgrade (${(pre.wallMs / 1000).toFixed(1)} s)`,
        value: pre.peakRssMb,
        unit: 'MiB',
        peakRssMb: pre.peakRssMb,
      },
      ratio: over,
      ratioLabel: ' MiB above the bare CLI',
      target: 'within 100 MB of it',
      met: over * 1.048576 <= 100,
      rounds: 1,
      extra: { bareMemory: memoryOf(bare), preUpgradeMemory: memoryOf(pre) },
    };
  } finally {
    await controller.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
