// OCI registries of a test's own (the CNCF distribution registry, started by deploy/dev/registry),
// and pushing to them through the distribution API: small images, and Helm charts as OCI
// artifacts. For the Bearer challenge the test runs the token service the registry trusts — what
// Harbor's core or docker_auth are in production; the registry verifies its tokens itself.
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot, uniqueName } from './env.js';

const run = promisify(execFile);

/** A running registry: `host` is `127.0.0.1:<port>`. */
export interface TestRegistry {
  host: string;
  /** Authorization header for pushing (admin credentials), undefined for an open registry. */
  pushAuth: (repository: string) => Promise<string | undefined>;
  remove(): Promise<void>;
}

/** Users of an authenticated registry: name → password. */
export type Users = Record<string, string>;

async function add(name: string, args: string[]): Promise<string> {
  const { stdout } = await run('bash', [path.join(repoRoot, 'deploy/dev/registry'), 'add', name, ...args], {
    cwd: repoRoot,
  });
  return stdout.trim().split('\n').pop() ?? '';
}

function remover(name: string): () => Promise<void> {
  return async () => {
    await run('bash', [path.join(repoRoot, 'deploy/dev/registry'), 'remove', name], { cwd: repoRoot });
  };
}

/** A registry anyone may pull from and push to. */
export async function startOpenRegistry(prefix = 'open'): Promise<TestRegistry> {
  const name = uniqueName(prefix).slice(0, 40);
  const host = await add(name, []);
  return { host, pushAuth: () => Promise.resolve(undefined), remove: remover(name) };
}

const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A registry with htpasswd authentication (a Basic challenge); `users[admin]` pushes. */
export async function startBasicAuthRegistry(users: Users, admin: string): Promise<TestRegistry> {
  const name = uniqueName('basic').slice(0, 40);
  const dir = await mkdtemp(path.join(tmpdir(), 'registry-htpasswd-'));
  const lines: string[] = [];
  for (const [user, password] of Object.entries(users)) {
    // bcrypt, as the registry requires; libxcrypt's crypt via Python is on every Debian machine.
    const { stdout } = await run('python3', [
      '-W',
      'ignore',
      '-c',
      'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))',
      password,
    ]);
    lines.push(`${user}:${stdout.trim()}`);
  }
  const file = path.join(dir, 'htpasswd');
  await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  const host = await add(name, ['--htpasswd', file]);
  return { host, pushAuth: () => Promise.resolve(basic(admin, users[admin] ?? '')), remove: remover(name) };
}

/** The token service of a token-auth registry (Docker's token protocol), run by the test. */
interface TokenService {
  realm: string;
  certFile: string;
  issue(user: string | undefined, scope: string): string;
  close(): Promise<void>;
}

async function startTokenService(users: Users, service: string, issuer: string): Promise<TokenService> {
  const dir = await mkdtemp(path.join(tmpdir(), 'registry-token-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=ks-upgrade-test-token-issuer',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  const key: KeyObject = createPrivateKey(await readFile(keyFile));
  const certPem = await readFile(certFile, 'utf8');
  const der = Buffer.from(certPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64').toString(
    'base64',
  );
  const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');
  const issue = (user: string | undefined, scope: string): string => {
    const now = Math.floor(Date.now() / 1000);
    // repository:<name>:<actions>; an unknown user gets a token without access (as Docker Hub
    // does for anonymous pulls of private images), so the registry refuses on the retry.
    const [type, name, actions] = scope.split(':');
    const access = user && type && name && actions ? [{ type, name, actions: actions.split(',') }] : [];
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [der] }));
    const claims = b64url(
      JSON.stringify({
        iss: issuer,
        sub: user ?? '',
        aud: service,
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString('hex'),
        access,
      }),
    );
    const signature = b64url(sign('sha256', Buffer.from(`${header}.${claims}`), key));
    return `${header}.${claims}.${signature}`;
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    let user: string | undefined;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [u = '', p = ''] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      if (users[u] === undefined || users[u] !== p) {
        res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      user = u;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: issue(user, url.searchParams.get('scope') ?? '') }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certFile,
    issue,
    close: () =>
      new Promise((r) =>
        server.close(() => {
          r();
        }),
      ),
  };
}

/** A registry with token authentication (a Bearer challenge); `admin` pushes. */
export async function startTokenAuthRegistry(users: Users, admin: string): Promise<TestRegistry> {
  const name = uniqueName('token').slice(0, 40);
  const service = 'ks-upgrade-test-registry';
  const issuer = 'ks-upgrade-test-token-issuer';
  const tokens = await startTokenService(users, service, issuer);
  const host = await add(name, ['--token', tokens.realm, service, issuer, tokens.certFile]);
  const stop = remover(name);
  return {
    host,
    pushAuth: (repository) =>
      Promise.resolve(`Bearer ${tokens.issue(admin, `repository:${repository}:pull,push`)}`),
    remove: async () => {
      await stop();
      await tokens.close();
    },
  };
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function pushBlob(reg: TestRegistry, repository: string, blob: Buffer): Promise<string> {
  const digest = sha256(blob);
  const auth = await reg.pushAuth(repository);
  const headers: Record<string, string> = auth ? { authorization: auth } : {};
  const start = await fetch(`http://${reg.host}/v2/${repository}/blobs/uploads/`, {
    method: 'POST',
    headers,
  });
  if (start.status !== 202)
    throw new Error(`upload start ${repository}: HTTP ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get('location') ?? '', `http://${reg.host}`);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: blob,
  });
  if (put.status !== 201) throw new Error(`upload ${repository}: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

async function pushManifest(
  reg: TestRegistry,
  repository: string,
  tag: string,
  manifest: unknown,
): Promise<void> {
  const auth = await reg.pushAuth(repository);
  const res = await fetch(`http://${reg.host}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: {
      ...(auth ? { authorization: auth } : {}),
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
    },
    body: JSON.stringify(manifest),
  });
  if (res.status !== 201)
    throw new Error(`manifest ${repository}:${tag}: HTTP ${res.status} ${await res.text()}`);
}

/** Pushes a one-layer OCI image `repository:tag` (its content is only a file naming it). */
export async function pushImage(reg: TestRegistry, repository: string, tag: string): Promise<void> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const layer = Buffer.from(`${repository}:${tag}\n`);
  const configDigest = await pushBlob(reg, repository, config);
  const layerDigest = await pushBlob(reg, repository, layer);
  await pushManifest(reg, repository, tag, {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: configDigest,
      size: config.length,
    },
    layers: [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length },
    ],
  });
}

/** Pushes a chart archive as an OCI artifact (what `helm push` does): `repository:version`. */
export async function pushChart(
  reg: TestRegistry,
  repository: string,
  version: string,
  tgz: Buffer,
): Promise<void> {
  const config = Buffer.from(
    JSON.stringify({ name: repository.split('/').pop(), version, apiVersion: 'v2' }),
  );
  const configDigest = await pushBlob(reg, repository, config);
  const layerDigest = await pushBlob(reg, repository, tgz);
  await pushManifest(reg, repository, version, {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.cncf.helm.config.v1+json',
      digest: configDigest,
      size: config.length,
    },
    layers: [
      {
        mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
        digest: layerDigest,
        size: tgz.length,
      },
    ],
  });
}

/** A `.dockerconfigjson` for `host` (what an image pull secret holds). */
export function dockerConfigJson(host: string, user: string, password: string): string {
  return JSON.stringify({
    auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } },
  });
}
