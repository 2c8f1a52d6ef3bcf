// dynamic-upgrade of one gateway (reference §4.7): swap the v3 nginx release for a v2 Gateway,
// wait for the v4 controller's helm release, bind the gateway's Ingresses to its ingress class.
// Fixed: an unknown gateway fails before anything is uninstalled, the v2 Gateway is created or
// brought to the desired spec (re-runs work), workspace gateways need no `workspace-<ws>`
// namespace, and Ingress update errors fail the step instead of being swallowed.
import { IngressResource, NamespaceResource, type Ingress } from '../../api/core.js';
import { GatewayResource } from '../../api/v4/index.js';
import { KsUpgradeError, ValidationError } from '../../errors.js';
import { releaseHistory } from '../../helm/release.js';
import { uninstallRelease } from '../../helm/uninstall.js';
import type { JobContext } from '../types.js';
import {
  INGRESS_NGINX_APP_VERSION,
  KEYS,
  V3_RELEASE_SUFFIX,
  WORKSPACE_LABEL,
  type GatewayV1,
  type GatewayV2,
} from './constants.js';
import { isClusterGateway, isWorkspaceGateway, projectOf, toV2Gateway, v2Name } from './convert.js';
import { readGatewayConfig } from './upgrade.js';
import { notYet, waitFor } from '../../util/wait.js';
import { storedItems } from './util.js';

/** The backed-up v1 Gateway `name`, or an error saying what exists. */
export async function findBackedUpGateway(ctx: JobContext, name: string | undefined): Promise<GatewayV1> {
  if (!name) {
    throw new ValidationError('You need to specify the gateway name to upgrade', {
      hint: 'set jobs.gateway.dynamicOptions.gatewayName to one gateway (e.g. kubesphere-router-kubesphere-system)',
    });
  }
  const gateways = await storedItems<GatewayV1>(ctx, KEYS.gateways);
  if (gateways === undefined) {
    throw new KsUpgradeError(`no v1 Gateways were backed up on cluster ${ctx.cluster.name}`, {
      hint: `pre-upgrade recorded that gateway.kubesphere.io/v1alpha1 Gateways were not served on ${ctx.cluster.name}: there is no v1 gateway to move here`,
    });
  }
  const gw = gateways.find((g) => g.metadata.name === name);
  if (!gw) {
    const known = gateways.map((g) => g.metadata.name ?? '').join(', ') || 'none';
    throw new KsUpgradeError(`failed to find gateway ${name}`, {
      hint: `gateways backed up on ${ctx.cluster.name}: ${known}`,
    });
  }
  return gw;
}

/** Creates the v2 Gateway, or brings an existing one to the desired spec, labels and annotations. */
async function applyV2Gateway(
  ctx: JobContext,
  desired: GatewayV2,
): Promise<'created' | 'updated' | 'unchanged'> {
  const { created } = await ctx.v4.createIfAbsent(GatewayResource, desired);
  if (created) return 'created';
  const { changed } = await ctx.v4.mutate(
    GatewayResource,
    desired.metadata.name ?? '',
    desired.metadata.namespace,
    (obj) => {
      const gw = obj as GatewayV2;
      gw.metadata.labels = { ...gw.metadata.labels, ...desired.metadata.labels };
      if (desired.metadata.annotations) {
        gw.metadata.annotations = { ...gw.metadata.annotations, ...desired.metadata.annotations };
      }
      gw.spec = { ...gw.spec, ...desired.spec };
    },
  );
  return changed ? 'updated' : 'unchanged';
}

/** The workspace label of a project gateway's namespace (missing namespace: a warning, no label). */
async function projectWorkspace(ctx: JobContext, gw: GatewayV1): Promise<string | undefined> {
  if (isClusterGateway(gw) || isWorkspaceGateway(gw)) return undefined;
  const project = projectOf(gw);
  const ns = await ctx.v4.tryGet(NamespaceResource, project);
  if (!ns) {
    ctx.logger.warn(
      `namespace ${project} of gateway ${gw.metadata.name ?? ''} not found: no workspace label`,
    );
    return undefined;
  }
  return ns.metadata.labels?.[WORKSPACE_LABEL] || undefined;
}

async function namespacesMatching(ctx: JobContext, selector: string): Promise<string[]> {
  return (await ctx.v4.listAll(NamespaceResource, { labelSelector: selector })).map(
    (n) => n.metadata.name ?? '',
  );
}

/**
 * The Ingresses a gateway serves: its project; the namespaces its workspace selector matches; or,
 * for the cluster gateway, every namespace no project or workspace gateway serves (the original
 * took all, so upgrading the cluster gateway first captured the projects' Ingresses).
 */
async function servedIngresses(ctx: JobContext, gw: GatewayV1, all: GatewayV1[]): Promise<Ingress[]> {
  const scope = gw.spec?.controller?.scope ?? {};
  if (scope.enabled) {
    if (!scope.namespace) return [];
    return ctx.v4.listAll(IngressResource, { namespace: scope.namespace });
  }
  if (scope.namespaceSelector) {
    const result: Ingress[] = [];
    for (const ns of await namespacesMatching(ctx, scope.namespaceSelector)) {
      result.push(...(await ctx.v4.listAll(IngressResource, { namespace: ns })));
    }
    return result;
  }
  const taken = new Set<string>();
  for (const other of all) {
    if (other.metadata.name === gw.metadata.name) continue;
    const s = other.spec?.controller?.scope ?? {};
    if (s.enabled && s.namespace) taken.add(s.namespace);
    else if (!s.enabled && s.namespaceSelector) {
      for (const ns of await namespacesMatching(ctx, s.namespaceSelector)) taken.add(ns);
    }
  }
  return (await ctx.v4.listAll(IngressResource)).filter((i) => !taken.has(i.metadata.namespace ?? ''));
}

/** Step 5: Ingresses without an ingress class get the gateway's; returns the names bound. */
export async function bindIngresses(ctx: JobContext, gw: GatewayV1, all: GatewayV1[]): Promise<string[]> {
  const className = v2Name(gw);
  const bound: string[] = [];
  for (const ingress of await servedIngresses(ctx, gw, all)) {
    if (ingress.spec?.ingressClassName) continue;
    ctx.signal.throwIfAborted();
    const { changed } = await ctx.v4.mutate(
      IngressResource,
      ingress.metadata.name ?? '',
      ingress.metadata.namespace,
      (obj) => {
        if (!obj.spec?.ingressClassName) obj.spec = { ...obj.spec, ingressClassName: className };
      },
    );
    if (changed) bound.push(`${ingress.metadata.namespace ?? ''}/${ingress.metadata.name ?? ''}`);
  }
  ctx.logger.info(`bound ${bound.length} Ingresses to ingress class ${className}`, { ingresses: bound });
  return bound;
}

export async function dynamicUpgrade(
  ctx: JobContext,
  gatewayName: string | undefined,
  timeoutMs: number,
): Promise<void> {
  const gw = await findBackedUpGateway(ctx, gatewayName);
  const all = (await storedItems<GatewayV1>(ctx, KEYS.gateways)) ?? [];
  const name = gw.metadata.name ?? '';
  const namespace = gw.metadata.namespace ?? '';
  const release = v2Name(gw);

  ctx.heartbeat({ step: 'uninstall v3 release', message: `${namespace}/${name}${V3_RELEASE_SUFFIX}` });
  const removed = await uninstallRelease(ctx.kube, namespace, `${name}${V3_RELEASE_SUFFIX}`, {
    wait: true,
    timeoutMs,
    reporter: ctx,
  });
  ctx.logger.info(
    removed.found
      ? `helm release ${namespace}/${name}${V3_RELEASE_SUFFIX} uninstalled`
      : `helm release ${namespace}/${name}${V3_RELEASE_SUFFIX} not found (already uninstalled)`,
    { deleted: removed.deleted.length, kept: removed.kept },
  );

  const config = await readGatewayConfig(ctx);
  const repository = typeof config.repository === 'string' ? config.repository : undefined;
  const desired = toV2Gateway(gw, repository, await projectWorkspace(ctx, gw));
  const action = await applyV2Gateway(ctx, desired);
  ctx.logger.info(`Gateway ${describeV2(desired)}: ${action}`);

  await waitFor(
    {
      what: `helm release ${namespace}/${release} of the v4 gateway`,
      timeoutMs,
      check: async () => {
        const latest = (await releaseHistory(ctx.kube, namespace, release))[0]?.release;
        if (!latest) return notYet('no release yet');
        if (
          latest.chart.metadata.appVersion === INGRESS_NGINX_APP_VERSION ||
          latest.info.status === 'deployed'
        )
          return true;
        return notYet(`release is ${latest.info.status}`);
      },
      hint: `the gateway extension's controller installs it from Gateway ${namespace}/${release}: check that the gateway extension is installed (InstallPlan gateway) and its controller logs, then retry`,
    },
    ctx,
  );
  await bindIngresses(ctx, gw, all);
}

function describeV2(gw: GatewayV2): string {
  return `${gw.metadata.namespace ?? ''}/${gw.metadata.name ?? ''} (v2alpha1)`;
}
