// Rollback of every built-in job on a store where no backup was ever taken (the job's first step
// failed before its backups): each one finishes, and says for every backup it would restore from
// that none was taken — never a silent "nothing restored". The post-upgrade and dynamic-upgrade
// side (a missing backup is an error there) is tested in each job's own test file.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_JOB_FACTORIES } from '../../src/jobs/builtin.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import type { ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { runSingleJob } from '../helpers/jobs.js';
import { installKubeSphereV3 } from '../helpers/kubesphere.js';
import { encryptedTempStore } from '../helpers/storage.js';

/** Jobs whose rollback restores nothing from a backup (it only removes a pending InstallPlan). */
const NO_BACKUP_READ = new Set(['opensearch', 'whizard-telemetry']);

describe('rollback on a store without backups', () => {
  let cluster: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;

  before(async () => {
    cluster = await startEphemeralCluster('no-backups');
    kube = cluster.connection.client;
    await installKubeSphereV3(kube);
    store = (await encryptedTempStore('no-backups-')).store;
  });
  after(async () => {
    await closeClusterClients();
    await cluster.remove();
  });

  for (const factory of BUILTIN_JOB_FACTORIES) {
    const ref = { name: factory.name, version: '1.0.0' };
    const skip = factory.create({}, ref).rollback ? false : 'the job has no rollback';
    it(
      `${factory.name}: finishes and names each backup it had nothing to restore from`,
      { skip },
      async () => {
        const { outcomes, logs } = await runSingleJob('rollback', {
          factory,
          config: {
            enabled: true,
            priority: 1,
            extensionRef: { name: factory.name, version: '1.0.0' },
            dynamicOptions: {},
          },
          kube,
          store,
        });
        assert.deepEqual(outcomes, ['succeeded']);
        const said = logs.filter((l) =>
          /^info: nothing to restore from '[^']+': no backup was taken/.test(l),
        );
        if (NO_BACKUP_READ.has(factory.name)) assert.deepEqual(said, []);
        else
          assert.ok(
            said.length > 0,
            `${factory.name} rollback said nothing about its missing backups:\n${logs.join('\n')}`,
          );
        assert.deepEqual(await store.scope('host', factory.name).list(), [], 'rollback writes no backup');
      },
    );
  }
});
