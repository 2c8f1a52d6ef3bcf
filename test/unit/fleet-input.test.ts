// The fleet's input and state rules, without servers: each cluster's upgradeCluster input, the
// workflow's own input check, the failure budget and the status, and docs/fleet.schema.json.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { FLEET_SCHEMA_PATH, renderFleetSchema } from '../../scripts/gen-config-schema.js';
import {
  allowedFailures,
  clusterUpgradeInput,
  validateFleetInput,
  type FleetInput,
} from '../../src/fleet/input.js';
import { FleetState } from '../../workflows/fleet/state.js';

const fleet = (): FleetInput => ({
  fleet: 'prod',
  defaults: {
    kubeconfig: '/etc/kc',
    configFiles: ['/etc/c.yaml'],
    overrides: { jobs: { devops: { enabled: false, dynamicOptions: { a: 1 } } } },
    tuning: { heartbeatTimeout: '30s' },
  },
  clusters: [
    { name: 'host', role: 'host', context: 'host' },
    {
      name: 'm1',
      role: 'member',
      context: 'm1',
      overrides: { jobs: { devops: { dynamicOptions: { b: 2 } }, network: { enabled: true } } },
      tuning: { gateTimeout: '1h' },
    },
    { name: 'm2', role: 'member', taskQueue: 'ks-upgrade-cluster-m2' },
  ],
  waves: [
    { name: 'host', clusters: ['host'] },
    { name: 'all', clusters: ['m1', 'm2'], approval: true },
  ],
  maxConcurrency: 2,
  failureBudget: { percent: 50 },
});

describe('fleet input', () => {
  it('docs/fleet.schema.json is generated from src/fleet/schema.ts (npx tsx scripts/gen-config-schema.ts)', async () => {
    assert.equal(await readFile(FLEET_SCHEMA_PATH, 'utf8'), await renderFleetSchema());
  });

  it("builds each cluster's upgrade input: defaults under its own settings, overrides merged", () => {
    const f = fleet();
    const [host, m1, m2] = f.clusters;
    assert.ok(host && m1 && m2);
    assert.deepEqual(clusterUpgradeInput(f, host), {
      cluster: 'host',
      kube: { kubeconfig: '/etc/kc', context: 'host' },
      configFiles: ['/etc/c.yaml'],
      overrides: { jobs: { devops: { enabled: false, dynamicOptions: { a: 1 } } } },
      tuning: { heartbeatTimeout: '30s' },
    });
    assert.deepEqual(clusterUpgradeInput(f, m1).overrides, {
      jobs: { devops: { enabled: false, dynamicOptions: { a: 1, b: 2 } }, network: { enabled: true } },
    });
    assert.deepEqual(clusterUpgradeInput(f, m1).tuning, { heartbeatTimeout: '30s', gateTimeout: '1h' });
    // A dedicated worker uses its own credentials: no kubeconfig of the shared worker.
    assert.equal(clusterUpgradeInput(f, m2).kube, undefined);
  });

  it('the workflow rejects what the loader would have: two hosts, a member in no wave, credentials', () => {
    assert.deepEqual(validateFleetInput(fleet()), []);
    const f = fleet();
    f.clusters[1] = {
      ...f.clusters[1],
      name: 'm1',
      role: 'host',
      overrides: { jobs: { x: { dynamicOptions: { token: 's3cr3t' } } } },
    };
    f.waves = [
      { name: 'host', clusters: ['host'] },
      { name: 'all', clusters: ['m1'] },
    ];
    f.maxConcurrency = 0;
    assert.deepEqual(validateFleetInput(f), [
      'clusters[1]: overrides.jobs.x.dynamicOptions.token: credentials are not accepted in workflow input (it is stored in history); put them in a config or credentials file on the worker, or in its environment',
      'clusters: exactly one cluster must have role "host" (found 2)',
      "waves: cluster 'm2' is in no wave",
      'maxConcurrency: a whole number from 1 to 500',
    ]);
  });

  it('counts the budget in clusters, and stops new starts once failures and waits exceed it', () => {
    assert.equal(allowedFailures({ percent: 50 }, 3), 1);
    assert.equal(allowedFailures({ percent: 10 }, 9), 0);
    const s = new FleetState(fleet(), '2025-06-01T00:00:00Z');
    assert.equal(s.allowed, 1);
    assert.equal(s.status({}), 'Running');
    s.record('m1').state = 'failed';
    assert.equal(s.budgetAllowsStart, true, 'one failure is within the budget');
    s.record('m2').awaiting = { kind: 'upgrade', error: 'boom', allowed: ['retry'], since: '', commands: [] };
    assert.equal(s.budgetAllowsStart, false, 'a cluster waiting for an operator counts while it waits');
    assert.equal(s.budgetExceeded, false);
    assert.equal(s.status({ approval: true }), 'AwaitingOperator');
    delete s.record('m2').awaiting;
    assert.equal(s.status({ approval: true }), 'AwaitingApproval');
    s.record('m2').state = 'failed';
    assert.equal(s.budgetExceeded, true);
  });

  it('carries its state over continue-as-new, one run further', () => {
    const s = new FleetState(fleet(), '2025-06-01T00:00:00Z');
    s.carried.approvals.all = { by: 'alice', reason: 'ok', at: 't' };
    s.record('m1').state = 'upgrading';
    const next = new FleetState({ ...fleet(), carried: s.snapshot() }, 'later');
    assert.equal(next.carried.run, 2);
    assert.equal(next.carried.startedAt, '2025-06-01T00:00:00Z');
    assert.deepEqual(next.carried.approvals.all, { by: 'alice', reason: 'ok', at: 't' });
    assert.deepEqual(next.inFlight(['host', 'm1', 'm2']), ['m1']);
  });
});
