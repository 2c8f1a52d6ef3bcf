// One benchmark workload in a process of its own (run by measure.ts under GNU time, so its peak
// RSS is the workload's, not the bench runner's). Usage: child.ts <workload> '<json params>';
// the last stdout line is a JSON ChildResult.
import type { StorageConfig } from '../../src/config/types.js';
import { createJobContext, createMemoryLogger } from '../../src/jobs/index.js';
import { backupKinds } from '../../src/jobs/helpers.js';
import { connectCluster } from '../../src/kube/connect.js';
import { createResourceStore } from '../../src/store/index.js';
import { widgetResource } from './widgets.js';

interface BackupParams {
  kubeconfig: string;
  kind: string;
  storage: StorageConfig;
  /** The store key of the list (a fresh one each round: backups are written once). */
  key: string;
}

/** `backupKinds` — the backup every job that removes a kind takes — of every object of `kind`. */
async function backup(p: BackupParams): Promise<{ ms: number; units: number }> {
  const conn = await connectCluster({ kubeconfig: p.kubeconfig });
  const store = await createResourceStore(p.storage);
  const rt = widgetResource(p.kind);
  const logger = createMemoryLogger();
  const ctx = createJobContext({
    job: 'bench',
    phase: 'pre-upgrade',
    cluster: { name: 'bench' },
    kube: conn.client,
    store,
    config: { enabled: true, priority: 1, dynamicOptions: {} },
    logger,
  });
  const t0 = process.hrtime.bigint();
  await backupKinds(ctx, [{ crd: `${rt.plural}.${rt.group}`, key: p.key, rt }]);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  conn.close();
  // The count from the job's own log line: reading the backup back would add to the peak RSS.
  const line = logger.entries.map((e) => e.message).find((m) => m.includes(`backed up under ${p.key}`));
  const units = Number(/: (\d+)$/.exec(line ?? '')?.[1] ?? NaN);
  return { ms, units };
}

const [workload, json] = process.argv.slice(2);
const params = JSON.parse(json ?? '{}') as unknown;
let result: unknown;
switch (workload) {
  case 'backup':
    result = await backup(params as BackupParams);
    break;
  default:
    throw new Error(`unknown workload ${String(workload)}`);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
