// The default cluster name: from the kubeconfig's current context (made a DNS label), with that
// context pinned in the target the worker gets.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { clusterNameFromContext, clusterTarget } from '../../src/cli/common.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

describe('cluster name from a kubeconfig context', () => {
  it('makes context names DNS labels', () => {
    assert.equal(clusterNameFromContext('kubernetes-admin@kubernetes'), 'kubernetes-admin-kubernetes');
    assert.equal(clusterNameFromContext('member1'), 'member1');
    assert.equal(
      clusterNameFromContext('arn:aws:eks:eu-central-1:123456789012:cluster/Prod_Cluster'),
      'arn-aws-eks-eu-central-1-123456789012-cluster-prod-cluster',
    );
    assert.equal(clusterNameFromContext('-Kind-'), 'kind');
  });

  it('cuts a long name to 63 characters with a hash of the whole, and names an empty one by its hash', () => {
    const long = `gke_my-project-with-a-long-name_europe-west1-b_${'x'.repeat(40)}`;
    const name = clusterNameFromContext(long);
    assert.equal(name.length, 63);
    assert.match(name, DNS_LABEL);
    assert.notEqual(name, clusterNameFromContext(`${long}y`), 'different contexts, different names');
    assert.match(clusterNameFromContext('@@@'), /^context-[0-9a-f]{8}$/);
  });
});

describe('clusterTarget', () => {
  let dir: string;
  let kubeconfig: string;
  const saved = process.env.KUBECONFIG;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ks-cluster-name-'));
    kubeconfig = path.join(dir, 'config');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: "Admin@Kind", context: {cluster: c, user: u}}, {name: other, context: {cluster: c, user: u}}]',
        'current-context: "Admin@Kind"',
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
    await rm(dir, { recursive: true, force: true });
  });

  it('names the cluster after the current context of KUBECONFIG and pins that context', async () => {
    process.env.KUBECONFIG = `${kubeconfig}${path.delimiter}/nonexistent`;
    assert.deepEqual(await clusterTarget({}), {
      cluster: 'admin-kind',
      kube: { kubeconfig, context: 'Admin@Kind' },
      source: 'context',
      context: 'Admin@Kind',
    });
  });

  it('prefers --context, and --cluster over both', async () => {
    assert.equal((await clusterTarget({ kubeconfig, context: 'other' })).cluster, 'other');
    const named = await clusterTarget({ kubeconfig, cluster: 'prod-1' });
    assert.deepEqual(named, {
      cluster: 'prod-1',
      kube: { kubeconfig, context: 'Admin@Kind' },
      source: 'flag',
    });
    await assert.rejects(clusterTarget({ kubeconfig, cluster: 'Prod_1' }), /is not a lowercase DNS label/);
  });

  it('is host in-cluster, and without a usable kubeconfig', async () => {
    assert.deepEqual(await clusterTarget({ inCluster: true }), {
      cluster: 'host',
      kube: { inCluster: true },
      source: 'in-cluster',
    });
    const missing = path.join(dir, 'missing');
    assert.equal((await clusterTarget({ kubeconfig: missing })).cluster, 'host');
  });
});
