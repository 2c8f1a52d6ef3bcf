// The `gateway` job (priority 90): KubeSphere v3 gateways (gateway.kubesphere.io/v1alpha1, one
// ingress-nginx helm release each) to the v4 gateway extension (v2alpha1 Gateways). pre-upgrade
// backs up, post-upgrade installs the extension and swaps the CRD, dynamic-upgrade moves one
// gateway at a time. Steps, keys, fixes and limits: docs/jobs/gateway.md.
import { IngressResource } from '../../api/core.js';
import { GatewayV1Resource } from '../../api/v3/index.js';
import type { DynamicOptions, ExtensionRef } from '../../config/types.js';
import { ValidationError } from '../../errors.js';
import { NoKindError } from '../../kube/errors.js';
import { DoneMarker, onHost } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { GATEWAY_CRD, JOB, KEYS, V3_RELEASE_SUFFIX, type GatewayV1 } from './constants.js';
import { v2Name } from './convert.js';
import { dynamicUpgrade } from './dynamic.js';
import { storedItems } from './util.js';
import { rollbackGateway } from './rollback.js';
import {
  createInstallPlan,
  ensureV2Crd,
  preUpgrade,
  removePrometheusRule,
  removeV1Gateways,
  syncChart,
} from './upgrade.js';

export { KEYS as GATEWAY_KEYS, type GatewayV1, type GatewayV2 } from './constants.js';
export { gatewayValues, toV2Gateway } from './convert.js';

/** `jobs.gateway.dynamicOptions`. */
export interface GatewayOptions {
  /** The gateway dynamic-upgrade moves (one per run, as `upgrade.sh gateway <name>`). */
  gatewayName?: string;
  /** Redo pre/post even though `gateway-done` is set (bool or the string "true"/"false"). */
  rerun: boolean;
  /** Bound of each wait (v1 CRD deletion, v2 CRD served, v4 helm release, uninstall). Default 300 s. */
  waitTimeoutMs: number;
}

const KNOWN = ['gatewayName', 'rerun', 'waitTimeoutSeconds'];

function parseBool(key: string, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new ValidationError(
    `jobs.gateway.dynamicOptions.${key} must be true or false, got ${JSON.stringify(value)}`,
    {
      hint: `e.g. ${key}: true (the string "true" is accepted too)`,
    },
  );
}

/** Parses and checks the options once, when the job is built (a bad option fails the plan). */
export function parseGatewayOptions(options: DynamicOptions): GatewayOptions {
  const unknown = Object.keys(options).filter((k) => !KNOWN.includes(k));
  if (unknown.length > 0) {
    throw new ValidationError(`jobs.gateway.dynamicOptions: unknown option(s) ${unknown.join(', ')}`, {
      hint: `the gateway job reads ${KNOWN.join(', ')}`,
    });
  }
  const name = options.gatewayName;
  if (name !== undefined && name !== null && typeof name !== 'string') {
    throw new ValidationError(
      `jobs.gateway.dynamicOptions.gatewayName must be a string, got ${JSON.stringify(name)}`,
      {
        hint: 'the name of one v1 Gateway, e.g. kubesphere-router-kubesphere-system',
      },
    );
  }
  const timeout = options.waitTimeoutSeconds ?? 300;
  const seconds = typeof timeout === 'string' ? Number(timeout) : timeout;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) {
    throw new ValidationError(
      `jobs.gateway.dynamicOptions.waitTimeoutSeconds must be a positive number, got ${JSON.stringify(timeout)}`,
      { hint: 'seconds each wait may take, e.g. 300' },
    );
  }
  return {
    ...(typeof name === 'string' && name !== '' ? { gatewayName: name } : {}),
    rerun: parseBool('rerun', options.rerun),
    waitTimeoutMs: seconds * 1000,
  };
}

class GatewayJob implements UpgradeJob {
  constructor(
    private readonly options: GatewayOptions,
    private readonly ref: ExtensionRef,
  ) {}

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    let gateways: GatewayV1[] = [];
    try {
      gateways = await ctx.v3.listAll(GatewayV1Resource);
    } catch (err) {
      if (!(err instanceof NoKindError)) throw err;
    }
    const ingresses = await ctx.v3.listAll(IngressResource);
    const host = await onHost(ctx);
    const actions: PlannedAction[] = [
      {
        phase: 'pre-upgrade',
        action: 'create (from the core backup of kubesphere.yaml)',
        target: 'ConfigMap kubesphere-system/kubesphere-gateway-backup-config',
      },
      { phase: 'pre-upgrade', action: `back up ${ingresses.length} Ingresses`, target: KEYS.ingresses },
      { phase: 'pre-upgrade', action: `back up ${gateways.length} v1 Gateways`, target: KEYS.gateways },
      { phase: 'pre-upgrade', action: 'back up Nginx CRs and the v1 CRDs', target: KEYS.nginxes },
      {
        phase: 'post-upgrade',
        action: 'back up and delete',
        target: 'PrometheusRule kubesphere-monitoring-system/prometheus-ingress-rules',
      },
    ];
    if (host)
      actions.push({ phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` });
    actions.push(
      ...gateways.map((g) => ({
        phase: 'post-upgrade' as const,
        action: 'delete (finalizers cleared)',
        target: `Gateway ${g.metadata.namespace ?? ''}/${g.metadata.name ?? ''} (v1alpha1)`,
      })),
      {
        phase: 'post-upgrade',
        action: 'delete, then apply the extension chart CRDs',
        target: `CRD ${GATEWAY_CRD}`,
      },
    );
    if (host) {
      actions.push({ phase: 'post-upgrade', action: 'copy the extension chart to every cluster' });
    }
    for (const g of gateways) {
      const ns = g.metadata.namespace ?? '';
      actions.push(
        {
          phase: 'dynamic-upgrade',
          action: 'uninstall helm release',
          target: `${ns}/${g.metadata.name ?? ''}${V3_RELEASE_SUFFIX}`,
        },
        { phase: 'dynamic-upgrade', action: 'create', target: `Gateway ${ns}/${v2Name(g)} (v2alpha1)` },
        { phase: 'dynamic-upgrade', action: `bind Ingresses without a class to ${v2Name(g)}` },
      );
    }
    return actions;
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    if (await new DoneMarker(ctx).check()) return;
    await preUpgrade(ctx);
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    // Read first: a missing backup is an error before anything changes. It names the v1 Gateways
    // the live list may no longer show (their finalizers must be cleared too).
    const backedUp = (await storedItems<GatewayV1>(ctx, KEYS.gateways)) ?? [];
    const ref = structuredClone(this.ref);
    const host = await onHost(ctx);
    await removePrometheusRule(ctx);
    if (host) await createInstallPlan(ctx, ref);
    await removeV1Gateways(ctx, this.options.waitTimeoutMs, backedUp);
    await ensureV2Crd(ctx, ref, this.options.waitTimeoutMs);
    if (host) await syncChart(ctx, ref);
    await marker.mark();
  }

  async dynamicUpgrade(ctx: JobContext): Promise<void> {
    await dynamicUpgrade(ctx, this.options.gatewayName, this.options.waitTimeoutMs);
  }

  async rollback(ctx: JobContext): Promise<void> {
    await rollbackGateway(ctx, this.ref);
  }
}

export const gatewayJobFactory: JobFactory = {
  name: JOB,
  description: 'KubeSphere v3 gateways (v1alpha1, ingress-nginx releases) to the v4 gateway extension',
  create(options, extensionRef) {
    const parsed = parseGatewayOptions(options);
    if (!extensionRef?.version) {
      throw new ValidationError('jobs.gateway.extensionRef.version is required', {
        hint: 'e.g. extensionRef: { name: gateway, version: 1.0.2 } (the sample config.yaml has it)',
      });
    }
    return new GatewayJob(parsed, { ...extensionRef, name: extensionRef.name || JOB });
  },
};
