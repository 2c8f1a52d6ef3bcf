// Activities of gate `helm`: thin adapters from Temporal to src/helm/core-upgrade.ts. Each opens a
// helm session on the target cluster (its kubeconfig in a private 0600 file, deleted at the end),
// heartbeats while helm runs, and passes the workflow run and gate attempt that make a retried
// step recognise its own earlier helm run.
import { type ApplicationFailure, Context, activityInfo } from '@temporalio/activity';
import { buildHelmUpgrade } from '../src/config/load.js';
import type { HelmUpgradeConfig } from '../src/config/types.js';
import { HelmSession } from '../src/helm/cli.js';
import {
  CORE_STORE_SCOPE,
  applyCrds,
  chartCrds,
  fetchChart,
  rollbackCore,
  showChart,
  upgradeCore,
  type CoreRollbackResult,
  type CoreUpgradeDeps,
  type CoreUpgradeResult,
} from '../src/helm/core-upgrade.js';
import type { JobRegistry } from '../src/jobs/registry.js';
import type { Logger } from '../src/jobs/types.js';
import type { UpgradeClusterInput } from '../src/upgrade/input.js';
import { loadUpgradeConfig } from '../src/upgrade/plan.js';
import { clusterConnection, sharedStore } from '../src/upgrade/runtime.js';

/** Input of the gate-helm activities. */
export interface CoreStepRequest {
  input: UpgradeClusterInput;
  /** The gate attempt (1, 2, … — each operator `retry` is a new attempt). */
  attempt: number;
}

/** What `applyCoreCrds` reports. */
export interface CoreCrdsResult {
  chart: string;
  crds: number;
}

interface Helpers {
  registry: JobRegistry;
  toFailure: (err: unknown) => ApplicationFailure;
  logger: () => Logger;
}

/** The workflow run: the records of one run's core upgrade are kept apart from every other run's. */
function runId(): string {
  const id = activityInfo().workflowExecution?.runId;
  if (!id) throw new Error('gate helm activities run only inside an upgradeCluster workflow');
  return id;
}

/** How often to heartbeat: well inside the heartbeat timeout. */
function tickMs(): number {
  const timeout = activityInfo().heartbeatTimeoutMs;
  return timeout ? Math.max(200, Math.min(5000, Math.floor(timeout / 3))) : 5000;
}

async function withCoreDeps<T>(
  h: Helpers,
  input: UpgradeClusterInput,
  fn: (deps: CoreUpgradeDeps) => Promise<T>,
): Promise<T> {
  const ctx = Context.current();
  try {
    const loaded = await loadUpgradeConfig(input, h.registry);
    const config: HelmUpgradeConfig = loaded.config.upgrade.helm ?? buildHelmUpgrade({});
    const [conn, store] = await Promise.all([
      clusterConnection(input.kube),
      sharedStore(loaded.config.storage),
    ]);
    const helm = await HelmSession.open({
      ...(config.binary ? { binary: config.binary } : {}),
      kube: {
        ...(input.kube?.kubeconfig ? { kubeconfig: input.kube.kubeconfig } : {}),
        ...(input.kube?.context ? { context: input.kube.context } : {}),
        ...(input.kube?.inCluster ? { inCluster: true } : {}),
      },
    });
    // Heartbeat all along, with the latest detail: pulling a chart or reading the release can take
    // longer than a heartbeat timeout on a busy worker, and a silent step would be retried.
    let detail = 'starting';
    const ticker = setInterval(() => {
      ctx.heartbeat(detail);
    }, tickMs());
    try {
      return await fn({
        helm,
        kube: conn.client,
        store: store.scope(input.cluster, CORE_STORE_SCOPE),
        config,
        logger: h.logger(),
        heartbeat: (d) => {
          detail = d;
          ctx.heartbeat(d);
        },
        signal: ctx.cancellationSignal,
        pollMs: tickMs(),
      });
    } finally {
      clearInterval(ticker);
      await helm.close();
    }
  } catch (err) {
    throw h.toFailure(err);
  }
}

/** The activities of gate `helm`. */
export function createCoreUpgradeActivities(h: Helpers) {
  return {
    /** The v4 CRDs of the target ks-core chart, server-side applied (before pre-upgrade). */
    async applyCoreCrds(req: CoreStepRequest): Promise<CoreCrdsResult> {
      return withCoreDeps(h, req.input, async (deps) => {
        const file = await fetchChart(deps.helm, deps.config);
        const chart = await showChart(deps.helm, file);
        const names = await applyCrds(deps.kube, await chartCrds(deps.helm, file), {
          ...(deps.signal ? { signal: deps.signal } : {}),
          onProgress: (d) => deps.heartbeat?.(d),
        });
        return { chart: `${chart.name}-${chart.version}`, crds: names.length };
      });
    },

    /** `helm upgrade ks-core`, at most once per gate attempt (see src/helm/core-upgrade.ts). */
    async upgradeCoreRelease(req: CoreStepRequest): Promise<CoreUpgradeResult> {
      return withCoreDeps(h, req.input, (deps) =>
        upgradeCore(deps, { runId: runId(), attempt: req.attempt }),
      );
    },

    /** Rolls ks-core back to its revision before this run's upgrade; nothing when it never ran. */
    async rollbackCoreRelease(req: CoreStepRequest): Promise<CoreRollbackResult> {
      return withCoreDeps(h, req.input, (deps) => rollbackCore(deps, runId()));
    },
  };
}
