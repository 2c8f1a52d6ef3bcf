// The logical cluster name against two real API servers (the dev servers `host` and `member1`):
// it comes from the kubeconfig's current context, and a name once used for one cluster is
// refused for another, by the phase commands and by `run`, before anything changes.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import { ConfigMapResource, NamespaceResource } from '../../src/api/core.js';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { createResourceStore } from '../../src/store/index.js';
import { clusterBindingKey, type ClusterBinding } from '../../src/upgrade/cluster-identity.js';
import { DEMO_JOBS } from '../jobs/demo.js';
import { cli } from '../helpers/cli.js';
import { devEnv, uniqueName } from '../helpers/env.js';
import { devClusterConnection } from '../helpers/kube.js';
import { demoSetup, stepLog, type DemoSetup } from '../helpers/upgrade.js';

/** Context names as kubeadm and cloud CLIs write them: not DNS labels. */
const HOST_CONTEXT = 'admin@Host-Cluster';
const MEMBER_CONTEXT = 'admin@member1';

describe('the cluster name and the API server it stands for', () => {
  const env = devEnv();
  let host: ClusterConnection;
  let member: ClusterConnection;
  let s: DemoSetup;
  /** Kubeconfigs whose current context is the host / the member cluster. */
  let onHost: string;
  let onMember: string;
  let uid: { host: string; member: string };

  before(async () => {
    host = await devClusterConnection('host');
    member = await devClusterConnection('member1');
    s = await demoSetup(host.client);
    // The same demo objects on member1, so that the demo jobs find their namespace there too.
    await member.client.create(NamespaceResource, { metadata: { name: s.namespace } });
    for (const job of DEMO_JOBS) {
      await member.client.create(ConfigMapResource, {
        metadata: { name: `${job}-v3`, namespace: s.namespace },
        data: { owner: job },
      });
    }
    const kubeconfig = yaml.load(await readFile(env.kubeconfig, 'utf8')) as {
      contexts: { name: string; context: { cluster: string } }[];
      'current-context': string;
    };
    kubeconfig.contexts = [
      { name: HOST_CONTEXT, context: { ...kubeconfig.contexts[0]?.context, cluster: 'host' } },
      { name: MEMBER_CONTEXT, context: { ...kubeconfig.contexts[0]?.context, cluster: 'member1' } },
    ];
    const write = async (name: string, current: string): Promise<string> => {
      const file = path.join(s.dir, name);
      await writeFile(file, yaml.dump({ ...kubeconfig, 'current-context': current }), { mode: 0o600 });
      return file;
    };
    onHost = await write('kubeconfig-host', HOST_CONTEXT);
    onMember = await write('kubeconfig-member', MEMBER_CONTEXT);
    uid = {
      host: (await host.client.get(NamespaceResource, 'kube-system')).metadata.uid ?? '',
      member: (await member.client.get(NamespaceResource, 'kube-system')).metadata.uid ?? '',
    };
    assert.notEqual(uid.host, uid.member, 'two clusters');
  });
  after(() => {
    host.close();
    member.close();
  });

  async function binding(cluster: string): Promise<ClusterBinding> {
    const store = await createResourceStore({ local: { path: s.storeDir } });
    return store.load<ClusterBinding>(clusterBindingKey(cluster));
  }

  const phase = (name: string, kubeconfig: string, ...args: string[]) =>
    cli([name, '--no-defaults', '--config', s.configFile, ...args], { KUBECONFIG: kubeconfig });

  it('phase commands name the cluster after the current context and keep the clusters apart', async () => {
    const first = await phase('pre-upgrade', onHost);
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stderr,
      /cluster name: admin-host-cluster \(from kubeconfig context 'admin@Host-Cluster'; --cluster sets another\)/,
    );
    const second = await phase('pre-upgrade', onMember);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /cluster name: admin-member1 /);

    const store = await createResourceStore({ local: { path: s.storeDir } });
    assert.deepEqual(await store.list('admin-host-cluster/alpha/'), ['admin-host-cluster/alpha/v3']);
    assert.deepEqual(await store.list('admin-member1/alpha/'), ['admin-member1/alpha/v3']);
    const onHostBinding = await binding('admin-host-cluster');
    const onMemberBinding = await binding('admin-member1');
    assert.deepEqual(
      [onHostBinding.kubeSystemUid, onHostBinding.context, onHostBinding.server],
      [uid.host, HOST_CONTEXT, host.server],
    );
    assert.deepEqual(
      [onMemberBinding.kubeSystemUid, onMemberBinding.context, onMemberBinding.server],
      [uid.member, MEMBER_CONTEXT, member.server],
    );
    // The context is pinned in what the worker gets: pre-upgrade ran on each cluster once.
    assert.equal((await stepLog(s.log)).filter((l) => l === 'alpha pre-upgrade start').length, 2);
  });

  it('a phase command refuses a name bound to another cluster, before any job runs', async () => {
    const before = (await stepLog(s.log)).length;
    const r = await phase('post-upgrade', onMember, '--cluster', 'admin-host-cluster');
    assert.equal(r.code, 2, r.stderr);
    const store = await createResourceStore({ local: { path: s.storeDir } });
    const { createdAt } = await store.stat(clusterBindingKey('admin-host-cluster'));
    assert.equal(
      r.stderr.trim(),
      `ks-upgrade: cluster name 'admin-host-cluster' belongs to another cluster: its backups ` +
        `(admin-host-cluster/ in local:${s.storeDir}) are from the API server ${host.server} ` +
        `(kube-system uid ${uid.host}, context '${HOST_CONTEXT}', first used ${createdAt}), but context ` +
        `'${MEMBER_CONTEXT}' points at ${member.server} (kube-system uid ${uid.member}) ` +
        `(fix: give this cluster its own name with --cluster <name>, or select the cluster 'admin-host-cluster' ` +
        'stands for with --context / --kubeconfig / KUBECONFIG (the binding is ' +
        'admin-host-cluster/_cluster/identity.json in the backup store))',
    );
    assert.equal((await stepLog(s.log)).length, before, 'no job step started');
  });

  it('run refuses a name bound to another cluster instead of calling its upgrade done', async () => {
    const cluster = uniqueName('bound').slice(0, 40);
    const stateDir = await mkdtemp(path.join(tmpdir(), 'ks-bound-'));
    const args = ['run', '--no-defaults', '--config', s.configFile, '--cluster', cluster, '--gate', 'none'];
    const withState = [
      ...args,
      '--heartbeat-timeout',
      '5s',
      '--state-dir',
      stateDir,
      // The demo jobs run on a bare API server: no KubeSphere to find, nor to verify.
      ...['--skip-check', 'kubesphere-version', '--skip-check', 'verification'],
      ...['--skip-reason', 'demo jobs on a bare API server'],
    ];
    const done = await cli(withState, { KUBECONFIG: onHost });
    assert.equal(done.code, 0, done.stderr + done.stdout);
    assert.match(done.stdout, /✔ upgrade of .* succeeded/);

    const elsewhere = await cli(withState, { KUBECONFIG: onMember });
    assert.equal(elsewhere.code, 2, elsewhere.stderr + elsewhere.stdout);
    assert.doesNotMatch(elsewhere.stdout, /already succeeded/);
    assert.match(
      elsewhere.stderr,
      new RegExp(
        `ks-upgrade: cluster name '${cluster}' belongs to another cluster: .* but context '${MEMBER_CONTEXT}' points at ${member.server.replace(/[.]/g, '\\.')} `,
      ),
    );

    const again = await cli(withState, { KUBECONFIG: onHost });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already succeeded/, 'on its own cluster the name still finds its upgrade');
  });
});
