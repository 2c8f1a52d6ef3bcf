// The access table and the RBAC manifests generated from it: deploy/kubernetes/rbac.yaml is exactly
// `ks-upgrade rbac` for the default config, every built-in job declares what it touches, and the
// rules are well-formed (narrowing that RBAC cannot enforce is rejected).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import {
  CHART_RBAC_PATH,
  RBAC_MANIFEST_PATH,
  renderChartRbac,
  renderRbacManifest,
} from '../../scripts/gen-rbac.js';
import { BUILTIN_JOB_FACTORIES, registerBuiltinJobs } from '../../src/jobs/builtin.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import type { JobFactory } from '../../src/jobs/types.js';
import { BUILTIN_ACCESS } from '../../src/rbac/builtin.js';
import {
  accessTable,
  declaredAccess,
  mergeRules,
  rbacManifests,
  type JobAccess,
} from '../../src/rbac/index.js';
import { configWithJobs } from '../helpers/jobs.js';

const VERBS = new Set(['get', 'list', 'create', 'update', 'patch', 'delete', 'escalate', 'bind']);

describe('access table', () => {
  it('deploy/kubernetes/rbac.yaml is generated from it (run `npx tsx scripts/gen-rbac.ts` when this fails)', async () => {
    assert.equal(await readFile(RBAC_MANIFEST_PATH, 'utf8'), await renderRbacManifest());
  });

  it("the Helm chart's RBAC template is generated from it (run `npx tsx scripts/gen-rbac.ts` when this fails)", async () => {
    assert.equal(await readFile(CHART_RBAC_PATH, 'utf8').catch(() => ''), await renderChartRbac());
  });

  it('has a table for every built-in job, and only well-formed rules', () => {
    for (const f of BUILTIN_JOB_FACTORIES) {
      const rules = declaredAccess(f);
      assert.ok(rules && rules.length > 0, `${f.name} declares no access`);
      for (const r of rules) {
        const where = `${f.name}: ${r.group}/${r.resources.join(',')} (${r.why})`;
        assert.ok(r.why.length > 10, `${where}: says why`);
        for (const v of r.verbs) assert.ok(VERBS.has(v), `${where}: unknown verb ${v}`);
        assert.ok(!r.resources.some((res) => res.includes('.')), `${where}: plural names, group apart`);
        // RBAC matches resourceNames only for requests that name one object: a create or list
        // narrowed by name would silently be denied.
        if (r.resourceNames?.length) {
          assert.deepEqual(
            r.verbs.filter((v) => v === 'create' || v === 'list'),
            [],
            `${where}: create/list cannot be narrowed by name`,
          );
        }
      }
    }
    assert.deepEqual(Object.keys(BUILTIN_ACCESS).sort(), BUILTIN_JOB_FACTORIES.map((f) => f.name).sort());
  });

  it('create comes with get: create-if-absent reads the object that is already there', () => {
    for (const f of BUILTIN_JOB_FACTORIES) {
      const rules = declaredAccess(f) ?? [];
      for (const r of rules.filter((x) => x.verbs.includes('create'))) {
        for (const res of r.resources) {
          const readable = rules.some(
            (o) =>
              o.group === r.group &&
              o.resources.includes(res) &&
              o.verbs.includes('get') &&
              o.on === r.on &&
              (!o.namespaces?.length || (r.namespaces ?? []).every((n) => o.namespaces?.includes(n))) &&
              (r.namespaces?.length || !o.namespaces?.length),
          );
          assert.ok(readable, `${f.name}: create ${r.group}/${res} without get`);
        }
      }
    }
  });

  it('escalate and bind are granted only where a job re-creates RBAC objects', () => {
    const holders = new Set<string>();
    for (const f of BUILTIN_JOB_FACTORIES) {
      for (const r of declaredAccess(f) ?? []) {
        if (r.verbs.includes('escalate') || r.verbs.includes('bind')) holders.add(f.name);
      }
    }
    assert.deepEqual([...holders].sort(), ['iam', 'metrics-server', 'servicemesh', 'whizard-monitoring']);
    const iamEscalate = (
      declaredAccess(BUILTIN_JOB_FACTORIES.find((f) => f.name === 'iam') as JobFactory) ?? []
    ).filter((r) => r.verbs.includes('escalate'));
    assert.deepEqual(iamEscalate.flatMap((r) => r.resources).sort(), ['clusterroles', 'roles']);
  });

  it('the table of a config holds the framework and the enabled jobs, in execution order', () => {
    const registry = new JobRegistry();
    registerBuiltinJobs(registry);
    const config = configWithJobs({
      iam: { enabled: true, priority: 999, dynamicOptions: {} },
      core: { enabled: true, priority: 10000, dynamicOptions: {} },
      devops: { enabled: false, priority: 800, dynamicOptions: {} },
    });
    const table = accessTable(config, registry);
    assert.deepEqual(
      table.jobs.map((j) => j.job),
      ['_framework', 'core', 'iam'],
    );
    assert.deepEqual(table.undeclared, []);
  });

  it('a plugin without an access table is refused by `rbac`, one with a function gets its options', () => {
    const registry = new JobRegistry();
    const bare: JobFactory = {
      name: 'bare',
      create: () => ({ preUpgrade: async () => {}, postUpgrade: async () => {} }),
    };
    const scoped: JobFactory = {
      ...bare,
      name: 'scoped',
      access: (options) => [
        {
          group: '',
          resources: ['configmaps'],
          verbs: ['get'],
          namespaces: [String(options.namespace)],
          why: 'test rule',
        },
      ],
    };
    registry.register(bare);
    registry.register(scoped);
    const config = configWithJobs({
      bare: { enabled: true, priority: 1, dynamicOptions: {} },
      scoped: { enabled: true, priority: 2, dynamicOptions: { namespace: 'team-a' } },
    });
    const sa = { serviceAccount: { namespace: 'ops', name: 'upgrader' } };
    assert.throws(() => rbacManifests(config, registry, sa), /jobs bare declare no access table/);
    config.jobs.bare = { enabled: false, priority: 1, dynamicOptions: {} };
    const docs = yaml.loadAll(rbacManifests(config, registry, sa)) as {
      kind: string;
      metadata: { namespace?: string };
    }[];
    assert.ok(docs.some((d) => d.kind === 'Role' && d.metadata.namespace === 'team-a'));
    assert.ok(docs.some((d) => d.kind === 'RoleBinding' && d.metadata.namespace === 'team-a'));
  });

  it('merging keeps every grant and drops only grants implied by broader ones', () => {
    const jobs: JobAccess[] = [
      {
        job: 'a',
        rules: [
          {
            group: '',
            resources: ['secrets'],
            verbs: ['get'],
            namespaces: ['x'],
            resourceNames: ['one'],
            why: 'narrow',
          },
          {
            group: '',
            resources: ['secrets'],
            verbs: ['get', 'list'],
            namespaces: ['x'],
            why: 'namespace-wide',
          },
          { group: 'apps', resources: ['deployments'], verbs: ['get'], namespaces: ['y'], why: 'implied' },
        ],
      },
      {
        job: 'b',
        rules: [
          { group: 'apps', resources: ['deployments', 'statefulsets'], verbs: ['get'], why: 'cluster-wide' },
          { group: '', resources: ['configmaps'], verbs: ['get'], resourceNames: ['c1', 'c2'], why: 'named' },
        ],
      },
    ];
    const scopes = mergeRules(jobs);
    assert.deepEqual(
      (scopes.get('') ?? []).map((r) => [
        r.apiGroups[0],
        r.resources.join(','),
        r.resourceNames?.join(',') ?? '*',
        r.verbs.join(','),
      ]),
      [
        ['', 'configmaps', 'c1,c2', 'get'],
        ['apps', 'deployments,statefulsets', '*', 'get'],
      ],
    );
    assert.deepEqual(
      (scopes.get('x') ?? []).map((r) => [r.resources.join(','), r.resourceNames ?? '*', r.verbs.join(',')]),
      [['secrets', '*', 'get,list']],
    );
    assert.equal(scopes.has('y'), false, 'the namespaced grant is implied by the cluster-wide one');
  });
});
