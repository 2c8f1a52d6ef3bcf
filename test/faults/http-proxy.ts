// An HTTP-level fault proxy for the API server. The TCP relay of proxy.ts cannot inject per-request
// faults there: the API server speaks TLS, and our transport keeps connections alive, so requests
// share one encrypted stream. This proxy terminates TLS on 127.0.0.1 (with the dev apiserver
// certificate, whose SANs include 127.0.0.1, so the cluster's CA still verifies it), parses each
// request, and either forwards it over its own keep-alive TLS pool or answers it with a fault —
// including the one a TCP relay cannot fake: the server executed a write, and the client never
// learned (`reset-after`).
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { seededRandom } from './proxy.js';

/** An API-level fault, injected into one request. */
export type ApiFault = '429' | '500' | '503' | 'slow' | 'reset-before' | 'reset-after' | 'timeout';

/** Every fault kind: the default of {@link HttpFaultProxyOptions.faults}. */
export const API_FAULTS: readonly ApiFault[] = [
  '429',
  '500',
  '503',
  'slow',
  'reset-before',
  'reset-after',
  'timeout',
];

export interface HttpFaultProxyOptions {
  /** The real API server, e.g. `https://127.0.0.1:6443`. */
  target: string;
  /** CA that verifies the upstream: the proxy must not hide a wrong server behind its own TLS. */
  caFile: string;
  /** Certificate and key served to clients; it must verify with the client's kubeconfig CA. */
  certFile: string;
  keyFile: string;
  /** Share of requests (0…1) that get a fault. Default 0: a transparent proxy until told otherwise. */
  rate?: number;
  /** Fault kinds to draw from. Default: {@link API_FAULTS}. */
  faults?: readonly ApiFault[];
  /** Relative weights of the kinds (default 1 each; 0 never draws that kind). */
  weights?: Partial<Record<ApiFault, number>>;
  /** Seed of the draw (print it in a suite, so a failing run can be repeated). Default 1. */
  seed?: number;
  /** Delay of a `slow` request before it is forwarded, ms. Default 2000. */
  slowMs?: number;
  /**
   * How long a `timeout` request is held before its socket is destroyed, ms. Default 90000: longer
   * than a client's usual request timeout, so it is the client's timeout that is tested.
   */
  timeoutHoldMs?: number;
  /**
   * Requests never faulted (and that take no draw), e.g. the suite's own set-up calls. `path` is the
   * request target as sent: path and query.
   */
  skip?: (req: { method: string; path: string }) => boolean;
}

/** One injected fault, in the order they were drawn. */
export interface InjectedFault {
  fault: ApiFault;
  method: string;
  path: string;
}

// Connection-scoped headers (RFC 9110 §7.6.1): they describe one hop, and the proxy's two
// connections are separate hops with their own keep-alive and framing.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const STATUS_REASONS: Record<number, string> = {
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

/**
 * A running fault proxy. Every response is piped as it arrives (nothing is buffered), so watches
 * stream through it. Upgrade requests (exec, port-forward) are not supported.
 */
export class HttpFaultProxy {
  readonly #server: https.Server;
  readonly #agent: https.Agent;
  readonly #target: URL;
  readonly #random: () => number;
  readonly #faults: readonly ApiFault[];
  readonly #weights: readonly number[];
  readonly #totalWeight: number;
  // Raw TCP sockets by client port: only they can send an RST (see #reset).
  readonly #raw = new Map<number, net.Socket>();
  readonly #sockets = new Set<net.Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #rate = 0;
  #closed = false;
  /** Faults injected so far, by kind. */
  readonly injected: Record<string, number> = {};
  /** Every injected fault, in order: two proxies with one seed must produce the same log. */
  readonly log: InjectedFault[] = [];
  port = 0;

  private constructor(private readonly options: HttpFaultProxyOptions) {
    this.#target = new URL(options.target);
    if (this.#target.protocol !== 'https:') {
      throw new Error(`http fault proxy target ${options.target} is not https://`);
    }
    this.#faults = (options.faults ?? API_FAULTS).filter((f) => (options.weights?.[f] ?? 1) > 0);
    this.#weights = this.#faults.map((f) => options.weights?.[f] ?? 1);
    this.#totalWeight = this.#weights.reduce((a, b) => a + b, 0);
    this.setRate(options.rate ?? 0);
    this.#random = seededRandom(options.seed ?? 1);
    this.#agent = new https.Agent({ keepAlive: true, ca: readFileSync(options.caFile) });
    this.#server = https.createServer(
      {
        cert: readFileSync(options.certFile),
        key: readFileSync(options.keyFile),
        // Watches outlive any request timeout; and a held `timeout` request must end only when the
        // test says so.
        requestTimeout: 0,
      },
      (req, res) => {
        this.#handle(req, res);
      },
    );
    // Longer than the server's 5 s default: a client reusing a socket just as the proxy closes it
    // gets a reset nobody injected, and a POST is not retried on it.
    this.#server.keepAliveTimeout = 60_000;
    this.#server.on('connection', (raw: net.Socket) => {
      raw.on('error', () => undefined);
      const port = raw.remotePort;
      if (port === undefined) return;
      this.#raw.set(port, raw);
      raw.once('close', () => {
        if (this.#raw.get(port) === raw) this.#raw.delete(port);
      });
    });
    this.#server.on('secureConnection', (socket: net.Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  /** Starts a proxy on 127.0.0.1 (a free port) in front of `options.target`. */
  static async start(options: HttpFaultProxyOptions): Promise<HttpFaultProxy> {
    const proxy = new HttpFaultProxy(options);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => {
        proxy.#server.off('error', reject);
        resolve();
      });
    });
    proxy.port = (proxy.#server.address() as net.AddressInfo).port;
    return proxy;
  }

  /** `https://127.0.0.1:<port>`: the `server` of a kubeconfig that goes through the proxy. */
  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** Changes the fault rate for the next requests (a test's "now the server misbehaves"). */
  setRate(rate: number): void {
    if (!(rate >= 0 && rate <= 1)) throw new Error(`fault rate ${rate} is not within 0…1`);
    if (rate > 0 && this.#totalWeight <= 0) throw new Error('fault rate > 0 but no fault kind to draw');
    this.#rate = rate;
  }

  /** Stops listening and drops every connection, held ones included, and the upstream pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const s of this.#sockets) s.destroy();
    // Connections still in their TLS handshake have no TLS socket yet.
    for (const raw of this.#raw.values()) raw.destroy();
    this.#agent.destroy();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        resolve();
      };
      try {
        this.#server.close(done);
      } catch {
        // http's idle-connection sweep trips over a connection whose raw socket was reset under
        // it (null socket); close the listening socket the plain way.
        net.Server.prototype.close.call(this.#server, done);
      }
    });
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    // A client that resets mid-request must not crash the proxy with an unhandled 'error'.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const fault = this.#draw(method, path);
    if (fault === undefined) {
      this.#forward(req, res);
      return;
    }
    this.injected[fault] = (this.injected[fault] ?? 0) + 1;
    this.log.push({ fault, method, path });
    switch (fault) {
      case '429':
        this.#answer(req, res, 429, { 'retry-after': '1' });
        return;
      case '500':
        this.#answer(req, res, 500, {});
        return;
      case '503':
        this.#answer(req, res, 503, { 'retry-after': '1' });
        return;
      case 'slow':
        this.#later(this.options.slowMs ?? 2_000, () => {
          if (!req.socket.destroyed) this.#forward(req, res);
        });
        return;
      case 'reset-before':
        this.#reset(req.socket);
        return;
      case 'reset-after':
        // A stream never completes, so "after the response" never comes: reset it at once.
        if (isStreaming(path)) this.#reset(req.socket);
        else
          this.#forward(req, res, () => {
            this.#reset(req.socket);
          });
        return;
      case 'timeout':
        // Read the request (the client sees it sent), then never answer.
        req.resume();
        this.#later(this.options.timeoutHoldMs ?? 90_000, () => req.socket.destroy());
        return;
    }
  }

  /**
   * Two draws per request whatever the rate, so the fault kind of the n-th request depends only on
   * the seed and n: changing the rate mid-run does not shift what later requests get.
   */
  #draw(method: string, path: string): ApiFault | undefined {
    if (this.options.skip?.({ method, path })) return undefined;
    const hit = this.#random();
    let pick = this.#random() * this.#totalWeight;
    if (hit >= this.#rate) return undefined;
    for (let i = 0; i < this.#faults.length; i++) {
      pick -= this.#weights[i] ?? 0;
      if (pick < 0) return this.#faults[i];
    }
    return this.#faults.at(-1);
  }

  /** Answers like the API server would (a Status body), so clients take their real error path. */
  #answer(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    code: number,
    headers: Record<string, string>,
  ): void {
    req.resume();
    const body = JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'injected by the fault proxy',
      reason: STATUS_REASONS[code] ?? '',
      code,
    });
    res.writeHead(code, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      ...headers,
    });
    res.end(body);
  }

  /**
   * Sends the request upstream and pipes the response back. With `afterResponse`, the response is
   * read to its end and dropped instead: the server has done the work, the client never hears of it.
   */
  #forward(req: http.IncomingMessage, res: http.ServerResponse, afterResponse?: () => void): void {
    const up = https.request({
      protocol: 'https:',
      hostname: this.#target.hostname,
      port: this.#target.port,
      method: req.method,
      path: req.url,
      headers: forwardHeaders(req.headers, this.#target.host),
      agent: this.#agent,
    });
    let complete = false;
    let after = afterResponse;
    const runAfter = (): void => {
      const fn = after;
      after = undefined;
      fn?.();
    };
    // A client that leaves (a closed watch) must not leave its stream open on the server.
    res.once('close', () => {
      if (!complete) up.destroy();
    });
    up.on('error', () => {
      if (this.#closed) return;
      if (afterResponse) runAfter();
      else if (!res.headersSent) this.#badGateway(res);
      else res.destroy();
    });
    up.on('response', (upRes) => {
      upRes.on('error', () => undefined);
      upRes.once('end', () => {
        complete = true;
      });
      if (afterResponse) {
        upRes.once('close', runAfter);
        upRes.resume();
        return;
      }
      // An upstream that dies mid-body must not look like a complete (truncated) response.
      upRes.once('close', () => {
        if (!complete) res.destroy();
      });
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, responseHeaders(upRes.headers));
      // A watch sends its headers long before its first event; the client must see them now.
      res.flushHeaders();
      upRes.pipe(res);
    });
    req.pipe(up);
  }

  #badGateway(res: http.ServerResponse): void {
    const body = JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'the fault proxy could not reach the API server',
      reason: 'BadGateway',
      code: 502,
    });
    res.writeHead(502, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
    });
    res.end(body);
  }

  /**
   * A TLS socket cannot reset (its handle is the TLS layer, `resetAndDestroy` throws): reset the TCP
   * socket under it, so the client sees ECONNRESET rather than a clean close it might read as EOF.
   */
  #reset(socket: net.Socket): void {
    const port = socket.remotePort;
    const raw = port === undefined ? undefined : this.#raw.get(port);
    if (raw && !raw.destroyed) raw.resetAndDestroy();
    socket.destroy();
  }

  #later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }
}

/** Watches (`watch=true|1`, the legacy `/watch/` paths) and followed logs: responses with no end. */
function isStreaming(path: string): boolean {
  const url = new URL(path, 'https://proxy.invalid');
  const watch = url.searchParams.get('watch');
  return (
    watch === 'true' ||
    watch === '1' ||
    url.searchParams.get('follow') === 'true' ||
    /^\/apis?\/(?:[^/]+\/)*watch\//.test(url.pathname)
  );
}

function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = (headers.connection ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k) && !named.includes(k)) out[k] = v;
  }
  return out;
}

/** The client's headers (Authorization included) for the upstream; Host names the real server. */
function forwardHeaders(headers: http.IncomingHttpHeaders, host: string): http.OutgoingHttpHeaders {
  return { ...withoutHopByHop(headers), host };
}

function responseHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  return withoutHopByHop(headers);
}
