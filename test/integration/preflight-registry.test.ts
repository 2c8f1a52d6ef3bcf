// The preflight's registry client against real registries (the CNCF distribution registry): a
// manifest HEAD finds present and missing images, with no auth, behind a Basic challenge
// (htpasswd) and behind a Bearer challenge (token service) — with the credentials of a Docker
// config.json as an image pull secret holds them; charts are fetched as OCI artifacts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chartImages, fetchChart } from '../../src/preflight/charts.js';
import { DockerConfigAuth, RegistryClient, parseImageRef } from '../../src/preflight/registry.js';
import { ksCoreChart } from '../helpers/preflight.js';
import {
  dockerConfigJson,
  pushChart,
  pushImage,
  startBasicAuthRegistry,
  startOpenRegistry,
  startTokenAuthRegistry,
  type TestRegistry,
} from '../helpers/registry.js';

const USERS = { admin: 'admin-password-do-not-leak', puller: 'puller-password-do-not-leak' };

function clientWith(host: string, user?: string, password?: string): RegistryClient {
  const auth = new DockerConfigAuth();
  if (user) auth.add(dockerConfigJson(host, user, password ?? ''), 'test pull secret');
  return new RegistryClient({ auth });
}

describe('preflight registry client', () => {
  let open: TestRegistry;
  let basic: TestRegistry;
  let token: TestRegistry;
  before(async () => {
    [open, basic, token] = await Promise.all([
      startOpenRegistry(),
      startBasicAuthRegistry(USERS, 'admin'),
      startTokenAuthRegistry(USERS, 'admin'),
    ]);
    for (const reg of [open, basic, token]) await pushImage(reg, 'kubesphere/ks-apiserver', 'v4.1.3');
  });
  after(async () => {
    await Promise.all([open.remove(), basic.remove(), token.remove()]);
  });

  it('an open registry: a pushed tag is present, another is missing', async () => {
    const c = clientWith(open.host);
    const present = await c.manifest(parseImageRef(`${open.host}/kubesphere/ks-apiserver:v4.1.3`));
    assert.ok(present.state === 'present', JSON.stringify(present));
    assert.match(present.digest ?? '', /^sha256:[a-f0-9]{64}$/);
    assert.equal(
      (await c.manifest(parseImageRef(`${open.host}/kubesphere/ks-apiserver:v4.1.2`))).state,
      'missing',
    );
    assert.equal((await c.manifest(parseImageRef(`${open.host}/kubesphere/nothing:v1`))).state, 'missing');
  });

  for (const kind of ['basic', 'token'] as const) {
    it(`a ${kind === 'basic' ? 'Basic (htpasswd)' : 'Bearer (token)'} challenge: the pull secret's credentials get in, none or wrong ones do not`, async () => {
      const reg = kind === 'basic' ? basic : token;
      const ref = parseImageRef(`${reg.host}/kubesphere/ks-apiserver:v4.1.3`);
      assert.equal((await clientWith(reg.host, 'puller', USERS.puller).manifest(ref)).state, 'present');
      assert.equal(
        (
          await clientWith(reg.host, 'puller', USERS.puller).manifest(
            parseImageRef(`${reg.host}/kubesphere/ks-apiserver:v9`),
          )
        ).state,
        'missing',
      );
      const anonymous = await clientWith(reg.host).manifest(ref);
      assert.ok(anonymous.state === 'denied', JSON.stringify(anonymous));
      assert.match(anonymous.detail, /no credentials for this registry/);
      const wrong = await clientWith(reg.host, 'puller', 'wrong').manifest(ref);
      assert.ok(wrong.state === 'denied', JSON.stringify(wrong));
      assert.match(wrong.detail, /refused/);
      assert.doesNotMatch(JSON.stringify([anonymous, wrong]), /password/);
    });
  }

  it('fetches a chart pushed as an OCI artifact (behind the token challenge) and reads its images', async () => {
    await pushChart(token, 'charts/ks-core', '1.1.4', await ksCoreChart());
    const c = clientWith(token.host, 'puller', USERS.puller);
    const archive = await fetchChart(
      { kind: 'oci', ref: `${token.host}/charts/ks-core:1.1.4` },
      { registry: c },
    );
    assert.equal(chartImages(archive).appVersion, 'v4.1.3');
    await assert.rejects(
      fetchChart({ kind: 'oci', ref: `${token.host}/charts/ks-core:9.9.9` }, { registry: c }),
      /chart oci:\/\/.*ks-core:9\.9\.9: .*HTTP 404/,
    );
  });
});
