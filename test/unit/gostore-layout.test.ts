// The Go key table (src/gostore/layout.ts) against our jobs: every key a job reads under the Go
// tool's name is recognised and sent to that job's scope, no key matches two rules, and each
// format check accepts what the Go tool writes and rejects what it does not.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CORE_KEYS, KUBESPHERE_CONFIG_KEY } from '../../src/jobs/core/index.js';
import { backupKey } from '../../src/jobs/application/constants.js';
import {
  AGENT_CONFIGMAP,
  CASC_CONFIGMAP,
  CURRENT,
  DONE_KEY,
  keys as devopsKeys,
} from '../../src/jobs/devops/constants.js';
import { KEYS as GATEWAY_KEYS } from '../../src/jobs/gateway/constants.js';
import { KEYS as IAM_KEYS, RESOURCE, STATUS_PHASES } from '../../src/jobs/iam/constants.js';
import { KUBEEDGE_KEYS } from '../../src/jobs/kubeedge/index.js';
import { METRICS_SERVER_OBJECTS, metricsServerKey } from '../../src/jobs/metrics-server/index.js';
import { NETWORK_KEYS } from '../../src/jobs/network/index.js';
import { OPENSEARCH_KEYS } from '../../src/jobs/opensearch/index.js';
import {
  SERVICEMESH_CRDS,
  SERVICEMESH_CRS,
  SERVICEMESH_OBJECTS,
  servicemeshKey,
} from '../../src/jobs/servicemesh/index.js';
import { STORAGE_UTILS_KEYS } from '../../src/jobs/storage-utils/index.js';
import { OBJECT_GROUPS, RELEASES, objectKey, releaseKey } from '../../src/jobs/whizard-monitoring/objects.js';
import { ORIGINAL_JOB_NAMES } from '../../src/jobs/original.js';
import {
  GO_KEY_RULES,
  GoFormatError,
  decodeGoValue,
  goKeyRule,
  type GoKeyRule,
} from '../../src/gostore/index.js';
import { goJson, goObject, goSnapshots, syntheticGoStore, tinyChart } from '../helpers/go-store.js';

const facts = { chartNames: new Set(['appv-nginx-1']) };

/** The keys each job reads under the Go tool's names, from the jobs' own constants. */
function jobKeys(): [job: string, key: string][] {
  const out: [string, string][] = [];
  const add = (job: string, ...keys: string[]): void => {
    for (const k of keys) out.push([job, k]);
  };
  add(
    'core',
    CORE_KEYS.validatingWebhooks,
    CORE_KEYS.mutatingWebhooks,
    CORE_KEYS.clusters,
    CORE_KEYS.kubesphereSystemDeployments,
    CORE_KEYS.workspaceTemplates,
    CORE_KEYS.workspaces,
    KUBESPHERE_CONFIG_KEY,
  );
  add('iam', ...STATUS_PHASES.map((p) => IAM_KEYS.status(p)));
  // ClusterRoles are never snapshotted by the Go tool (reference §4.2).
  add(
    'iam',
    ...Object.values(RESOURCE)
      .filter((r) => r !== RESOURCE.clusterRole)
      .map((r) => IAM_KEYS.snapshot(r)),
  );
  add(
    'application',
    ...['helmcategories', 'helmapplications', 'helmapplicationversions', 'helmrepos', 'helmreleases'].map(
      backupKey,
    ),
    'appv-nginx-1',
  );
  for (const c of ['host', 'member1']) {
    add(
      'devops',
      devopsKeys.release(c, 'kubesphere-devops-system', 'devops'),
      devopsKeys.values(c, 'kubesphere-devops-system', 'devops'),
      devopsKeys.release(c, 'argocd', 'devops'),
      devopsKeys.values(c, 'argocd', 'devops'),
      devopsKeys.deployments(c),
      devopsKeys.configMaps(c, 'kubesphere-devops-system'),
      devopsKeys.configMaps(c, 'kubesphere-devops-worker'),
      devopsKeys.configMaps(c, 'argocd'),
      devopsKeys.jenkinsSecret(c),
      devopsKeys.projects(c),
      devopsKeys.pipelines(c),
      devopsKeys.pipelineRuns(c),
      devopsKeys.gitRepos(c),
      devopsKeys.projectSecrets(c),
    );
  }
  for (const c of ['host', 'member1', CURRENT]) add('devops', devopsKeys.pvcs(c), devopsKeys.pv(c));
  add('devops', AGENT_CONFIGMAP, CASC_CONFIGMAP, DONE_KEY);
  add('whizard-monitoring', ...RELEASES.map((r) => releaseKey(r.name)));
  for (const g of OBJECT_GROUPS)
    add('whizard-monitoring', ...g.objects.map(([ns, name]) => objectKey(g, ns, name)));
  add('gateway', ...Object.values(GATEWAY_KEYS));
  add(
    'network',
    NETWORK_KEYS.webhook,
    ...Object.values(NETWORK_KEYS.crds),
    NETWORK_KEYS.ksIPPools,
    NETWORK_KEYS.calicoIPPools,
    NETWORK_KEYS.networkPolicies,
    NETWORK_KEYS.workspaceTemplates,
    NETWORK_KEYS.namespaceNetworkPolicies,
  );
  add('kubeedge', ...Object.values(KUBEEDGE_KEYS));
  add('opensearch', ...Object.values(OPENSEARCH_KEYS));
  add('metrics-server', ...METRICS_SERVER_OBJECTS.map(metricsServerKey));
  add(
    'servicemesh',
    ...SERVICEMESH_OBJECTS.map((t) => servicemeshKey(t.name, t.kind)),
    ...SERVICEMESH_CRS.map((c) => c.key),
    ...SERVICEMESH_CRDS.map((c) => servicemeshKey(c, 'CustomResourceDefinition')),
  );
  add('storage-utils', STORAGE_UTILS_KEYS.snapshotController);
  return out;
}

const matching = (key: string): GoKeyRule[] =>
  GO_KEY_RULES.filter((r) => (r.match ? r.match(key, facts) : r.key === key));

describe('the Go key table', () => {
  it('sends every Go-named key our jobs read to that job, under the same key', () => {
    const keys = jobKeys();
    assert.ok(keys.length > 150, `${keys.length} keys`);
    for (const [job, key] of keys) {
      const rule = goKeyRule(key, facts);
      assert.ok(rule, `${job}: ${key} is not in the Go key table`);
      assert.equal(rule.job, job, key);
      assert.equal(rule.shared === true, key === KUBESPHERE_CONFIG_KEY, `${key}: shared scope`);
      assert.equal(rule.notImported, undefined, key);
    }
  });

  it('lets no key match two rules, and knows only jobs of the original', () => {
    for (const key of [...jobKeys().map(([, k]) => k), ...syntheticGoStore().keys()]) {
      const rules = matching(key);
      assert.equal(rules.length, 1, `${key} matches ${rules.map((r) => r.key).join(' and ')}`);
    }
    for (const r of GO_KEY_RULES) assert.ok(ORIGINAL_JOB_NAMES.includes(r.job), r.job);
  });

  it('has a `<job>-done` rule exactly for the jobs with a done marker', () => {
    const markers = GO_KEY_RULES.filter((r) => r.format === 'done-marker').map((r) => r.job);
    assert.deepEqual(new Set(markers.map((j) => `${j}-done`)).size, 14);
    // Jobs without a marker in the Go tool (reference §4.0 table).
    for (const j of ['core', 'iam', 'application', 'devops', 'kubefed', 'tower'])
      assert.ok(!markers.includes(j), j);
  });

  it('does not recognise keys the Go tool never writes', () => {
    for (const key of [
      'iam-clusterroles.rbac.authorization.kubernetes.io',
      'core.rollback.deployment-replicas',
      'tower-service',
      'appv-unknown',
      'notificationManagerResource',
      'lost+found',
      'Host-devops-projects',
    ]) {
      assert.equal(goKeyRule(key, facts), undefined, key);
    }
  });
});

describe('decoding Go values', () => {
  const rule = (key: string): GoKeyRule => {
    const r = goKeyRule(key, facts);
    assert.ok(r, key);
    return r;
  };
  const decode = (key: string, bytes: Uint8Array) => decodeGoValue(rule(key), key, bytes);

  it('keeps Go bytes as they are, zero-valued fields and missing apiVersion/kind included', () => {
    const bytes = goJson({
      metadata: { resourceVersion: '7' },
      items: [goObject({ kind: 'Deployment', metadata: { name: 'ks-installer' } }, false)],
    });
    const d = decode('core.resource.kubesphere.system', bytes);
    assert.deepEqual(Buffer.from(d.payload), bytes);
    assert.equal(d.contentType, 'application/json');
    assert.ok(d.sensitive);
    assert.deepEqual(d.notes, []);
  });

  it("turns Go's nil slice and nil map into [] and {}", () => {
    assert.deepEqual(
      JSON.parse(
        Buffer.from(decode('events-Rules', Buffer.from('{"metadata":{},"items":null}')).payload).toString(),
      ),
      { metadata: {}, items: [] },
    );
    const values = decode('member1-argocd-devops-values', Buffer.from('null'));
    assert.equal(Buffer.from(values.payload).toString(), '{}');
    assert.equal(values.notes.length, 1);
  });

  it("skips Go's zero value of an absent Deployment and an empty marker", () => {
    const adapter = decode('notification-adapter', goJson(goObject({ kind: 'Deployment' }, false)));
    assert.match(adapter.skip ?? '', /did not exist/);
    assert.match(decode('vector-done', Buffer.from('')).skip ?? '', /not done/);
    assert.equal(decode('vector-done', Buffer.from('2025-04-23 08:00:00.1 +0000 UTC')).skip, undefined);
  });

  it('stores NotificationManagers the Go tool put under the Configs key under their own key', () => {
    const managers = goJson({
      metadata: {},
      items: [
        {
          apiVersion: 'notification.kubesphere.io/v2beta2',
          kind: 'NotificationManager',
          metadata: { name: 'nm' },
        },
      ],
    });
    assert.equal(decode('notificationConfigResource', managers).key, 'notificationManagerResource');
    const configs = goJson({
      metadata: {},
      items: [{ apiVersion: 'notification.kubesphere.io/v2beta2', kind: 'Config', metadata: { name: 'c' } }],
    });
    assert.equal(decode('notificationConfigResource', configs).key, 'notificationConfigResource');
  });

  it('detects secrets in values the table does not flag', () => {
    const d = decode(
      'ks-devops-agent',
      goJson(
        goObject({ kind: 'Secret', metadata: { name: 's' }, type: 'Opaque', data: { a: 'Yg==' } }, false),
      ),
    );
    assert.match(d.sensitive ?? '', /Secret/);
  });

  it('rejects values that do not have the format of their key', () => {
    const cases: [string, string | Uint8Array, RegExp][] = [
      ['core.cluster.kubeconfig', '{"metadata":{},"items":[', /not valid JSON/],
      ['core.cluster.kubeconfig', '{"metadata":{}}', /without an "items" array/],
      ['old-snapshot-controller', '[]', /not a JSON object/],
      ['iam-users.iam.kubesphere.io', '{"list":"x"}', /not a JSON array/],
      ['iam-users.iam.kubesphere.io', goSnapshots([{ list: { items: 3 }, at: 1 }]), /snapshot 0 .*items/],
      ['iam-users.iam.kubesphere.io', '[{"list":"bm90IGpzb24=","timestamp":1}]', /not base64 of JSON/],
      ['kubesphere-config', '- a\n- b\n', /not a YAML mapping/],
      ['kubesphere-config', 'a: [', /not valid YAML/],
      ['opensearch_enabled', 'maybe', /not "true" or "false"/],
      ['appv-nginx-1', 'apiVersion: v2', /not a gzip archive/],
      ['vector-done', Buffer.from([0xff, 0xfe]), /not UTF-8/],
    ];
    for (const [key, value, pattern] of cases) {
      assert.throws(
        () => decode(key, typeof value === 'string' ? Buffer.from(value) : value),
        (err: unknown) => {
          assert.ok(err instanceof GoFormatError, `${key}: ${String(err)}`);
          assert.match(err.message, pattern);
          return true;
        },
      );
    }
    assert.equal(decode('appv-nginx-1', tinyChart('nginx')).contentType, 'application/gzip');
  });
});
