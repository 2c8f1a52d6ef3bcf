// Rollback of the gateway job: what can be put back from the backups. Not undone (docs/jobs/gateway.md):
// the uninstalled v3 helm releases (the v3 gateway controller re-installs them from the restored v1
// Gateways once it runs again) and the v2 Gateways (deleting them uninstalls the v4 gateways).
import {
  CustomResourceDefinitionResource,
  IngressResource,
  type CustomResourceDefinition,
  type Ingress,
} from '../../api/core.js';
import { GatewayV1Resource, PrometheusRuleResource } from '../../api/v3/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { waitForCrdEstablished } from '../../kube/crd.js';
import { NoKindError } from '../../kube/errors.js';
import type { KubeObject } from '../../kube/types.js';
import type { JobContext } from '../types.js';
import {
  GATEWAY_CRD,
  HTTP_NODEPORT_ANNOTATION,
  HTTPS_NODEPORT_ANNOTATION,
  KEYS,
  V1,
  type GatewayV1,
} from './constants.js';
import { v2Name } from './convert.js';
import { serves } from './upgrade.js';
import { forCreate, removePendingInstallPlan } from '../helpers.js';
import { loadBackup } from '../patterns.js';
import { storedItems } from './util.js';

/** Ingresses dynamic-upgrade bound to a gateway's class lose it again (only those that had none). */
async function unbindIngresses(ctx: JobContext, gateways: GatewayV1[]): Promise<void> {
  const before = await storedItems<Ingress>(ctx, KEYS.ingresses);
  if (!before) return;
  const classes = new Set(gateways.map(v2Name));
  let reverted = 0;
  for (const old of before) {
    if (old.spec?.ingressClassName) continue;
    const name = old.metadata.name ?? '';
    const ns = old.metadata.namespace;
    const current = await ctx.v4.tryGet(IngressResource, name, ns);
    const cls = current?.spec?.ingressClassName;
    if (!cls || !classes.has(cls)) continue;
    await ctx.v4.mutate(IngressResource, name, ns, (ing) => {
      if (ing.spec?.ingressClassName && classes.has(ing.spec.ingressClassName))
        delete ing.spec.ingressClassName;
    });
    reverted++;
  }
  ctx.logger.info(`removed the gateway ingress class from ${reverted} Ingresses`);
}

async function restorePrometheusRule(ctx: JobContext): Promise<void> {
  const rule = await loadBackup<KubeObject>(ctx, KEYS.prometheusRule, { takenIn: 'post-upgrade' });
  if (!rule) return;
  try {
    const { created } = await ctx.v3.createIfAbsent(PrometheusRuleResource, forCreate(rule));
    if (created) ctx.logger.info('PrometheusRule prometheus-ingress-rules restored');
  } catch (err) {
    if (!(err instanceof NoKindError)) throw err;
    ctx.logger.warn('PrometheusRules are not served: prometheus-ingress-rules not restored');
  }
}

/** The v1 Gateway CRD and Gateways, while the v2 CRD (same name) has not replaced the v1 one. */
async function restoreV1Gateways(ctx: JobContext, gateways: GatewayV1[]): Promise<void> {
  const crd = await ctx.v3.tryGet(CustomResourceDefinitionResource, GATEWAY_CRD);
  if (crd && !serves(crd, V1)) {
    ctx.logger.warn(
      `CRD ${GATEWAY_CRD} is the v2 one now: v1 Gateways cannot be restored next to it (see docs/jobs/gateway.md)`,
    );
    return;
  }
  if (!crd) {
    const backup = await loadBackup<CustomResourceDefinition>(ctx, KEYS.gatewayCrd);
    if (!backup) return;
    await ctx.v3.createIfAbsent(CustomResourceDefinitionResource, forCreate(backup));
    await waitForCrdEstablished(ctx.v3, GATEWAY_CRD, { reporter: ctx });
    ctx.logger.info(`CRD ${GATEWAY_CRD} (${V1}) restored`);
  }
  let restored = 0;
  for (const gw of gateways) {
    const copy = forCreate(gw);
    // The node-port annotations were ks-upgrade's bookkeeping: the original v1 spec goes back.
    const {
      [HTTP_NODEPORT_ANNOTATION]: _http,
      [HTTPS_NODEPORT_ANNOTATION]: _https,
      ...annotations
    } = copy.spec?.service?.annotations ?? {};
    if (copy.spec?.service?.annotations) copy.spec.service.annotations = annotations;
    if ((await ctx.v3.createIfAbsent(GatewayV1Resource, copy)).created) restored++;
  }
  ctx.logger.info(`restored ${restored} v1 Gateways`);
}

export async function rollbackGateway(ctx: JobContext, ref: ExtensionRef): Promise<void> {
  const gateways = (await storedItems<GatewayV1>(ctx, KEYS.gateways)) ?? [];
  await unbindIngresses(ctx, gateways);
  await restorePrometheusRule(ctx);
  await removePendingInstallPlan(ctx, ref.name);
  await restoreV1Gateways(ctx, gateways);
}
