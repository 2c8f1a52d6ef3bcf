// The v1alpha1 → v2alpha1 Gateway conversion of dynamic-upgrade (reference §4.7 step 3). The
// original rendered a copy of the whole ingress-nginx values file; ks-upgrade writes only the values
// that come from the v1 Gateway (and the few the template fixed), the chart's defaults do the rest.
import {
  CONTROLLER_IMAGE_TAG,
  GATEWAY_TYPE_LABEL,
  HTTP_NODEPORT_ANNOTATION,
  HTTPS_NODEPORT_ANNOTATION,
  NEW_CLUSTER_GATEWAY,
  OLD_CLUSTER_GATEWAY,
  ROUTER_PREFIX,
  TRACING_ANNOTATION,
  V2_APP_VERSION,
  WORKSPACE_GATEWAY_PREFIX,
  WORKSPACE_LABEL,
  type GatewayV1,
  type GatewayV2,
} from './constants.js';

/**
 * The cluster gateway: labelled `kubesphere.io/gateway-type: cluster` (what the original's release
 * and object naming looked at) or named `kubesphere-router-kubesphere-system` (what its type label
 * looked at). ks-upgrade uses one rule for both, so the two can never disagree.
 */
export function isClusterGateway(gw: GatewayV1): boolean {
  return gw.metadata.labels?.[GATEWAY_TYPE_LABEL] === 'cluster' || gw.metadata.name === OLD_CLUSTER_GATEWAY;
}

export function isWorkspaceGateway(gw: GatewayV1): boolean {
  return (gw.metadata.name ?? '').startsWith(WORKSPACE_GATEWAY_PREFIX);
}

/** Name of the v2 Gateway, of its helm release and of its ingress class. */
export function v2Name(gw: GatewayV1): string {
  return isClusterGateway(gw) ? NEW_CLUSTER_GATEWAY : (gw.metadata.name ?? '');
}

/**
 * The project a project gateway serves: its scope namespace, else its name without the
 * `kubesphere-router-` prefix (the original's only rule).
 */
export function projectOf(gw: GatewayV1): string {
  const scoped = gw.spec?.controller?.scope?.namespace;
  return scoped || (gw.metadata.name ?? '').replace(ROUTER_PREFIX, '');
}

function nodePort(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** `spec.values` of the v2 Gateway: the ingress-nginx values derived from the v1 spec. */
export function gatewayValues(gw: GatewayV1, repository: string | undefined): Record<string, unknown> {
  const name = v2Name(gw);
  const controller = gw.spec?.controller ?? {};
  const deployment = gw.spec?.deployment ?? {};
  const service = gw.spec?.service ?? {};
  const serviceType = service.type ?? 'NodePort';
  // The node-port annotations are ks-upgrade's own bookkeeping (pre-upgrade): values, not annotations.
  const {
    [HTTP_NODEPORT_ANNOTATION]: http,
    [HTTPS_NODEPORT_ANNOTATION]: https,
    ...serviceAnnotations
  } = service.annotations ?? {};
  const nodePorts: Record<string, number> = {};
  if (serviceType === 'NodePort') {
    const h = nodePort(http);
    const s = nodePort(https);
    if (h !== undefined) nodePorts.http = h;
    if (s !== undefined) nodePorts.https = s;
  }
  return {
    fullnameOverride: name,
    controller: {
      image: {
        ...(repository ? { repository } : {}),
        tag: CONTROLLER_IMAGE_TAG,
      },
      config: controller.config ?? {},
      electionID: name,
      ingressClassResource: {
        name,
        enabled: true,
        default: false,
        controllerValue: 'k8s.io/ingress-nginx',
      },
      ingressClass: name,
      integrateKubeSphere: {
        scope: {
          enabled: controller.scope?.enabled ?? false,
          namespace: controller.scope?.namespace ?? '',
          namespaceSelector: controller.scope?.namespaceSelector ?? '',
        },
        tracing: deployment.annotations?.[TRACING_ANNOTATION] === 'true',
      },
      publishService: { enabled: serviceType === 'LoadBalancer' },
      replicaCount: deployment.replicas ?? controller.replicas ?? 1,
      resources: deployment.resources ?? {},
      ...(deployment.tolerations !== undefined ? { tolerations: deployment.tolerations } : {}),
      ...(deployment.affinity !== undefined ? { affinity: deployment.affinity } : {}),
      service: {
        type: serviceType,
        annotations: serviceAnnotations,
        ...(Object.keys(nodePorts).length > 0 ? { nodePorts } : {}),
      },
    },
    tcp: controller.tcp ?? {},
    udp: controller.udp ?? {},
  };
}

/**
 * The v2 Gateway for a v1 Gateway. `projectWorkspace` is the `kubesphere.io/workspace` label of the
 * project's namespace (project gateways only; undefined when the namespace has none or is gone).
 */
export function toV2Gateway(
  gw: GatewayV1,
  repository: string | undefined,
  projectWorkspace: string | undefined,
): GatewayV2 {
  const cluster = isClusterGateway(gw);
  const labels: Record<string, string> = {
    ...gw.metadata.labels,
    // As the original: everything that is not the cluster gateway is typed `project`.
    [GATEWAY_TYPE_LABEL]: cluster ? 'cluster' : 'project',
  };
  if (!cluster && isWorkspaceGateway(gw)) {
    labels[WORKSPACE_LABEL] = (gw.metadata.name ?? '').slice(WORKSPACE_GATEWAY_PREFIX.length);
  } else if (!cluster && projectWorkspace) {
    labels[WORKSPACE_LABEL] = projectWorkspace;
  }
  return {
    apiVersion: 'gateway.kubesphere.io/v2alpha1',
    kind: 'Gateway',
    metadata: {
      name: v2Name(gw),
      ...(gw.metadata.namespace ? { namespace: gw.metadata.namespace } : {}),
      labels,
      ...(gw.metadata.annotations ? { annotations: { ...gw.metadata.annotations } } : {}),
    },
    spec: { appVersion: V2_APP_VERSION, values: gatewayValues(gw, repository) },
  };
}
