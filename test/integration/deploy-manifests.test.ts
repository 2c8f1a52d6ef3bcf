// The worker manifests in deploy/kubernetes are valid for a real API server: every object of the
// kustomization passes server-side validation and admission (dry run).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import '../../src/api/core.js';
import { NamespaceResource } from '../../src/api/core.js';
import { lookupResource } from '../../src/kube/types.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { readYamlDocuments } from '../helpers/fixtures.js';

describe('deploy/kubernetes manifests', () => {
  let cluster: EphemeralCluster;
  before(async () => {
    cluster = await startEphemeralCluster('deploy');
  });
  after(() => cluster.remove());

  it('every object of the kustomization passes a server-side dry run', async () => {
    const dir = path.join(repoRoot, 'deploy/kubernetes');
    const kustomization = yaml.load(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as {
      resources: string[];
    };
    const objects = kustomization.resources.flatMap((f) => readYamlDocuments(path.join(dir, f)));
    assert.deepEqual([...new Set(objects.map((o) => o.kind))].sort(), [
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'Namespace',
      'Role',
      'RoleBinding',
      'ServiceAccount',
    ]);
    const kube = cluster.connection.client;
    // Namespaced objects need their namespace to exist, even in a dry run (the generated Roles
    // live where the jobs act: kubesphere-system, kube-federation-system, default).
    for (const ns of new Set(objects.flatMap((o) => (o.metadata.namespace ? [o.metadata.namespace] : [])))) {
      await kube.createIfAbsent(NamespaceResource, { metadata: { name: ns } });
    }
    for (const obj of objects) {
      const rt = lookupResource(obj.apiVersion ?? '', obj.kind ?? '');
      assert.ok(rt, `${obj.kind ?? ''} is not a known kind`);
      const applied = await kube.apply(rt, obj, { dryRun: true, force: true });
      assert.equal(applied.metadata.name, obj.metadata.name);
    }
  });
});
