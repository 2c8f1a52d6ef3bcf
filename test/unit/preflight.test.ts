// The pure parts of the preflight: image references as Docker reads them, pull-secret lookup by
// registry, the images a chart's values name, Kubernetes version constraints, and one permission
// per verb × resource × namespace × name from the access table.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chartImages, extensionChartSource, parseChartSource } from '../../src/preflight/charts.js';
import { permissionsOf, satisfies } from '../../src/preflight/checks.js';
import { DockerConfigAuth, formatImageRef, parseImageRef } from '../../src/preflight/registry.js';
import { ksCoreChart, ksCoreImages } from '../helpers/preflight.js';

describe('preflight: image references', () => {
  it('reads references as Docker does', () => {
    const cases: [string, string][] = [
      ['nginx', 'docker.io/library/nginx'],
      ['kubesphere/ks-apiserver:v4.1.3', 'docker.io/kubesphere/ks-apiserver:v4.1.3'],
      ['registry.local:5000/kubesphere/kubectl:v1.27.16', 'registry.local:5000/kubesphere/kubectl:v1.27.16'],
      ['localhost/a/b:1', 'localhost/a/b:1'],
      ['index.docker.io/library/redis:7', 'docker.io/library/redis:7'],
      [`ghcr.io/x/y@sha256:${'a'.repeat(64)}`, `ghcr.io/x/y@sha256:${'a'.repeat(64)}`],
    ];
    for (const [ref, canonical] of cases) assert.equal(formatImageRef(parseImageRef(ref)), canonical, ref);
    assert.throws(() => parseImageRef('a b'), /is not an image reference/);
    assert.throws(() => parseImageRef('x/y@sha256:zz'), /invalid digest/);
  });

  it('finds pull credentials by registry host, in the forms config.json uses', () => {
    const auth = new DockerConfigAuth();
    auth.add(
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw1').toString('base64') },
          'registry.local:5000': { username: 'u', password: 'p:with:colons' },
        },
      }),
      'test',
    );
    assert.deepEqual(auth.credentialsFor('docker.io'), { username: 'hub', password: 'pw1' });
    assert.deepEqual(auth.credentialsFor('registry.local:5000'), {
      username: 'u',
      password: 'p:with:colons',
    });
    assert.equal(auth.credentialsFor('other.io'), undefined);
    assert.deepEqual(auth.hosts(), ['docker.io', 'registry.local:5000']);
    assert.throws(() => {
      auth.add('not json', 'Secret a/b');
    }, /Secret a\/b is not Docker config JSON/);
  });
});

describe('preflight: chart images', () => {
  it('lists the images of the enabled parts of ks-core, under the configured mirror', async () => {
    const chart = chartImages(await ksCoreChart(), { global: { imageRegistry: 'mirror.local:5000' } });
    assert.equal(chart.name, 'ks-core');
    assert.equal(chart.appVersion, 'v4.1.3');
    assert.deepEqual(chart.images, ksCoreImages('mirror.local:5000'));
  });

  it('without a mirror the chart pulls from docker.io; a sub-chart switched on adds its images', async () => {
    const plain = chartImages(await ksCoreChart());
    assert.deepEqual(plain.images, ksCoreImages('docker.io'));
    const withRedis = chartImages(await ksCoreChart(), { redisHA: { enabled: true } });
    assert.deepEqual(
      withRedis.images.filter((i) => !plain.images.includes(i)),
      ['docker.io/kubesphere/haproxy:2.9.6-alpine', 'docker.io/kubesphere/redis:7.2.4-alpine'],
    );
  });

  it('parses chart sources', () => {
    assert.deepEqual(parseChartSource('oci://r.local:5000/charts/ks-core:1.1.4', 'k'), {
      kind: 'oci',
      ref: 'r.local:5000/charts/ks-core:1.1.4',
    });
    assert.throws(
      () => parseChartSource('oci://r.local:5000/charts/ks-core', 'checks.coreChart'),
      /names no version/,
    );
    assert.deepEqual(parseChartSource('ks-core', 'k', { repo: 'https://c', version: '1.1.4' }), {
      kind: 'repo',
      repo: 'https://c',
      name: 'ks-core',
      version: '1.1.4',
    });
    assert.throws(
      () => parseChartSource('ks-core', 'checks.coreChart', { repo: 'https://c' }),
      /needs its version/,
    );
    assert.equal(parseChartSource('https://c/ks-core-1.1.4.tgz', 'k').kind, 'http');
    assert.equal(parseChartSource('./ks-core.tgz', 'k').kind, 'file');
    assert.deepEqual(extensionChartSource('oci://r/ext/', 'devops', '1.1.2'), {
      kind: 'oci',
      ref: 'r/ext/devops:1.1.2',
    });
  });
});

describe('preflight: Kubernetes version constraints', () => {
  it('reads Helm/semver constraints', () => {
    assert.equal(satisfies('v1.35.4', '>=1.19.0-0'), true);
    assert.equal(satisfies('v1.35.4', '>=1.19.0-0 <1.31.0'), false);
    assert.equal(satisfies('v1.26.3', '^1.21'), true);
    assert.equal(satisfies('v1.26.3', '~1.25'), false);
    assert.equal(satisfies('v1.20.1', '>=1.21 || 1.20.x'), true);
  });
});

describe('preflight: permissions of the access table', () => {
  it('asks one question per verb × resource × namespace × name, and none for member rules', () => {
    const perms = permissionsOf([
      {
        job: 'a',
        rule: {
          group: 'apps',
          resources: ['deployments', 'deployments/scale'],
          verbs: ['get', 'update'],
          namespaces: ['x', 'y'],
          resourceNames: ['d1'],
          why: 'w',
        },
      },
      {
        job: 'b',
        rule: {
          group: 'apps',
          resources: ['deployments'],
          verbs: ['get'],
          namespaces: ['x'],
          resourceNames: ['d1'],
          why: 'dup',
        },
      },
      { job: 'c', rule: { group: '', resources: ['secrets'], verbs: ['list'], why: 'm', on: 'members' } },
    ]);
    assert.equal(perms.length, 2 * 2 * 2);
    assert.ok(
      perms.some(
        (p) => p.subresource === 'scale' && p.namespace === 'y' && p.name === 'd1' && p.verb === 'update',
      ),
    );
    assert.equal(perms.filter((p) => p.job === 'b').length, 0, 'duplicates are asked once');
  });
});
