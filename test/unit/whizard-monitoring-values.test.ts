// The original's only hermetic unit test, TestSetExtensionAndOverrideValues (pkg/jobs/monitoring),
// reproduced with its fixture (reference §6.1): a host cc and a member cc → the extension values,
// the host override and the member override of the whizard-monitoring InstallPlan.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import type { ClusterConfiguration } from '../../src/api/v3/index.js';
import {
  ETCD_PATHS,
  GATEWAY_URL_PATH,
  STACK_PATHS,
  WHIZARD_PATHS,
  monitoringValues,
  setExtensionValues,
  setOverrideValues,
} from '../../src/jobs/whizard-monitoring/values.js';

const load = (text: string) => yaml.load(text) as Record<string, unknown>;
const asCc = (spec: Record<string, unknown>): ClusterConfiguration => ({ metadata: {}, ...spec });

// pkg/jobs/monitoring/tests/cc.host.yaml
const ccHost = asCc(
  load(`
spec:
  monitoring:
    prometheus:
      volumeSize: 30Gi
    whizard:
      enabled: true
    process_exporter:
      enabled: true
    calico_exporter:
      enabled: true
  etcd:
    monitoring: true
    endpointIps: 192.168.1.1,192.168.1.2
    tlsEnable: false
`),
);

// pkg/jobs/monitoring/tests/cc.member.yaml
const ccMember = asCc(
  load(`
spec:
  monitoring:
    prometheus:
      volumeSize: 100Gi
    whizard:
      enabled: true
      client:
        gatewayUrl: http://192.168.1.1:30990
    process_exporter:
      enabled: false
    calico_exporter:
      enabled: true
  etcd:
    monitoring: true
    endpointIps: 192.168.2.1,192.168.2.2
    tlsEnable: true
`),
);

// pkg/jobs/monitoring/tests/extension.values.yaml
const expectedExtension = load(`
whizardMonitoringHelper:
  enabled: true
whizard-monitoring-helper:
  whizardHelper:
    enabled: true
whizardAgentProxy:
  enabled: true
whizard-agent-proxy:
  config:
    gatewayUrl: http://192.168.1.1:30990
whizard:
  enabled: true
  service:
    compactorTemplateSpec:
      dataVolume: { persistentVolumeClaim: { spec: { resources: { requests: { storage: 20Gi } } } } }
    ingesterTemplateSpec:
      dataVolume: { persistentVolumeClaim: { spec: { resources: { requests: { storage: 20Gi } } } } }
    storeTemplateSpec:
      dataVolume: { persistentVolumeClaim: { spec: { resources: { requests: { storage: 20Gi } } } } }
kube-prometheus-stack:
  prometheus:
    agentMode: true
    prometheusSpec:
      resources:
        limits: { cpu: "4", memory: 16Gi }
        requests: { cpu: 200m, memory: 400Mi }
      storageSpec:
        volumeClaimTemplate: { spec: { resources: { requests: { storage: 30Gi } } } }
  prometheus-node-exporter:
    ProcessExporter: { enabled: true }
    CalicoExporter: { enabled: true }
`);

// pkg/jobs/monitoring/tests/override.host.values.yaml
const expectedOverrideHost = load(`
whizard-monitoring-helper:
  etcdMonitoringHelper:
    enabled: true
kube-prometheus-stack:
  prometheus:
    prometheusSpec:
      secrets: []
  kubeEtcd:
    enabled: true
    endpoints: [192.168.1.1, 192.168.1.2]
`);

// pkg/jobs/monitoring/tests/override.member.values.yaml
const expectedOverrideMember = load(`
whizard-monitoring-helper:
  etcdMonitoringHelper:
    enabled: true
kube-prometheus-stack:
  prometheus:
    prometheusSpec:
      storageSpec:
        volumeClaimTemplate: { spec: { resources: { requests: { storage: 100Gi } } } }
      secrets: [kube-etcd-client-certs]
  prometheus-node-exporter:
    ProcessExporter: { enabled: false }
  kubeEtcd:
    enabled: true
    endpoints: [192.168.2.1, 192.168.2.2]
`);

describe('whizard-monitoring values from the v3 ClusterConfigurations', () => {
  it('reproduces TestSetExtensionAndOverrideValues step by step', () => {
    let extension = setExtensionValues({}, ccHost, [...WHIZARD_PATHS, ...STACK_PATHS]);
    const overrideHost = setOverrideValues({}, ccHost, [...STACK_PATHS, ...ETCD_PATHS], extension);
    const overrideMember = setOverrideValues({}, ccMember, [...STACK_PATHS, ...ETCD_PATHS], extension);
    extension = setExtensionValues(extension, ccMember, [GATEWAY_URL_PATH]);
    assert.deepEqual(extension, expectedExtension);
    assert.deepEqual(overrideHost, expectedOverrideHost);
    assert.deepEqual(overrideMember, expectedOverrideMember);
  });

  it('gives the same result through the job’s placement computation (host first, then the member)', () => {
    const { values, overrides } = monitoringValues({}, ccHost, [
      { name: 'host', isHost: true, cc: ccHost },
      { name: 'member1', isHost: false, cc: ccMember },
    ]);
    assert.deepEqual(values, expectedExtension);
    assert.deepEqual(overrides, { host: expectedOverrideHost, member1: expectedOverrideMember });
  });

  it('keeps what the user configured, in the values and in a cluster’s override', () => {
    const { values, overrides } = monitoringValues(
      { whizard: { enabled: false }, 'kube-prometheus-stack': { prometheus: { agentMode: false } } },
      ccHost,
      [{ name: 'member1', isHost: false, cc: ccMember }],
      { member1: { 'kube-prometheus-stack': { kubeEtcd: { endpoints: ['10.0.0.1'] } } } },
    );
    assert.equal((values.whizard as { enabled: unknown }).enabled, false);
    assert.equal(
      (values['kube-prometheus-stack'] as { prometheus: { agentMode: unknown } }).prometheus.agentMode,
      false,
    );
    const kubeEtcd = (overrides.member1?.['kube-prometheus-stack'] as { kubeEtcd: unknown }).kubeEtcd;
    assert.deepEqual(kubeEtcd, { endpoints: ['10.0.0.1'], enabled: true });
  });

  it('uses the defaults for a cc without monitoring settings; no etcd values without etcd monitoring', () => {
    const bare = asCc({ spec: { etcd: { monitoring: false, endpointIps: 'localhost' } } });
    const { values, overrides } = monitoringValues({}, bare, [{ name: 'host', isHost: true, cc: bare }]);
    assert.deepEqual(values, {
      whizardMonitoringHelper: { enabled: false },
      'whizard-monitoring-helper': { whizardHelper: { enabled: false } },
      whizard: {
        enabled: false,
        service: Object.fromEntries(
          ['compactor', 'ingester', 'store'].map((c) => [
            `${c}TemplateSpec`,
            {
              dataVolume: {
                persistentVolumeClaim: { spec: { resources: { requests: { storage: '20Gi' } } } },
              },
            },
          ]),
        ),
      },
      whizardAgentProxy: { enabled: false },
      'kube-prometheus-stack': {
        prometheus: {
          agentMode: false,
          prometheusSpec: {
            resources: { requests: { cpu: '200m', memory: '400Mi' }, limits: { cpu: '4', memory: '16Gi' } },
            storageSpec: { volumeClaimTemplate: { spec: { resources: { requests: { storage: '20Gi' } } } } },
          },
        },
        'prometheus-node-exporter': {
          ProcessExporter: { enabled: false },
          CalicoExporter: { enabled: false },
        },
      },
    });
    assert.deepEqual(overrides, {}, 'the host equals the extension-wide values: no override');
  });

  it('trims etcd endpoints (the original kept the spaces)', () => {
    const cc = asCc({
      spec: { etcd: { monitoring: true, endpointIps: ' 10.0.0.1, 10.0.0.2 ,', tlsEnable: true } },
    });
    const override = setOverrideValues({}, cc, ETCD_PATHS, {});
    assert.deepEqual(getEndpoints(override), ['10.0.0.1', '10.0.0.2']);
  });
});

function getEndpoints(values: Record<string, unknown>): unknown {
  return (values['kube-prometheus-stack'] as { kubeEtcd: { endpoints: unknown } }).kubeEtcd.endpoints;
}
