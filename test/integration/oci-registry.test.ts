// The dev OCI registry (crane registry serve) and the fixture pushers: an image pushed with crane
// and a chart pushed with helm answer a manifest HEAD as a registry does (200 with a digest, and
// 404 for what was never pushed) — what image and chart checks against a registry rely on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildKsCoreCharts, pushChart, pushImage } from '../fixtures/ks-core-charts.js';
import { helmTools, uniqueName } from '../helpers/env.js';

const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

async function headManifest(registry: string, repo: string, ref: string): Promise<Response> {
  return fetch(`http://${registry}/v2/${repo}/manifests/${ref}`, {
    method: 'HEAD',
    headers: { Accept: ACCEPT },
  });
}

describe('dev OCI registry', () => {
  const tools = helmTools();

  it('serves an image pushed with crane, and 404 for one never pushed', async () => {
    const repo = `kubesphere/${uniqueName('ks-apiserver')}`;
    await pushImage(tools.crane, `${tools.registry}/${repo}:v4.1.3`);
    const found = await headManifest(tools.registry, repo, 'v4.1.3');
    assert.equal(found.status, 200);
    assert.match(found.headers.get('docker-content-digest') ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal((await headManifest(tools.registry, repo, 'v4.1.2')).status, 404);
  });

  it('serves a chart pushed with helm as an OCI artifact', async () => {
    const charts = await buildKsCoreCharts(tools.helm);
    const ref = await pushChart(tools.helm, charts.v4, tools.registry);
    assert.equal(ref, `oci://${tools.registry}/kubesphere/ks-core`);
    const res = await fetch(`http://${tools.registry}/v2/kubesphere/ks-core/manifests/1.1.4`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(res.status, 200);
    const manifest = (await res.json()) as { config?: { mediaType?: string } };
    assert.equal(manifest.config?.mediaType, 'application/vnd.cncf.helm.config.v1+json');
  });
});
