// Fleets on real API servers for the fleet tests: one kube-apiserver per cluster, demo jobs with a
// config and a step log per cluster, the v4 core state the wave gate verifies, and a kubeconfig
// with one context per cluster.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import * as yaml from 'js-yaml';
import { ConfigMapResource, DeploymentResource, NamespaceResource } from '../../src/api/core.js';
import {
  ClusterResource,
  InstallPlanResource,
  type Cluster,
  type InstallPlan,
} from '../../src/api/v4/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { KubeObject } from '../../src/kube/types.js';
import * as v3 from '../../src/api/v3/index.js';
import { fleetProgressQuery, type FleetProgress } from '../../workflows/fleet/messages.js';
import { DEMO_JOBS } from '../jobs/demo.js';
import { startEphemeralCluster, type EphemeralCluster } from './cluster.js';
import { repoRoot } from './env.js';
import { applyObjects, readYamlDocuments } from './fixtures.js';
import { putKsCoreRelease } from './kubesphere.js';
import { CORE_DEPLOYMENTS } from '../../src/rbac/framework.js';

export const DEMO_NAMESPACE = 'fleet-demo';

/** API servers for the named clusters, started together. */
export async function startClusters(names: string[], prefix: string): Promise<Map<string, EphemeralCluster>> {
  const started = await Promise.all(names.map((n) => startEphemeralCluster(`${prefix}-${n}`)));
  return new Map(names.map((n, i) => [n, started[i] as EphemeralCluster]));
}

/**
 * What a finished KubeSphere v4 core upgrade leaves that the wave gate checks: a deployed v4
 * ks-core release (superseding v3) and rolled-out core deployments.
 */
export async function playV4Core(kube: ResourceClient): Promise<void> {
  await kube.apply(NamespaceResource, { metadata: { name: 'kubesphere-system' } });
  await putKsCoreRelease(kube, 1, 'v3.4.1', 'superseded');
  await putKsCoreRelease(kube, 2, 'v4.1.3', 'deployed');
  // What the verification of a v4 cluster looks at: the core deployments, rolled out.
  for (const name of CORE_DEPLOYMENTS) {
    await kube.apply(DeploymentResource, {
      metadata: { name, namespace: 'kubesphere-system' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: { containers: [{ name, image: `kubesphere/${name}:v4.1.3` }] },
        },
      },
    });
    const d = await kube.get(DeploymentResource, name, 'kubesphere-system');
    await kube.patch(
      DeploymentResource,
      name,
      'kubesphere-system',
      {
        status: {
          observedGeneration: d.metadata.generation,
          replicas: 1,
          updatedReplicas: 1,
          readyReplicas: 1,
          availableReplicas: 1,
        },
      },
      'merge',
      'status',
    );
  }
}

/** The v4 CRDs of kubesphere.io (InstallPlan…) and the Cluster CRD, on a bare host. */
export async function installHostCrds(host: ResourceClient): Promise<void> {
  await applyObjects(host, [
    ...readYamlDocuments(path.join(repoRoot, 'test/fixtures/kubesphere-v4/crds/kubesphere.io.yaml')),
    ...readYamlDocuments(path.join(repoRoot, 'test/fixtures/kubesphere-v3/crds/cluster.kubesphere.io.yaml')),
  ]);
}

/** A member's Cluster object on the host, marked the way the core job's pre-upgrade marks it. */
export async function registerMember(host: ResourceClient, name: string): Promise<void> {
  const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const cluster: Cluster = {
    apiVersion: 'cluster.kubesphere.io/v1alpha1',
    kind: 'Cluster',
    metadata: { name, labels: { 'kubesphere.io/managed': 'true' } },
    spec: { provider: 'test', enable: true },
    status: {
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Ready', message: 'Cluster is available now' },
        {
          type: 'KSCoreReady',
          status: 'True',
          reason: 'KSCoreReady',
          message: 'KS Core is available now',
          lastUpdateTime: at,
          lastTransitionTime: at,
        },
        {
          type: 'Schedulable',
          status: 'False',
          reason: 'Upgrading',
          message: 'Not schedulable now',
          lastUpdateTime: at,
          lastTransitionTime: at,
        },
      ],
    },
  };
  await host.create(ClusterResource, cluster);
}

/** Conditions of a member's Cluster object on the host, by type. */
export async function memberConditions(host: ResourceClient, name: string): Promise<Record<string, string>> {
  const c = await host.get(ClusterResource, name);
  return Object.fromEntries(
    (c.status?.conditions ?? []).map((x) => [x.type, `${x.status}/${x.reason ?? ''}`]),
  );
}

/** An extension the host places on members, with per-member install states (`clusterSchedulingStatuses`). */
export async function putExtension(
  host: ResourceClient,
  name: string,
  members: string[],
  installed: string[],
): Promise<void> {
  const plan: InstallPlan = {
    metadata: { name },
    spec: {
      extension: { name, version: '1.0.0' },
      enabled: true,
      clusterScheduling: { placement: { clusters: members } },
    },
  };
  await host.apply(InstallPlanResource, plan, { force: true });
  await setExtensionStates(host, name, installed);
}

// v4.1.3's InstallPlan has no status sub-resource: its status is written through the object.
export async function setExtensionStates(
  host: ResourceClient,
  name: string,
  installed: string[],
): Promise<void> {
  await host.patch(
    InstallPlanResource,
    name,
    undefined,
    {
      status: {
        state: 'Installed',
        clusterSchedulingStatuses: Object.fromEntries(installed.map((m) => [m, { state: 'Installed' }])),
      },
    },
    'merge',
  );
}

/** A demo-job cluster: the v3 ConfigMaps the demo jobs migrate, and its config file and step log. */
export async function demoCluster(
  kube: ResourceClient,
  dir: string,
  name: string,
  options: { storeDir?: string; jobOptions?: Record<string, Record<string, unknown>> } = {},
): Promise<{ configFile: string; log: string }> {
  await kube.apply(NamespaceResource, { metadata: { name: DEMO_NAMESPACE } });
  for (const job of DEMO_JOBS) {
    await kube.apply(ConfigMapResource, {
      metadata: { name: `${job}-v3`, namespace: DEMO_NAMESPACE },
      data: { owner: job },
    });
  }
  const log = path.join(dir, `${name}.log`);
  await writeFile(log, '');
  const configFile = path.join(dir, `${name}.yaml`);
  await writeFile(
    configFile,
    yaml.dump({
      storage: { local: { path: options.storeDir ?? path.join(dir, 'backups') } },
      jobs: Object.fromEntries(
        DEMO_JOBS.map((job, i) => [
          job,
          {
            enabled: true,
            priority: 300 - i * 100,
            retry: { maximumAttempts: 2, initialInterval: '100ms', maximumInterval: '100ms' },
            dynamicOptions: { namespace: DEMO_NAMESPACE, log, ...options.jobOptions?.[job] },
          },
        ]),
      ),
    }),
  );
  return { configFile, log };
}

/** A kubeconfig with one context per cluster (named after it), from their own kubeconfig files. */
export async function multiContextKubeconfig(
  dir: string,
  clusters: Map<string, EphemeralCluster>,
): Promise<string> {
  interface Kc {
    clusters: { name: string; cluster: unknown }[];
    users: { name: string; user: unknown }[];
    contexts: { name: string; context: { cluster: string; user: string } }[];
  }
  const merged: Kc & { apiVersion: string; kind: string; 'current-context'?: string } = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [],
    users: [],
    contexts: [],
  };
  for (const [name, c] of clusters) {
    const kc = yaml.load(await readFile(c.kubeconfig, 'utf8')) as Kc;
    const ctx = kc.contexts[0];
    const cl = kc.clusters.find((x) => x.name === ctx?.context.cluster);
    const user = kc.users.find((x) => x.name === ctx?.context.user);
    merged.clusters.push({ name, cluster: cl?.cluster });
    merged.users.push({ name, user: user?.user });
    merged.contexts.push({ name, context: { cluster: name, user: name } });
    merged['current-context'] ??= name;
  }
  const file = path.join(dir, 'kubeconfig');
  await writeFile(file, yaml.dump(merged), { mode: 0o600 });
  return file;
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `ks-upgrade-${prefix}-`));
}

/** The v3 cluster gateway: its v1alpha1 CRD and Gateway (not in the shared fixture, see its crds/). */
export const V1_CLUSTER_GATEWAY = 'kubesphere-router-kubesphere-system';
export async function installV1ClusterGateway(kube: ResourceClient): Promise<void> {
  await applyObjects(kube, [
    {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'gateways.gateway.kubesphere.io' },
      spec: {
        group: 'gateway.kubesphere.io',
        scope: 'Namespaced',
        names: { plural: 'gateways', singular: 'gateway', kind: 'Gateway', listKind: 'GatewayList' },
        versions: [
          {
            name: 'v1alpha1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    } as KubeObject,
  ]);
  await applyObjects(kube, [
    {
      apiVersion: 'gateway.kubesphere.io/v1alpha1',
      kind: 'Gateway',
      metadata: {
        name: V1_CLUSTER_GATEWAY,
        namespace: 'kubesphere-controls-system',
        labels: { 'kubesphere.io/gateway-type': 'cluster' },
      },
      spec: {
        controller: { replicas: 1, scope: { enabled: false, namespace: '' } },
        deployment: { replicas: 1 },
        service: { type: 'NodePort' },
      },
    } as KubeObject,
  ]);
}

/**
 * kube-controller-manager's garbage collector, for the one object a member's upgrade deletes with
 * propagation Orphan (the test API servers run no controller manager): the v3 WorkspaceTemplate
 * `system-workspace` loses its `orphan` finalizer once it is being deleted.
 */
export function startOrphanCollector(kube: ResourceClient, intervalMs = 300): { stop(): Promise<void> } {
  const state = { stopped: false };
  const loop = (async () => {
    while (!state.stopped) {
      try {
        for (const wt of await kube.listAll(v3.WorkspaceTemplateResource)) {
          if (!wt.metadata.deletionTimestamp || !wt.metadata.finalizers?.includes('orphan')) continue;
          await kube.patch(v3.WorkspaceTemplateResource, wt.metadata.name ?? '', undefined, {
            metadata: { finalizers: wt.metadata.finalizers.filter((f) => f !== 'orphan') },
          });
        }
      } catch {
        // the CRD is not there (yet), or the object just went away
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    stop: async () => {
      state.stopped = true;
      await loop;
    },
  };
}

/**
 * The host's ks-controller-manager reporting an extension installed on a member: every InstallPlan
 * placed on `member` gets `clusterSchedulingStatuses[member] = Installed` (the stand-in controller
 * only sets the plan's own state). Start it once the member runs v4.
 */
export function startMemberInstallReports(
  host: ResourceClient,
  member: string,
  intervalMs = 300,
): { stop(): Promise<void> } {
  const state = { stopped: false };
  const loop = (async () => {
    while (!state.stopped) {
      try {
        for (const plan of await host.listAll(InstallPlanResource)) {
          const placed = plan.spec.clusterScheduling?.placement?.clusters ?? [];
          const reported = plan.status?.clusterSchedulingStatuses as Record<string, unknown> | undefined;
          if (!placed.includes(member) || reported?.[member]) continue;
          await host.patch(
            InstallPlanResource,
            plan.metadata.name ?? '',
            undefined,
            { status: { clusterSchedulingStatuses: { [member]: { state: 'Installed' } } } },
            'merge',
          );
        }
      } catch {
        // the CRD is not there (yet), or the plan just changed
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    stop: async () => {
      state.stopped = true;
      await loop;
    },
  };
}

/** Polls fleetProgress until `predicate` holds. */
export async function waitForFleet(
  handle: WorkflowHandle,
  predicate: (p: FleetProgress) => boolean,
  timeoutMs = 180_000,
  what = 'the fleet',
): Promise<FleetProgress> {
  const deadline = Date.now() + timeoutMs;
  let last: FleetProgress | undefined;
  while (Date.now() < deadline) {
    try {
      last = await handle.query(fleetProgressQuery);
      if (predicate(last)) return last;
    } catch {
      // not started yet, or between runs (continue-as-new)
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(
    `timed out waiting for ${what}; last: ${JSON.stringify({
      status: last?.status,
      clusters: last?.clusters.map((c) => [c.name, c.state, c.upgradeStatus, c.awaiting?.error]),
    })}`,
  );
}

/** Lines of a demo step log. */
export async function steps(log: string): Promise<string[]> {
  return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
}
