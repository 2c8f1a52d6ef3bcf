// A small client of the OCI distribution API, for the preflight: does a manifest exist (HEAD, with
// the credentials the cluster pulls with), and fetching a chart pushed as an OCI artifact. It speaks
// the two challenges registries use — Basic, and Bearer with a token service (Docker Hub, Harbor,
// GHCR, Quay, distribution's token auth) — and reads credentials in Docker's config.json format
// (the `.dockerconfigjson` of image pull secrets). Credentials never leave this module: results
// name registries and repositories only.
import { KsUpgradeError } from '../errors.js';
import { httpRequest, type HttpResponse } from './http.js';

/** A parsed image (or OCI artifact) reference. */
export interface ImageRef {
  /** Registry host (and port), e.g. `docker.io`, `registry.local:5000`. */
  registry: string;
  /** Repository path, e.g. `kubesphere/ks-apiserver` (Docker Hub's `library/` added). */
  repository: string;
  tag?: string;
  digest?: string;
}

/** The reference is not a valid image reference. */
export class ImageRefError extends KsUpgradeError {}

const DOCKER_HUB = 'docker.io';

/**
 * Parses `[registry/]repository[:tag][@digest]` as Docker does: the first path component is a
 * registry when it has a `.` or `:` or is `localhost`; otherwise the image is on Docker Hub.
 */
export function parseImageRef(ref: string): ImageRef {
  const text = ref.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/@-]*$/.test(text)) {
    throw new ImageRefError(`'${ref}' is not an image reference`, {
      hint: 'write [registry/]repository[:tag][@sha256:digest], e.g. docker.io/kubesphere/ks-apiserver:v4.1.3',
    });
  }
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  let registry = DOCKER_HUB;
  let repository = rest;
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    repository = rest.slice(slash + 1);
  }
  if (registry === 'index.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (!repository || (tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(tag))) {
    throw new ImageRefError(`'${ref}' is not an image reference`, {
      hint: 'a tag is letters, digits, `_`, `.` and `-` (at most 128)',
    });
  }
  if (digest !== undefined && !/^[a-z0-9]+:[a-f0-9]{32,}$/.test(digest)) {
    throw new ImageRefError(`'${ref}' has an invalid digest`, { hint: 'write @sha256:<64 hex digits>' });
  }
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** `registry/repository:tag@digest`, the canonical form used in evidence. */
export function formatImageRef(ref: ImageRef): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Registry credentials, as in one `auths` entry of a Docker config.json. */
export interface RegistryCredentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (`identitytoken`), exchanged at the token service. */
  identityToken?: string;
}

/** The credentials of a Docker config.json (`{"auths": {...}}`), looked up by registry host. */
export class DockerConfigAuth {
  private readonly byHost = new Map<string, RegistryCredentials>();

  /** `json`: the content of a config.json / `.dockerconfigjson`, or of a legacy `.dockercfg`. */
  add(json: string, source: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      throw new KsUpgradeError(`${source} is not Docker config JSON`, {
        hint: 'an image pull secret holds `{"auths": {"<registry>": {"auth": "<base64 user:password>"}}}`',
      });
    }
    const root = (parsed ?? {}) as Record<string, unknown>;
    const auths = (typeof root.auths === 'object' && root.auths !== null ? root.auths : root) as Record<
      string,
      Record<string, unknown> | undefined
    >;
    for (const [key, entry] of Object.entries(auths)) {
      if (!entry || typeof entry !== 'object') continue;
      const creds: RegistryCredentials = {};
      if (typeof entry.auth === 'string' && entry.auth !== '') {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const sep = decoded.indexOf(':');
        if (sep > 0) {
          creds.username = decoded.slice(0, sep);
          creds.password = decoded.slice(sep + 1);
        }
      }
      if (typeof entry.username === 'string') creds.username = entry.username;
      if (typeof entry.password === 'string') creds.password = entry.password;
      if (typeof entry.identitytoken === 'string' && entry.identitytoken)
        creds.identityToken = entry.identitytoken;
      const host = normaliseHost(key);
      // The first source wins, as with the pull secrets of a pod (they are tried in order).
      if (host && !this.byHost.has(host)) this.byHost.set(host, creds);
    }
  }

  /** Credentials for a registry host, if any source has some. */
  credentialsFor(registry: string): RegistryCredentials | undefined {
    return this.byHost.get(normaliseHost(registry));
  }

  /** Hosts with credentials (for evidence; never the credentials). */
  hosts(): string[] {
    return [...this.byHost.keys()].sort();
  }
}

/** `https://index.docker.io/v1/` → `docker.io`; `registry.local:5000/` → `registry.local:5000`. */
function normaliseHost(key: string): string {
  const host = key
    .replace(/^https?:\/\//, '')
    .split('/')[0]
    ?.toLowerCase();
  if (!host) return '';
  return ['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'].includes(host)
    ? DOCKER_HUB
    : host;
}

/** How the client reaches registries. */
export interface RegistryClientOptions {
  auth?: DockerConfigAuth;
  /** Hosts spoken to over plain HTTP. Loopback hosts always are (as Docker and containerd do). */
  insecureRegistries?: readonly string[];
  /** Extra CA certificates (PEM) for registries with a private CA. */
  ca?: string | Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
}

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** What a manifest lookup found. */
export type ManifestStatus =
  | { state: 'present'; digest?: string }
  | { state: 'missing'; detail: string }
  | { state: 'denied'; detail: string }
  | { state: 'error'; detail: string };

/** A client for the registries one check talks to; tokens are cached per registry and scope. */
export class RegistryClient {
  private readonly tokens = new Map<string, string>();

  constructor(private readonly o: RegistryClientOptions = {}) {}

  /** Does `ref`'s manifest (tag or digest) exist? HEAD, with GET where HEAD is not allowed. */
  async manifest(ref: ImageRef): Promise<ManifestStatus> {
    const reference = ref.digest ?? ref.tag ?? 'latest';
    const path = `/v2/${ref.repository}/manifests/${reference}`;
    let res: HttpResponse;
    try {
      res = await this.request(ref, 'HEAD', path, { accept: MANIFEST_ACCEPT });
      if (res.status === 405)
        res = await this.request(ref, 'GET', path, { accept: MANIFEST_ACCEPT, maxBytes: 4 << 20 });
    } catch (err) {
      return { state: 'error', detail: err instanceof Error ? err.message : String(err) };
    }
    const digest = res.headers['docker-content-digest'];
    if (res.status === 200) return { state: 'present', ...(typeof digest === 'string' ? { digest } : {}) };
    if (res.status === 404) return { state: 'missing', detail: `${reference} not found (HTTP 404)` };
    if (res.status === 401 || res.status === 403) {
      const known = this.o.auth?.credentialsFor(ref.registry) !== undefined;
      return {
        state: 'denied',
        detail: `HTTP ${res.status}: ${known ? 'the pull secret for this registry is refused' : 'no credentials for this registry'}`,
      };
    }
    return { state: 'error', detail: `HTTP ${res.status}` };
  }

  /** The manifest document (JSON) of `ref`. */
  async getManifest(ref: ImageRef, accept: string): Promise<{ mediaType: string; json: unknown }> {
    const reference = ref.digest ?? ref.tag ?? 'latest';
    const res = await this.request(ref, 'GET', `/v2/${ref.repository}/manifests/${reference}`, {
      accept,
      maxBytes: 4 << 20,
    });
    if (res.status !== 200) {
      throw new KsUpgradeError(`${formatImageRef(ref)}: manifest not available (HTTP ${res.status})`);
    }
    const mediaType = (res.headers['content-type'] ?? '').split(';')[0] ?? '';
    return { mediaType, json: JSON.parse(res.body.toString('utf8')) as unknown };
  }

  /** A blob of `ref`'s repository, at most `maxBytes`. */
  async getBlob(ref: ImageRef, digest: string, maxBytes: number): Promise<Buffer> {
    const res = await this.request(ref, 'GET', `/v2/${ref.repository}/blobs/${digest}`, { maxBytes });
    if (res.status !== 200) {
      throw new KsUpgradeError(`${formatImageRef(ref)}: blob ${digest} not available (HTTP ${res.status})`);
    }
    return res.body;
  }

  private baseUrl(registry: string): string {
    const host = registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
    const hostname = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    const plain =
      (this.o.insecureRegistries ?? []).includes(registry) ||
      hostname === 'localhost' ||
      /^127\./.test(hostname) ||
      hostname === '::1';
    return `${plain ? 'http' : 'https'}://${host}`;
  }

  /** One request, answering the registry's authentication challenge once if it sends one. */
  private async request(
    ref: ImageRef,
    method: 'HEAD' | 'GET',
    path: string,
    extra: { accept?: string; maxBytes?: number },
  ): Promise<HttpResponse> {
    const scope = `repository:${ref.repository}:pull`;
    const cacheKey = `${ref.registry} ${scope}`;
    const headers: Record<string, string> = extra.accept ? { accept: extra.accept } : {};
    const cached = this.tokens.get(cacheKey);
    const url = `${this.baseUrl(ref.registry)}${path}`;
    let res = await this.send(
      url,
      method,
      cached ? { ...headers, authorization: cached } : headers,
      extra.maxBytes,
    );
    if (res.status !== 401) return res;
    const authorization = await this.answerChallenge(
      ref.registry,
      res.headers['www-authenticate'] ?? '',
      scope,
    );
    if (!authorization) return res;
    this.tokens.set(cacheKey, authorization);
    res = await this.send(url, method, { ...headers, authorization }, extra.maxBytes);
    return res;
  }

  /** The Authorization header answering a challenge, or undefined when it cannot be answered. */
  private async answerChallenge(
    registry: string,
    challenge: string,
    scope: string,
  ): Promise<string | undefined> {
    const creds = this.o.auth?.credentialsFor(registry);
    const scheme = challenge.split(' ')[0]?.toLowerCase();
    if (scheme === 'basic') {
      if (!creds?.username) return undefined;
      return `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
    }
    if (scheme !== 'bearer') return undefined;
    const params = parseChallenge(challenge);
    const realm = params.realm;
    if (!realm) return undefined;
    const url = new URL(realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? scope);
    let res: HttpResponse;
    if (creds?.identityToken) {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identityToken,
        service: params.service ?? '',
        scope: params.scope ?? scope,
        client_id: 'ks-upgrade',
      });
      res = await this.send(
        realm,
        'POST',
        { 'content-type': 'application/x-www-form-urlencoded' },
        1 << 20,
        form.toString(),
      );
    } else {
      const basic: Record<string, string> = creds?.username
        ? {
            authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`,
          }
        : {};
      res = await this.send(url.toString(), 'GET', basic, 1 << 20);
    }
    if (res.status !== 200) return undefined;
    const body = JSON.parse(res.body.toString('utf8')) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    return token ? `Bearer ${token}` : undefined;
  }

  private send(
    url: string,
    method: string,
    headers: Record<string, string>,
    maxBytes?: number,
    body?: string,
  ): Promise<HttpResponse> {
    return httpRequest(url, {
      method,
      headers,
      ...(maxBytes !== undefined ? { maxBytes } : {}),
      ...(body !== undefined ? { body } : {}),
      ...(this.o.ca ? { ca: this.o.ca } : {}),
      ...(this.o.timeoutMs ? { timeoutMs: this.o.timeoutMs } : {}),
      ...(this.o.signal ? { signal: this.o.signal } : {}),
    });
  }
}

/** `Bearer realm="…",service="…",scope="…"` → its parameters. */
function parseChallenge(challenge: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const m of challenge.matchAll(/(\w+)="([^"]*)"/g)) {
    if (m[1] !== undefined && m[2] !== undefined) params[m[1]] = m[2];
  }
  return params;
}
