// Names the gateway job shares with the original tool (reference §4.7, Appendix A): store keys,
// object names, labels and the versions of the v4 gateway chart.
import type { KubeObject } from '../../kube/types.js';

export const JOB = 'gateway';

/** Store keys (the original's, inside the job's scope). */
export const KEYS = {
  ingresses: 'gateway-ingress-list',
  gateways: 'gateway-gateway-cr-list',
  nginxes: 'gateway-nginx-cr-list',
  gatewayCrd: 'gateway-gateways.gateway.kubesphere.io',
  nginxCrd: 'gateway-nginxes.gateway.kubesphere.io',
  prometheusRule: 'gateway-prometheus-ingress-rules',
} as const;

/** The shared key core writes in pre-upgrade: the v3 kubesphere.yaml. */
export const KUBESPHERE_CONFIG_KEY = 'kubesphere-config';

export const KUBESPHERE_NAMESPACE = 'kubesphere-system';
export const MONITORING_NAMESPACE = 'kubesphere-monitoring-system';
/** Where pre-upgrade leaves the v3 `gateway` section of kubesphere.yaml for post and dynamic. */
export const BACKUP_CONFIGMAP = 'kubesphere-gateway-backup-config';
export const BACKUP_CONFIGMAP_KEY = 'kubesphere.yaml';
export const PROMETHEUS_RULE = 'prometheus-ingress-rules';

export const GATEWAY_CRD = 'gateways.gateway.kubesphere.io';
export const NGINX_CRD = 'nginxes.gateway.kubesphere.io';
export const V1 = 'v1alpha1';
export const V2 = 'v2alpha1';

/** `spec.appVersion` of every v2 Gateway the job creates. */
export const V2_APP_VERSION = 'kubesphere-nginx-ingress-4.12.1';
/** appVersion of the ingress-nginx chart the v4 gateway controller installs. */
export const INGRESS_NGINX_APP_VERSION = '1.12.1';
/** Controller image tag the original's values template hard-codes. */
export const CONTROLLER_IMAGE_TAG = 'v1.4.0';

export const ROUTER_PREFIX = 'kubesphere-router-';
export const WORKSPACE_GATEWAY_PREFIX = `${ROUTER_PREFIX}workspace-`;
export const OLD_CLUSTER_GATEWAY = `${ROUTER_PREFIX}kubesphere-system`;
export const NEW_CLUSTER_GATEWAY = `${ROUTER_PREFIX}cluster`;
/** The v3 helm release of a gateway is `<gateway>-ingress`. */
export const V3_RELEASE_SUFFIX = '-ingress';

export const GATEWAY_TYPE_LABEL = 'kubesphere.io/gateway-type';
export const WORKSPACE_LABEL = 'kubesphere.io/workspace';
export const HTTP_NODEPORT_ANNOTATION = 'gateway.kubesphere.io/http-nodeport';
export const HTTPS_NODEPORT_ANNOTATION = 'gateway.kubesphere.io/https-nodeport';
export const TRACING_ANNOTATION = 'servicemesh.kubesphere.io/enabled';

/** A v1alpha1 Gateway, the fields the job reads (everything else passes through). */
export interface GatewayV1 extends KubeObject {
  spec?: {
    controller?: {
      replicas?: number;
      annotations?: Record<string, string>;
      config?: Record<string, string>;
      scope?: { enabled?: boolean; namespace?: string; namespaceSelector?: string };
      tcp?: Record<string, string>;
      udp?: Record<string, string>;
    };
    service?: { type?: string; annotations?: Record<string, string> };
    deployment?: {
      annotations?: Record<string, string>;
      replicas?: number;
      resources?: unknown;
      tolerations?: unknown;
      affinity?: unknown;
    };
  };
}

/** A v2alpha1 Gateway as the job writes it. */
export interface GatewayV2 extends KubeObject {
  spec?: { appVersion?: string; values?: Record<string, unknown> };
}

/** A list as the original stores it (`<Kind>List`). */
export interface StoredList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown>;
  items?: T[];
}
