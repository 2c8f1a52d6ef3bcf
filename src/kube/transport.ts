import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { KsUpgradeError, type Outage } from '../errors.js';
import { sleep } from '../util/concurrency.js';

/** One HTTP request to the API server; `path` starts with `/api` or `/apis`. */
export interface KubeRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** Serialised as JSON unless it already is a string. */
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /**
   * Sending the request twice does no more than sending it once, so it may be sent again after a
   * network error or a 5xx. Default: see {@link isIdempotent}; POSTs that only ask
   * (SelfSubjectAccessReview) say so here.
   */
  idempotent?: boolean;
}

export interface KubeResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Raw body text; JSON for API responses, plain text for some 404s. */
  text: string;
}

/**
 * GET changes nothing; a DELETE sent twice finds the object gone (404, which the client takes as
 * "already deleted"); a PUT that carries the resourceVersion it read is refused with 409 the
 * second time if the first one was applied (the client's read-modify-write then reads again).
 * A create (POST) or a PATCH is not: the first may have been applied, and the second would fail
 * or apply twice — the step's own idempotence handles those on its retry.
 */
export function isIdempotent(req: Pick<KubeRequest, 'method' | 'body'>): boolean {
  if (req.method === 'GET' || req.method === 'DELETE') return true;
  if (req.method !== 'PUT' || typeof req.body !== 'object' || req.body === null) return false;
  const meta = (req.body as { metadata?: { resourceVersion?: unknown } }).metadata;
  return typeof meta?.resourceVersion === 'string' && meta.resourceVersion !== '';
}

/** Server errors an idempotent request is sent again after (with Retry-After, or 1 s). */
const RETRYABLE_STATUS = new Set([500, 502, 503, 504]);

/** The API server could not be reached or did not answer (network level, no HTTP status). */
export class KubeUnreachableError extends KsUpgradeError {
  /** The API server, and a `/readyz` probe of it (see waitOutOutage). */
  outage: Outage | undefined;
}

/** Options of the shared connection pool. */
export interface TransportOptions {
  /** Sockets kept per API server. Bounds parallel requests from one process. */
  maxSockets?: number;
  /** Per-request timeout (no response bytes for this long), ms. */
  timeoutMs?: number;
  userAgent?: string;
}

/** How long auth headers from the kubeconfig are reused before asking it again (token rotation). */
const AUTH_REFRESH_MS = 30_000;
const RETRYABLE_NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']);

/**
 * HTTP transport to one API server over one keep-alive agent. @kubernetes/client-node 1.x creates
 * a new agent (so a new TLS connection) for every request; listing thousands of objects that way
 * exhausts sockets. Auth still comes from the KubeConfig (tokens, token files, exec plugins, client
 * certificates), so every kubeconfig the official client accepts works here too.
 */
export class KubeTransport {
  readonly server: string;
  private readonly agent: http.Agent;
  private readonly isHttps: boolean;
  private authHeaders: Record<string, string> = {};
  private authFetchedAt = 0;

  private constructor(
    private readonly kc: KubeConfig,
    server: string,
    agent: http.Agent,
    private readonly options: Required<TransportOptions>,
  ) {
    this.server = server.replace(/\/+$/, '');
    this.isHttps = this.server.startsWith('https:');
    this.agent = agent;
  }

  /** Builds the transport for the kubeconfig's current context. */
  static async create(kc: KubeConfig, options: TransportOptions = {}): Promise<KubeTransport> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) {
      throw new KsUpgradeError(`kubeconfig context '${kc.getCurrentContext()}' has no cluster`, {
        hint: 'pick a context that exists (--context) or fix the kubeconfig',
      });
    }
    const opts: https.RequestOptions = {};
    // Resolves CA/cert/key files and the auth headers once; the agent it also builds is discarded.
    await kc.applyToHTTPSOptions(opts);
    const tls: https.AgentOptions = {
      keepAlive: true,
      maxSockets: options.maxSockets ?? 16,
      ...(opts.ca === undefined ? {} : { ca: opts.ca }),
      ...(opts.cert === undefined ? {} : { cert: opts.cert }),
      ...(opts.key === undefined ? {} : { key: opts.key }),
      ...(opts.pfx === undefined ? {} : { pfx: opts.pfx }),
      ...(opts.passphrase === undefined ? {} : { passphrase: opts.passphrase }),
      ...(cluster.skipTLSVerify ? { rejectUnauthorized: false } : {}),
      ...(cluster.tlsServerName ? { servername: cluster.tlsServerName } : {}),
    };
    const agent = cluster.server.startsWith('https:')
      ? new https.Agent(tls)
      : new http.Agent({ keepAlive: true, maxSockets: tls.maxSockets });
    const transport = new KubeTransport(kc, cluster.server, agent, {
      maxSockets: options.maxSockets ?? 16,
      timeoutMs: options.timeoutMs ?? 60_000,
      userAgent: options.userAgent ?? 'ks-upgrade',
    });
    transport.setAuth(opts);
    return transport;
  }

  private setAuth(opts: https.RequestOptions): void {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (typeof v === 'string' || typeof v === 'number') headers[k] = String(v);
    }
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    this.authHeaders = headers;
    this.authFetchedAt = Date.now();
  }

  private async auth(force = false): Promise<Record<string, string>> {
    if (force || Date.now() - this.authFetchedAt > AUTH_REFRESH_MS) {
      const opts: https.RequestOptions = {};
      await this.kc.applyToHTTPSOptions(opts);
      this.setAuth(opts);
    }
    return this.authHeaders;
  }

  /** One `GET /readyz` without retries: does the API server answer and say it is ready? */
  async ready(): Promise<boolean> {
    try {
      const res = await this.send({ method: 'GET', path: '/readyz' }, await this.auth(false));
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /**
   * Sends the request. Network failures and 5xx answers of idempotent requests ({@link isIdempotent})
   * are retried a few times (a kept-alive socket can be closed by the server between requests, an
   * API server restarts); creates and patches are not, because the server may have applied them —
   * the callers' conflict/exists checks make a retry at their level safe instead.
   */
  async request(req: KubeRequest): Promise<KubeResponse> {
    const idempotent = req.idempotent ?? isIdempotent(req);
    const maxNetworkAttempts = idempotent ? 4 : 1;
    let networkFailures = 0;
    let throttled = 0;
    let authRefreshed = false;
    for (;;) {
      let res: KubeResponse;
      try {
        res = await this.send(req, await this.auth(false));
      } catch (err) {
        networkFailures++;
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (req.signal?.aborted) throw req.signal.reason;
        if (RETRYABLE_NETWORK_CODES.has(code) && networkFailures < maxNetworkAttempts) {
          await sleep(100 * 2 ** networkFailures, req.signal);
          continue;
        }
        const msg = err instanceof Error ? err.message : String(err);
        const unreachable = new KubeUnreachableError(`${req.method} ${this.server}${req.path}: ${msg}`, {
          hint: 'check that the API server is reachable and the kubeconfig points at it',
          cause: err,
        });
        unreachable.outage = { server: `the API server ${this.server}`, probe: () => this.ready() };
        throw unreachable;
      }
      // A rotated token: ask the kubeconfig once more before giving up.
      if (res.status === 401 && !authRefreshed) {
        authRefreshed = true;
        await this.auth(true);
        continue;
      }
      // 429 means the server did not process the request, so even a write can be resent; a 5xx
      // (etcd leader change, a restarting aggregated API) only a request that changes nothing.
      if ((res.status === 429 || (RETRYABLE_STATUS.has(res.status) && idempotent)) && throttled < 5) {
        throttled++;
        const retryAfter = Number(res.headers['retry-after'] ?? '1');
        await sleep(Math.min(Number.isFinite(retryAfter) ? retryAfter : 1, 10) * 1000, req.signal);
        continue;
      }
      return res;
    }
  }

  private send(req: KubeRequest, auth: Record<string, string>): Promise<KubeResponse> {
    const url = new URL(this.server + req.path);
    for (const [k, v] of Object.entries(req.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const body =
      req.body === undefined ? undefined : typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': this.options.userAgent,
      ...auth,
    };
    if (body !== undefined) {
      headers['Content-Type'] = req.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const lib = this.isHttps ? https : http;
    return new Promise<KubeResponse>((resolve, reject) => {
      const r = lib.request(
        url,
        {
          method: req.method,
          headers,
          agent: this.agent,
          timeout: this.options.timeoutMs,
          signal: req.signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            });
          });
        },
      );
      r.on('timeout', () => r.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      r.on('error', reject);
      if (body !== undefined) r.write(body);
      r.end();
    });
  }

  /** Closes idle keep-alive sockets (lets the process exit promptly). */
  close(): void {
    this.agent.destroy();
  }
}
