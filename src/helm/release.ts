// Helm 3 release records, read straight from their storage Secrets (`sh.helm.release.v1.<name>.v<N>`,
// labels owner=helm, name=<name>, status=<status>, version=<N>). ks-upgrade needs only to read them
// (and, for the ks-core adoption step, to rewrite a manifest); no helm binary or library is needed.
import { gunzipSync, gzipSync } from 'node:zlib';
import { SecretResource, type Secret } from '../api/core.js';
import { KsUpgradeError } from '../errors.js';
import type { ResourceClient } from '../kube/client.js';

export interface HelmRelease {
  name: string;
  namespace: string;
  version: number;
  info: { status: string; first_deployed?: string; last_deployed?: string; description?: string };
  chart: { metadata: { name: string; version: string; appVersion?: string } };
  manifest: string;
  config?: Record<string, unknown>;
  [key: string]: unknown;
}

/** A release record whose Secret holds no decodable release. */
export class HelmReleaseFormatError extends KsUpgradeError {}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);

/** Decodes `data.release` of a release Secret: base64 (Secret) of base64 (helm) of gzip'd JSON. */
export function decodeRelease(secret: Secret): HelmRelease {
  const data = secret.data?.release;
  const where = `${secret.metadata.namespace ?? ''}/${secret.metadata.name ?? ''}`;
  if (!data) throw new HelmReleaseFormatError(`Secret ${where} has no release data`);
  const helmEncoded = Buffer.from(data, 'base64').toString('utf8');
  let bytes = Buffer.from(helmEncoded, 'base64');
  if (bytes.subarray(0, 3).equals(GZIP_MAGIC)) bytes = gunzipSync(bytes);
  try {
    return JSON.parse(bytes.toString('utf8')) as HelmRelease;
  } catch (err) {
    throw new HelmReleaseFormatError(`Secret ${where} does not hold a JSON helm release`, { cause: err });
  }
}

/** The inverse of {@link decodeRelease}, in the form helm writes (gzip'd). */
export function encodeRelease(release: HelmRelease): string {
  const helmEncoded = gzipSync(Buffer.from(JSON.stringify(release), 'utf8')).toString('base64');
  return Buffer.from(helmEncoded, 'utf8').toString('base64');
}

/** Every stored revision of a release, newest first, with the Secret it came from. */
export async function releaseHistory(
  client: ResourceClient,
  namespace: string,
  name: string,
): Promise<{ release: HelmRelease; secret: Secret }[]> {
  const secrets = await client.listAll(SecretResource, {
    namespace,
    labelSelector: `owner=helm,name=${name}`,
  });
  return secrets
    .filter((s) => s.type === 'helm.sh/release.v1')
    .map((secret) => ({ release: decodeRelease(secret), secret }))
    .sort((a, b) => b.release.version - a.release.version);
}

/** The newest revision with status `deployed`, if any. */
export async function lastDeployedRelease(
  client: ResourceClient,
  namespace: string,
  name: string,
): Promise<HelmRelease | undefined> {
  return (await releaseHistory(client, namespace, name)).find((r) => r.release.info.status === 'deployed')
    ?.release;
}

/** Names of the releases in a namespace (any status). */
export async function releaseNames(client: ResourceClient, namespace: string): Promise<string[]> {
  const secrets = await client.listAll(SecretResource, { namespace, labelSelector: 'owner=helm' });
  return [...new Set(secrets.map((s) => s.metadata.labels?.name ?? '').filter(Boolean))].sort();
}

/** The Secret name helm uses for a revision. */
export function releaseSecretName(name: string, version: number): string {
  return `sh.helm.release.v1.${name}.v${version}`;
}
