// The whizard-monitoring extension values derived from the v3 ClusterConfigurations (reference §4.5):
// extension-wide values from the host's cc, per-cluster overrides from each cluster's own cc. Pure
// functions, unit-tested against the original's fixture (test/unit/whizard-monitoring-values.test.ts).
import type { ClusterConfiguration } from '../../api/v3/index.js';
import { deepEqual, getPath } from '../../util/object.js';
import { setIfAbsent } from '../patterns.js';

/** One value moved from a cc path to a values path; `convert` maps the cc value (undefined = absent). */
export interface TransPath {
  to: string;
  from: string;
  convert: (value: unknown) => unknown;
}

const withDefault =
  (fallback: unknown) =>
  (value: unknown): unknown =>
    value === undefined || value === null ? structuredClone(fallback) : value;

const PVC_STORAGE = 'dataVolume.persistentVolumeClaim.spec.resources.requests.storage';

/** Whizard (observability centre) values: extension-wide, from the host's cc. */
export const WHIZARD_PATHS: readonly TransPath[] = [
  {
    to: 'whizardMonitoringHelper.enabled',
    from: 'spec.monitoring.whizard.enabled',
    convert: withDefault(false),
  },
  {
    to: 'whizard-monitoring-helper.whizardHelper.enabled',
    from: 'spec.monitoring.whizard.enabled',
    convert: withDefault(false),
  },
  { to: 'whizard.enabled', from: 'spec.monitoring.whizard.enabled', convert: withDefault(false) },
  ...['compactor', 'ingester', 'store'].map((c) => ({
    to: `whizard.service.${c}TemplateSpec.${PVC_STORAGE}`,
    from: 'spec.monitoring.whizard.server.volumeSize',
    convert: withDefault('20Gi'),
  })),
  { to: 'whizardAgentProxy.enabled', from: 'spec.monitoring.whizard.enabled', convert: withDefault(false) },
  {
    to: 'kube-prometheus-stack.prometheus.agentMode',
    from: 'spec.monitoring.whizard.enabled',
    convert: withDefault(false),
  },
];

/** Prometheus stack values: extension-wide from the host, overridden per cluster where they differ. */
export const STACK_PATHS: readonly TransPath[] = [
  {
    to: 'kube-prometheus-stack.prometheus.prometheusSpec.resources',
    from: 'spec.monitoring.prometheus.resources',
    convert: withDefault({
      requests: { cpu: '200m', memory: '400Mi' },
      limits: { cpu: '4', memory: '16Gi' },
    }),
  },
  {
    to: 'kube-prometheus-stack.prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.resources.requests.storage',
    from: 'spec.monitoring.prometheus.volumeSize',
    convert: withDefault('20Gi'),
  },
  {
    to: 'kube-prometheus-stack.prometheus-node-exporter.ProcessExporter.enabled',
    from: 'spec.monitoring.process_exporter.enabled',
    convert: withDefault(false),
  },
  {
    to: 'kube-prometheus-stack.prometheus-node-exporter.CalicoExporter.enabled',
    from: 'spec.monitoring.calico_exporter.enabled',
    convert: withDefault(false),
  },
];

/**
 * etcd monitoring values, per cluster (only where the cluster's cc has `spec.etcd.monitoring`).
 * `endpointIps` is a comma-separated string; unlike the original, each item is trimmed and empty
 * items are dropped (`"a, b,"` → `[a, b]`, the original gave `["a", " b", ""]`).
 */
export const ETCD_PATHS: readonly TransPath[] = [
  {
    to: 'whizard-monitoring-helper.etcdMonitoringHelper.enabled',
    from: 'spec.etcd.monitoring',
    convert: withDefault(false),
  },
  { to: 'kube-prometheus-stack.kubeEtcd.enabled', from: 'spec.etcd.monitoring', convert: withDefault(false) },
  {
    to: 'kube-prometheus-stack.kubeEtcd.endpoints',
    from: 'spec.etcd.endpointIps',
    convert: (v) =>
      typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '')
        : [],
  },
  {
    to: 'kube-prometheus-stack.prometheus.prometheusSpec.secrets',
    from: 'spec.etcd.tlsEnable',
    convert: (v) => (v === true ? ['kube-etcd-client-certs'] : []),
  },
];

/** The whizard agent proxy's gateway URL, the same for every member: taken from the first member. */
export const GATEWAY_URL_PATH: TransPath = {
  to: 'whizard-agent-proxy.config.gatewayUrl',
  from: 'spec.monitoring.whizard.client.gatewayUrl',
  convert: (v) => v,
};

function fromCc(cc: ClusterConfiguration, tp: TransPath): unknown {
  return tp.convert(getPath(cc, tp.from.split('.')));
}

/**
 * The original's SetExtensionValues: each value taken from the cc is set only where the values do
 * not have it yet (the user's config wins). Returns a new object.
 */
export function setExtensionValues(
  values: Record<string, unknown>,
  cc: ClusterConfiguration,
  paths: readonly TransPath[],
): Record<string, unknown> {
  const result = structuredClone(values);
  for (const tp of paths) {
    const v = fromCc(cc, tp);
    if (v === undefined || v === null) continue;
    setIfAbsent(result, tp.to, v);
  }
  return result;
}

/**
 * The original's SetOverrideValues: a value from the cluster's cc goes into its override only where
 * the override does not have it yet and it differs from the extension-wide value. Returns a new
 * object. (The original compared Go types, so a list always counted as different; here equal
 * lists are equal and stay out of the override.)
 */
export function setOverrideValues(
  override: Record<string, unknown>,
  cc: ClusterConfiguration,
  paths: readonly TransPath[],
  extensionValues: Record<string, unknown>,
): Record<string, unknown> {
  const result = structuredClone(override);
  for (const tp of paths) {
    const v = fromCc(cc, tp);
    if (v === undefined || v === null) continue;
    if (deepEqual(v, getPath(extensionValues, tp.to.split('.')))) continue;
    setIfAbsent(result, tp.to, v);
  }
  return result;
}

/** A cluster of the placement, with its own cc. */
export interface MonitoringCluster {
  name: string;
  isHost: boolean;
  cc: ClusterConfiguration;
}

/**
 * Extension values and per-cluster overrides for the InstallPlan (post-upgrade on the host):
 * whizard + stack values from the host's cc; for each cluster an override from its own cc (stack
 * values, plus etcd values when that cluster monitors etcd); with whizard enabled on the host, the
 * gateway URL from the first member's cc. `overrides` holds only non-empty overrides.
 */
export function monitoringValues(
  userValues: Record<string, unknown>,
  hostCc: ClusterConfiguration,
  clusters: readonly MonitoringCluster[],
  userOverrides: Record<string, Record<string, unknown>> = {},
): { values: Record<string, unknown>; overrides: Record<string, Record<string, unknown>> } {
  let values = setExtensionValues(userValues, hostCc, [...WHIZARD_PATHS, ...STACK_PATHS]);
  const whizardEnabled = getPath(hostCc, ['spec', 'monitoring', 'whizard', 'enabled']) === true;
  const overrides: Record<string, Record<string, unknown>> = {};
  let gatewayUrlSet = false;
  for (const cluster of clusters) {
    const etcd = getPath(cluster.cc, ['spec', 'etcd', 'monitoring']) === true;
    const override = setOverrideValues(
      userOverrides[cluster.name] ?? {},
      cluster.cc,
      etcd ? [...STACK_PATHS, ...ETCD_PATHS] : STACK_PATHS,
      values,
    );
    if (Object.keys(override).length > 0) overrides[cluster.name] = override;
    if (whizardEnabled && !gatewayUrlSet && !cluster.isHost) {
      values = setExtensionValues(values, cluster.cc, [GATEWAY_URL_PATH]);
      gatewayUrlSet = true;
    }
  }
  return { values, overrides };
}
