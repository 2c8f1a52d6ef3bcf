// The IAM migration (iam job, pre-upgrade) of N generated users with their three bindings each:
// sequential, as the Go tool migrates (concurrency 1), against ks-upgrade's bounded concurrency.
// Every timed run starts from a fresh v3 cluster (untimed set-up: fixture, users, prepare-upgrade),
// because the migration changes what it migrates.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { iamJobFactory } from '../../src/jobs/iam/index.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runJobPhase,
  type Phase,
} from '../../src/jobs/index.js';
import { lookupResource } from '../../src/kube/types.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { forEachLimit } from '../../src/util/concurrency.js';
import { allGenerated, generateIamObjects } from '../fixtures/kubesphere-v3/generate.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3 } from '../helpers/kubesphere.js';
import { compare, type Comparison, type Contender } from './harness.js';
import { configWithJobs } from '../helpers/jobs.js';

interface Prepared {
  cluster: EphemeralCluster;
  store: ResourceStore;
  dir: string;
}

function iamJob(concurrency: number) {
  const registry = new JobRegistry();
  registry.register(iamJobFactory);
  const [iam] = instantiateJobs(
    configWithJobs({ iam: { enabled: true, priority: 999, dynamicOptions: { concurrency } } }),
    registry,
  );
  if (!iam) throw new Error('iam job not instantiated');
  return iam;
}

async function phase(p: Prepared, concurrency: number, name: Phase): Promise<void> {
  const iam = iamJob(concurrency);
  const result = await runJobPhase(
    iam.job,
    createJobContext({
      job: 'iam',
      phase: name,
      cluster: { name: 'host' },
      kube: p.cluster.connection.client,
      store: p.store,
      config: iam.config,
      logger: createMemoryLogger(),
    }),
  );
  if (result.outcome !== 'succeeded')
    throw new Error(`iam ${name}: ${result.outcome} ${result.reason ?? ''}`);
}

export async function benchIam(users: number, rounds: number): Promise<Comparison> {
  const objects = allGenerated(generateIamObjects({ users }));
  let current: Prepared | undefined;
  const release = async (): Promise<void> => {
    if (!current) return;
    await current.cluster.remove();
    await rm(current.dir, { recursive: true, force: true });
    current = undefined;
  };
  const setup = async (): Promise<void> => {
    await release();
    const cluster = await startEphemeralCluster('bench-iam');
    const kube = cluster.connection.client;
    await installKubeSphereV3(kube);
    await forEachLimit(objects, 64, async (o) => {
      const rt = lookupResource(o.apiVersion ?? '', o.kind ?? '');
      if (!rt) throw new Error(`no resource type for ${o.apiVersion ?? ''} ${o.kind ?? ''}`);
      await kube.create(rt, o);
    });
    const dir = await mkdtemp(path.join(tmpdir(), 'bench-iam-'));
    const keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    const store = await createResourceStore({
      local: { path: path.join(dir, 'store') },
      encryption: { keyFile },
    });
    current = { cluster, store, dir };
    await phase(current, 1, 'prepare-upgrade');
  };
  const contender = (label: string, concurrency: number): Contender => ({
    label,
    setup,
    run: async () => {
      if (!current) throw new Error('no prepared cluster');
      await phase(current, concurrency, 'pre-upgrade');
      return objects.length;
    },
  });
  try {
    return await compare(
      `iam pre-upgrade: ${users} users + ${objects.length - users} bindings`,
      'objects',
      rounds,
      contender('sequential (the Go tool; concurrency 1)', 1),
      contender('ks-upgrade (concurrency 8, conflict-retry)', 8),
      'each run on a fresh v3 cluster; the snapshot and CRD storedVersions update are in both',
    );
  } finally {
    await release();
  }
}
