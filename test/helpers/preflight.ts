// Fixtures of the preflight tests: a ks-core v4 chart with the shape of the real one (its image
// maps, global registry and tag, a sub-chart behind a condition, a section switched off).
import * as yaml from 'js-yaml';
import { makeChart } from './charts.js';

/** The images the fixture chart's pods would run, for a registry `host`. */
export function ksCoreImages(host: string): string[] {
  return [
    `${host}/kubesphere/ks-apiserver:v4.1.3`,
    `${host}/kubesphere/ks-console:v4.1.3`,
    `${host}/kubesphere/ks-controller-manager:v4.1.3`,
    `${host}/kubesphere/ks-extensions-museum:v1.1.3`,
    `${host}/kubesphere/kubectl:v1.27.16`,
  ].sort();
}

/**
 * A ks-core 1.1.4 (v4.1.3) chart: values as in config/ks-core/values.yaml of KubeSphere v4.1.3
 * (reduced to the image-bearing sections), with the redis-ha sub-chart disabled and the
 * ks-upgrade section off — their images must not be required.
 */
export async function ksCoreChart(o: { kubeVersion?: string } = {}): Promise<Buffer> {
  const image = (repository: string, tag = '') => ({
    registry: '',
    repository,
    tag,
    digest: '',
    pullPolicy: 'IfNotPresent',
  });
  const values = {
    global: { imageRegistry: 'docker.io', tag: 'v4.1.3', imagePullSecrets: [] },
    apiserver: { image: image('kubesphere/ks-apiserver') },
    console: { image: image('kubesphere/ks-console') },
    controller: { image: image('kubesphere/ks-controller-manager') },
    kubectl: { image: image('kubesphere/kubectl', 'v1.27.16') },
    nodeShell: { image: image('kubesphere/kubectl', 'v1.27.16') },
    upgrade: { enabled: false, image: image('kubesphere/ks-upgrade') },
    redisHA: { enabled: false },
    ksExtensionRepository: { enabled: true, image: image('kubesphere/ks-extensions-museum', 'v1.1.3') },
  };
  return makeChart('ks-core', {
    'Chart.yaml': yaml.dump({
      apiVersion: 'v2',
      name: 'ks-core',
      version: '1.1.4',
      appVersion: 'v4.1.3',
      ...(o.kubeVersion ? { kubeVersion: o.kubeVersion } : {}),
      dependencies: [{ name: 'redis-ha', version: '4.26.1', alias: 'redisHA', condition: 'redisHA.enabled' }],
    }),
    'values.yaml': yaml.dump(values),
    'charts/redis-ha/Chart.yaml': yaml.dump({
      apiVersion: 'v2',
      name: 'redis-ha',
      version: '4.26.1',
      appVersion: '7.2.4',
    }),
    'charts/redis-ha/values.yaml': yaml.dump({
      image: { repository: 'kubesphere/redis', tag: '7.2.4-alpine' },
      haproxy: { image: { repository: 'kubesphere/haproxy', tag: '2.9.6-alpine' } },
    }),
  });
}
