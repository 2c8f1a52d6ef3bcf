// Backups of many custom objects (`backupKinds`, what every job that removes a kind does) against
// kubectl writing the same list to a file, and the backup's memory at two sizes. Each side runs
// as its own process, alternating, so both get the same (noisy) machine and their own peak RSS.
import { stat } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { StorageConfig } from '../../src/config/types.js';
import { devEnv, uniqueName } from '../helpers/env.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import type { Row } from './harness.js';
import { measureChild, measureProcess, median, type ProcessRun } from './measure.js';
import { createWidgets } from './widgets.js';

export function kubectlBin(): string {
  const tools =
    process.env.KS_UPGRADE_TOOLS_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(process.env.HOME ?? '', '.cache'), 'ks-upgrade/tools');
  return path.join(tools, 'kubectl-1.35.4/kubectl');
}

interface Side {
  ms: number[];
  rss: number[];
}

const summary = (s: Side): { ms: number; rss: number } => ({ ms: median(s.ms), rss: Math.max(...s.rss) });

function s3Storage(prefix: string): StorageConfig {
  const env = devEnv();
  return {
    local: { path: '' },
    s3: {
      endpoint: env.s3Endpoint.replace('http://', ''),
      disableSSL: true,
      forcePathStyle: true,
      region: env.s3Region,
      bucket: env.s3Bucket,
      prefix,
      createBucket: false,
      multipartThreshold: 8 * 1024 * 1024,
    },
  };
}

export interface BackupBenchOptions {
  objects: number;
  /** The smaller size of the memory row. */
  smallObjects: number;
  rounds: number;
}

/** The three backup rows: local store vs kubectl, S3 vs kubectl, RSS at `objects` vs `smallObjects`. */
export async function benchBackup(cluster: EphemeralCluster, o: BackupBenchOptions): Promise<Row[]> {
  const kube = cluster.connection.client;
  process.stderr.write(`backup: creating ${o.objects} + ${o.smallObjects} custom objects…\n`);
  const big = await createWidgets(kube, 'Widget', o.objects);
  await createWidgets(kube, 'Gadget', o.smallObjects);
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-backup-'));
  const kubectl: Side = { ms: [], rss: [] };
  const local: Side = { ms: [], rss: [] };
  const s3: Side = { ms: [], rss: [] };
  const small: Side = { ms: [], rss: [] };
  let kubectlBytes = 0;
  const run = async (kind: string, storage: StorageConfig, side: Side, expect: number): Promise<void> => {
    // BENCH_CHILD_NODE_ARGS: extra Node flags for our side (--cpu-prof, --heap-prof…) when profiling.
    const nodeArgs = process.env.BENCH_CHILD_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    const r = await measureChild(
      'backup',
      { kubeconfig: cluster.kubeconfig, kind, storage, key: uniqueName('list') },
      nodeArgs,
    );
    if (r.result.units !== expect)
      throw new Error(`backup of ${kind}: ${r.result.units} objects, expected ${expect}`);
    side.ms.push(r.result.ms);
    side.rss.push(r.peakRssMb);
  };
  const runKubectl = async (): Promise<void> => {
    const file = path.join(dir, 'kubectl.json');
    const r: ProcessRun = await measureProcess(
      kubectlBin(),
      [
        '--kubeconfig',
        cluster.kubeconfig,
        'get',
        `${big.plural}.${big.group}`,
        '-A',
        '-o',
        'json',
        '--chunk-size=500',
      ],
      { stdoutFile: file },
    );
    kubectlBytes = (await stat(file)).size;
    kubectl.ms.push(r.wallMs);
    kubectl.rss.push(r.peakRssMb);
  };
  try {
    for (let i = 0; i < o.rounds; i++) {
      process.stderr.write(`backup: round ${i + 1}/${o.rounds}\n`);
      const steps = [
        runKubectl,
        () => run('Widget', { local: { path: path.join(dir, `store-${i}`) } }, local, o.objects),
        () => run('Widget', s3Storage(`${uniqueName('bench')}/`), s3, o.objects),
        () => run('Gadget', { local: { path: path.join(dir, `small-${i}`) } }, small, o.smallObjects),
      ];
      // Alternate the order so neither side always runs on a warmer (or busier) machine.
      for (const step of i % 2 ? steps.reverse() : steps) await step();
      await rm(path.join(dir, `store-${i}`), { recursive: true, force: true });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const k = summary(kubectl);
  const l = summary(local);
  const s = summary(s3);
  const m = summary(small);
  const kubectlLabel = `kubectl get -A -o json --chunk-size=500 > file (${(kubectlBytes / 1e6).toFixed(1)} MB)`;
  const timeRow = (id: string, what: string, ours: { ms: number; rss: number }, target: number): Row => ({
    id,
    workload: `back up ${o.objects} custom objects, ${what}`,
    baseline: { label: kubectlLabel, value: k.ms, unit: 'ms', peakRssMb: k.rss },
    ours: { label: `backupKinds → ${what}`, value: ours.ms, unit: 'ms', peakRssMb: ours.rss },
    ratio: ours.ms / k.ms,
    ratioLabel: "× kubectl's time",
    target: `≤ ${target.toFixed(1)}×`,
    met: ours.ms / k.ms <= target,
    rounds: o.rounds,
  });
  return [
    timeRow('backup-local', 'local store', l, 1.0),
    timeRow('backup-s3', 'S3 (versitygw)', s, 1.3),
    {
      id: 'backup-memory',
      workload: `backup peak RSS, ${o.objects} vs ${o.smallObjects} objects`,
      baseline: {
        label: `backupKinds of ${o.smallObjects} objects`,
        value: m.rss,
        unit: 'MiB',
        peakRssMb: m.rss,
      },
      ours: { label: `backupKinds of ${o.objects} objects`, value: l.rss, unit: 'MiB', peakRssMb: l.rss },
      ratio: l.rss / m.rss,
      ratioLabel: '× the RSS at the small size',
      target: '≤ 1.2×',
      met: l.rss / m.rss <= 1.2,
      rounds: o.rounds,
      extra: { smallMs: m.ms },
    },
  ];
}
