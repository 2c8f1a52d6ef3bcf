// pre-upgrade and post-upgrade of the gateway job (reference §4.7), with the original's bugs fixed:
// post works when the v1 Gateway CRD never existed, the v2 CRD wait is bounded and fails with a
// hint (never a process exit), a re-run never deletes the v2 Gateway CRD, and the user's extension
// config wins over the values derived from kubesphere.yaml.
import * as yaml from 'js-yaml';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  IngressResource,
  ServiceResource,
  type CustomResourceDefinition,
} from '../../api/core.js';
import { GatewayV1Resource, NginxResource, PrometheusRuleResource } from '../../api/v3/index.js';
import { GatewayResource } from '../../api/v4/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { KsUpgradeError } from '../../errors.js';
import { applyExtensionCrds, syncExtensionChart } from '../../extensions/charts.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { NoKindError } from '../../kube/errors.js';
import { listClusters } from '../../kubesphere/clusters.js';
import { BackupKeyNotFound } from '../../store/index.js';
import { isRecord } from '../../util/object.js';
import { backupOnce, extensionValues, placementFromClusters, setIfAbsent, valuesText } from '../patterns.js';
import type { JobContext } from '../types.js';
import {
  BACKUP_CONFIGMAP,
  BACKUP_CONFIGMAP_KEY,
  GATEWAY_CRD,
  HTTP_NODEPORT_ANNOTATION,
  HTTPS_NODEPORT_ANNOTATION,
  KEYS,
  KUBESPHERE_CONFIG_KEY,
  KUBESPHERE_NAMESPACE,
  MONITORING_NAMESPACE,
  NGINX_CRD,
  PROMETHEUS_RULE,
  V1,
  V2,
  type GatewayV1,
  type StoredList,
} from './constants.js';
import { asList } from '../helpers.js';
import { notYet, waitFor } from '../../util/wait.js';

/** The `gateway` section of the v3 kubesphere.yaml, as pre-upgrade copied it. */
export interface GatewayConfig {
  namespace?: string;
  repository?: string;
  [key: string]: unknown;
}

export function serves(crd: CustomResourceDefinition, version: string): boolean {
  return crd.spec.versions.some((v) => v.name === version && v.served);
}

/**
 * Step 1: copy the `gateway` section of kubesphere.yaml (the shared `kubesphere-config` backup of
 * the core job) into ConfigMap kubesphere-system/kubesphere-gateway-backup-config, once.
 */
export async function ensureBackupConfigMap(ctx: JobContext): Promise<void> {
  if (await ctx.v3.tryGet(ConfigMapResource, BACKUP_CONFIGMAP, KUBESPHERE_NAMESPACE)) return;
  let text: string;
  try {
    text = Buffer.from(await ctx.store.shared().loadRaw(KUBESPHERE_CONFIG_KEY)).toString('utf8');
  } catch (err) {
    if (!(err instanceof BackupKeyNotFound)) throw err;
    throw new KsUpgradeError('kubesphere-config not found in backup, please enable core upgrade job', {
      hint: 'the core job backs up kubesphere.yaml in its pre-upgrade: enable jobs.core and run pre-upgrade again',
    });
  }
  const parsed = yaml.load(text);
  const gateway = isRecord(parsed) ? parsed.gateway : undefined;
  if (!isRecord(gateway)) {
    throw new KsUpgradeError('failed to get gateway config from kubesphere.yaml', {
      hint: 'the v3 kubesphere.yaml has no `gateway` section; check ConfigMap kubesphere-system/kubesphere-config',
    });
  }
  await ctx.v3.createIfAbsent(ConfigMapResource, {
    metadata: { name: BACKUP_CONFIGMAP, namespace: KUBESPHERE_NAMESPACE },
    data: { [BACKUP_CONFIGMAP_KEY]: yaml.dump(gateway) },
  });
  ctx.logger.info(`ConfigMap ${KUBESPHERE_NAMESPACE}/${BACKUP_CONFIGMAP} created`);
}

/** The gateway section pre-upgrade saved; an error naming the missing step when absent. */
export async function readGatewayConfig(ctx: JobContext): Promise<GatewayConfig> {
  const cm = await ctx.v3.tryGet(ConfigMapResource, BACKUP_CONFIGMAP, KUBESPHERE_NAMESPACE);
  const text = cm?.data?.[BACKUP_CONFIGMAP_KEY];
  if (text === undefined) {
    throw new KsUpgradeError(
      `failed to get gateway config from configmap ${KUBESPHERE_NAMESPACE}/${BACKUP_CONFIGMAP}`,
      { hint: 'run the gateway pre-upgrade on this cluster first: it creates that ConfigMap' },
    );
  }
  const parsed = yaml.load(text);
  return isRecord(parsed) ? parsed : {};
}

/** The v1 Gateways with the node ports of their NodePort Services recorded as annotations. */
async function readV1Gateways(ctx: JobContext): Promise<StoredList<GatewayV1> | undefined> {
  let gateways: GatewayV1[];
  try {
    gateways = await ctx.v3.listAll(GatewayV1Resource);
  } catch (err) {
    if (!(err instanceof NoKindError)) throw err;
    ctx.logger.info('gateway.kubesphere.io/v1alpha1 Gateways are not served: no v1 gateways to back up');
    return undefined;
  }
  for (const gw of gateways) {
    if (gw.spec?.service?.type !== 'NodePort') continue;
    const name = gw.metadata.name ?? '';
    const svc = await ctx.v3.tryGet(ServiceResource, name, gw.metadata.namespace);
    if (!svc) {
      ctx.logger.warn(`Service ${gw.metadata.namespace ?? ''}/${name} of gateway ${name} not found`);
      continue;
    }
    if (svc.spec?.type !== 'NodePort') continue;
    const annotations = { ...gw.spec.service.annotations };
    for (const port of svc.spec.ports ?? []) {
      if (port.nodePort === undefined) continue;
      if (port.name === 'http') annotations[HTTP_NODEPORT_ANNOTATION] = String(port.nodePort);
      if (port.name === 'https') annotations[HTTPS_NODEPORT_ANNOTATION] = String(port.nodePort);
    }
    gw.spec.service.annotations = annotations;
  }
  return asList('gateway.kubesphere.io/v1alpha1', 'Gateway', gateways);
}

export async function preUpgrade(ctx: JobContext): Promise<void> {
  await ensureBackupConfigMap(ctx);
  await backupOnce(ctx, KEYS.ingresses, async () =>
    asList('networking.k8s.io/v1', 'Ingress', await ctx.v3.listAll(IngressResource)),
  );
  await backupOnce(ctx, KEYS.gateways, () => readV1Gateways(ctx), {
    absent: `gateway.kubesphere.io/${V1} Gateways are not served`,
  });
  await backupOnce(
    ctx,
    KEYS.nginxes,
    async () => {
      try {
        return asList('gateway.kubesphere.io/v1alpha1', 'Nginx', await ctx.v3.listAll(NginxResource));
      } catch (err) {
        if (err instanceof NoKindError) return undefined;
        throw err;
      }
    },
    { absent: `gateway.kubesphere.io/${V1} Nginxes are not served` },
  );
  // Only the v1 Gateway CRD is worth keeping (a re-run after post-upgrade finds the v2 one).
  await backupOnce(
    ctx,
    KEYS.gatewayCrd,
    async () => {
      const crd = await ctx.v3.tryGet(CustomResourceDefinitionResource, GATEWAY_CRD);
      return crd && serves(crd, V1) ? crd : undefined;
    },
    { absent: `no CRD ${GATEWAY_CRD} serving ${V1}` },
  );
  await backupOnce(ctx, KEYS.nginxCrd, () => ctx.v3.tryGet(CustomResourceDefinitionResource, NGINX_CRD), {
    absent: `CRD ${NGINX_CRD} not found`,
  });
}

/** Post step 1: back up and delete the v3 ingress PrometheusRule (absent or unserved: nothing to do). */
export async function removePrometheusRule(ctx: JobContext): Promise<void> {
  const rule = await backupOnce(
    ctx,
    KEYS.prometheusRule,
    () => ctx.v3.tryGet(PrometheusRuleResource, PROMETHEUS_RULE, MONITORING_NAMESPACE),
    { absent: `PrometheusRule ${MONITORING_NAMESPACE}/${PROMETHEUS_RULE} not found (or not served)` },
  );
  if (!rule) return;
  // Always, not only when the backup was just written: a crash in between must not leave it.
  if (await ctx.v3.delete(PrometheusRuleResource, PROMETHEUS_RULE, MONITORING_NAMESPACE)) {
    ctx.logger.info(`PrometheusRule ${MONITORING_NAMESPACE}/${PROMETHEUS_RULE} deleted`);
  }
}

/** The extensionRef of the InstallPlan: the user's values win over those from kubesphere.yaml. */
export async function installPlanRef(ctx: JobContext, base: ExtensionRef): Promise<ExtensionRef> {
  const ref = structuredClone(base);
  const config = await readGatewayConfig(ctx);
  const values = extensionValues(ref);
  if (typeof config.namespace === 'string') {
    setIfAbsent(values, 'backend.config.gateway.namespace', config.namespace);
  }
  if (typeof config.repository === 'string') {
    setIfAbsent(
      values,
      'backend.config.gateway.valuesOverride.controller.image.repository',
      config.repository,
    );
  }
  setIfAbsent(values, 'backend.upgrade.enabled', true);
  const text = valuesText(values);
  if (text === undefined) delete ref.config;
  else ref.config = text;
  // GenerateClusterScheduling with "always enabled": every cluster, unless placement is configured.
  const scheduling = await placementFromClusters(ctx, ref, () => true);
  if (scheduling) ref.clusterScheduling = scheduling;
  return ref;
}

export async function createInstallPlan(ctx: JobContext, base: ExtensionRef): Promise<void> {
  const ref = await installPlanRef(ctx, base);
  const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
  ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
}

/**
 * Post step 3: remove the v1 Gateways (finalizers cleared: their controller is gone) and the v1
 * Gateway CRD, then wait until v1alpha1 is no longer served. Nothing to do when the CRD never
 * existed (the original failed here) or is already the v2 one (a re-run must not delete it).
 */
export async function removeV1Gateways(
  ctx: JobContext,
  timeoutMs: number,
  stored: readonly GatewayV1[],
): Promise<void> {
  const crd = await ctx.v4.tryGet(CustomResourceDefinitionResource, GATEWAY_CRD);
  if (!crd) {
    ctx.logger.info(`CRD ${GATEWAY_CRD} not found: no v1 gateways to remove`);
    return;
  }
  if (!serves(crd, V1)) {
    ctx.logger.info(`CRD ${GATEWAY_CRD} no longer serves ${V1}: v1 gateways already removed`);
    return;
  }
  if (serves(crd, V2)) {
    throw new KsUpgradeError(`CRD ${GATEWAY_CRD} serves both ${V1} and ${V2}`, {
      hint: `deleting it would delete the v2 Gateways too; migrate or delete the ${V1} objects, drop ${V1} from the CRD, then retry`,
    });
  }
  let live: GatewayV1[] = [];
  try {
    live = await ctx.v3.listAll(GatewayV1Resource);
  } catch (err) {
    if (!(err instanceof NoKindError)) throw err;
  }
  const targets = new Map<string, [string, string]>();
  for (const gw of [...stored, ...live]) {
    const key = `${gw.metadata.namespace ?? ''}/${gw.metadata.name ?? ''}`;
    targets.set(key, [gw.metadata.namespace ?? '', gw.metadata.name ?? '']);
  }
  for (const [ns, name] of targets.values()) {
    ctx.signal.throwIfAborted();
    await ctx.v3.delete(GatewayV1Resource, name, ns, { clearFinalizers: true });
  }
  await ctx.v4.delete(CustomResourceDefinitionResource, GATEWAY_CRD);
  ctx.logger.info(`deleted ${targets.size} v1 Gateways and CRD ${GATEWAY_CRD}`);
  await waitFor(
    {
      what: `CRD ${GATEWAY_CRD} (${V1}) to be deleted`,
      timeoutMs,
      check: async () => {
        const now = await ctx.v4.tryGet(CustomResourceDefinitionResource, GATEWAY_CRD);
        return !now || !serves(now, V1) ? true : notYet(`it still serves ${V1} (being deleted)`);
      },
      hint: `check 'kubectl get crd ${GATEWAY_CRD} -o yaml' (status.conditions) and remove finalizers from remaining ${V1} Gateways, then retry the step`,
    },
    ctx,
  );
}

/**
 * Post steps 4–5: apply the extension chart's CRDs when the Gateway CRD is absent, then wait until
 * v2alpha1 Gateways are served — bounded, an error with a hint on timeout (the original exited the
 * process after 5 minutes).
 */
export async function ensureV2Crd(ctx: JobContext, ref: ExtensionRef, timeoutMs: number): Promise<void> {
  if (!(await ctx.v4.tryGet(CustomResourceDefinitionResource, GATEWAY_CRD))) {
    const applied = await applyExtensionCrds(ctx.v4, ref, { force: false, reporter: ctx });
    ctx.logger.info(`applied the CRDs of chart ${ref.name}-${ref.version}: ${applied.join(', ') || 'none'}`);
  }
  await waitFor(
    {
      what: `gateway.kubesphere.io/${V2} Gateways to be served`,
      timeoutMs,
      check: async () => {
        try {
          await ctx.v4.listPage(GatewayResource, { pageSize: 1 });
          return true;
        } catch (err) {
          if (err instanceof NoKindError) return notYet(`gateways.gateway.kubesphere.io/${V2} is not served`);
          throw err;
        }
      },
      hint: `the chart of ${ref.name}-${ref.version} (ConfigMap ${KUBESPHERE_NAMESPACE}/extension-${ref.name}-${ref.version}-chart or the museum) must hold the ${V2} Gateway CRD; on a member, upgrade the host first (it copies the chart), then retry`,
    },
    ctx,
  );
}

/** Post step 6 (host): copy the extension chart to every cluster for their own post-upgrade. */
export async function syncChart(ctx: JobContext, ref: ExtensionRef): Promise<void> {
  const result = await syncExtensionChart(ctx.kube, ref, await listClusters(ctx.kube));
  ctx.logger.info(`chart ${ref.name}-${ref.version} copied`, result);
}
