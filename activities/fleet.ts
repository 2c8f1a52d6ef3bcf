// Temporal activities of the fleet: thin adapters from upgradeFleet to src/fleet. The wave gate's
// checks run on the cluster's own task queue (its worker's credentials); looking at other
// workflows needs a Temporal client, which the worker passes in.
import type { createCheckActivities } from './checks.js';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { observeUpgrades, type ObserveRequest, type Observation } from '../src/fleet/observe.js';
import type { MaintenanceWindow } from '../src/fleet/input.js';
import {
  backedUpGateways,
  clearMemberSchedulable,
  verifyGatewayState,
  verifyMemberOnHost,
} from '../src/fleet/verify.js';
import { nextOccurrence, type WindowOccurrence } from '../src/fleet/window.js';
import { defaultRegistry, type JobRegistry } from '../src/jobs/registry.js';
import type { UpgradeClusterInput } from '../src/upgrade/input.js';
import { buildUpgradePlan, loadUpgradeConfig } from '../src/upgrade/plan.js';
import { clusterConnection, sharedStore } from '../src/upgrade/runtime.js';
import type { VerificationReport } from '../src/verify/types.js';
import { toFailure } from './index.js';

/** A member as the host knows it. */
export interface MemberOnHostRequest {
  host: UpgradeClusterInput;
  /** The member's Cluster object name on the host. */
  member: string;
}

export interface GatewayPlanRequest {
  input: UpgradeClusterInput;
  gateways: string[] | 'auto';
}

/** The gateways to upgrade, and the other jobs with a dynamic-upgrade (left out of gateway runs). */
export interface GatewayPlan {
  gateways: string[];
  disable: string[];
}

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toFailure(err);
  }
}

/** The fleet's activities; `client` is needed by observeUpgrades only. */
export function createFleetActivities(deps: { client?: Client; registry?: JobRegistry } = {}) {
  const registry = deps.registry ?? defaultRegistry;
  return {
    async verifyMemberOnHost(req: MemberOnHostRequest): Promise<VerificationReport> {
      return guard(async () =>
        verifyMemberOnHost((await clusterConnection(req.host.kube)).client, req.member),
      );
    },

    async clearMemberSchedulable(req: MemberOnHostRequest): Promise<{ cleared: boolean; evidence: string }> {
      return guard(async () =>
        clearMemberSchedulable((await clusterConnection(req.host.kube)).client, req.member),
      );
    },

    async planGateways(req: GatewayPlanRequest): Promise<GatewayPlan> {
      return guard(async () => {
        const loaded = await loadUpgradeConfig(req.input, registry);
        const plan = buildUpgradePlan(req.input.cluster, loaded, registry);
        const disable = plan.jobs
          .filter((j) => j.enabled && j.name !== 'gateway' && j.phases.includes('dynamic-upgrade'))
          .map((j) => j.name);
        if (req.gateways !== 'auto') return { gateways: req.gateways, disable };
        if (!plan.jobs.some((j) => j.name === 'gateway' && j.enabled)) return { gateways: [], disable };
        const store = await sharedStore(loaded.config.storage);
        const gateways = (await backedUpGateways(store, req.input.cluster)).map((g) => g.metadata.name ?? '');
        return { gateways: gateways.filter(Boolean), disable };
      });
    },

    async verifyGateway(req: { input: UpgradeClusterInput; gateway: string }): Promise<VerificationReport> {
      return guard(async () => {
        const loaded = await loadUpgradeConfig(req.input, registry);
        const store = await sharedStore(loaded.config.storage);
        const gw = (await backedUpGateways(store, req.input.cluster)).find(
          (g) => g.metadata.name === req.gateway,
        );
        if (!gw) {
          return {
            cluster: req.input.cluster,
            ok: false,
            checkedAt: new Date().toISOString(),
            findings: [
              {
                check: `gateway/${req.gateway}`,
                ok: false,
                evidence: `no v1 Gateway ${req.gateway} in the backup of ${req.input.cluster}`,
                fix: 'check the gateway name in the fleet file (the gateway job backs up the v1 Gateways in pre-upgrade)',
              },
            ],
          };
        }
        return verifyGatewayState((await clusterConnection(req.input.kube)).client, req.input.cluster, gw);
      });
    },

    /** Returns when an upgrade the fleet watches changes in a way it acts on (heartbeats meanwhile). */
    async observeUpgrades(req: ObserveRequest): Promise<Observation[]> {
      const client = deps.client;
      if (!client)
        throw new Error(
          'observeUpgrades needs a Temporal client: create the worker with createUpgradeWorker',
        );
      const ctx = Context.current();
      return guard(() =>
        observeUpgrades(client, req, {
          heartbeat: () => {
            ctx.heartbeat();
          },
          signal: ctx.cancellationSignal,
        }),
      );
    },

    /** The window's occurrence open at `now` or the next one (null: it never opens again). */
    async nextMaintenanceWindow(req: {
      window: MaintenanceWindow;
      now: number;
    }): Promise<WindowOccurrence | null> {
      return Promise.resolve(nextOccurrence(req.window, req.now));
    },
  };
}

/** The fleet activity interface the workflow proxies (type only). */
/**
 * What the fleet calls: its own activities and the verification of a cluster's upgrade
 * (`verifyCluster`, activities/checks.ts — the same check as upgradeCluster's last step).
 */
export type FleetActivities = ReturnType<typeof createFleetActivities> &
  Pick<ReturnType<typeof createCheckActivities>, 'verifyCluster'>;
