// A small fault proxy on 127.0.0.1 for the fault-injection suite: a TCP relay in front of a real
// server (the S3 server, the API server) that can stall every connection (accepted, nothing
// forwarded — a server that hangs), reset them, or refuse new ones; and, for plain-HTTP targets,
// answer a configured share of requests itself with 429 (Retry-After), 500, 503, a slow response,
// a reset or a timeout. Faults are drawn from a seeded generator so a run can be repeated.
import net from 'node:net';

/** What the proxy does with traffic right now. */
export type ProxyMode = 'pass' | 'stall' | 'reset' | 'refuse';

/** An HTTP-level fault, injected instead of forwarding one request. */
export type HttpFault = '429' | '500' | '503' | 'slow' | 'reset' | 'timeout';

export interface FaultProxyOptions {
  /** `host:port` of the real server. */
  target: string;
  /**
   * Inject HTTP faults into this share of requests (0…1). Only for plain-HTTP targets: each
   * request must start a new connection (the relay does not parse keep-alive streams).
   */
  httpFaultRate?: number;
  httpFaults?: readonly HttpFault[];
  /** Seed of the fault draw (printed by the suite so a run can be repeated). */
  seed?: number;
  /** Delay of a `slow` fault before the request is forwarded, ms. */
  slowMs?: number;
}

/** A seeded PRNG (mulberry32): the same seed gives the same faults. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  held: { to: net.Socket; chunk: Buffer }[];
}

/** A running fault proxy. */
export class FaultProxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<Pair>();
  readonly #targetHost: string;
  readonly #targetPort: number;
  readonly #random: () => number;
  #mode: ProxyMode = 'pass';
  /** Faults injected so far, by kind (the suite's `faults injected N`). */
  readonly injected: Record<string, number> = {};
  port = 0;

  private constructor(private readonly options: FaultProxyOptions) {
    const [host, port] = splitHostPort(options.target);
    this.#targetHost = host;
    this.#targetPort = port;
    this.#random = seededRandom(options.seed ?? 1);
    this.#server = net.createServer((client) => {
      this.#accept(client);
    });
  }

  /** Starts a proxy on 127.0.0.1 (a free port) in front of `options.target`. */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => {
        resolve();
      });
    });
    proxy.port = (proxy.#server.address() as net.AddressInfo).port;
    return proxy;
  }

  /** `127.0.0.1:<port>`. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  /**
   * Switches the mode for open and new connections. `stall` holds every byte (delivered in order
   * when the mode goes back to `pass`); `reset` destroys open connections and resets new ones;
   * `refuse` closes the listening socket's new connections at once.
   */
  setMode(mode: ProxyMode): void {
    if (mode !== this.#mode) this.#count(`mode:${mode}`);
    this.#mode = mode;
    if (mode === 'reset') for (const p of [...this.#pairs]) this.#destroy(p, true);
    if (mode === 'pass') {
      for (const p of this.#pairs) {
        for (const h of p.held.splice(0)) h.to.write(h.chunk);
      }
    }
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    for (const p of [...this.#pairs]) this.#destroy(p, false);
    await new Promise<void>((resolve) =>
      this.#server.close(() => {
        resolve();
      }),
    );
  }

  #count(kind: string): void {
    this.injected[kind] = (this.injected[kind] ?? 0) + 1;
  }

  #accept(client: net.Socket): void {
    client.on('error', () => undefined);
    if (this.#mode === 'refuse' || this.#mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const rate = this.options.httpFaultRate ?? 0;
    const faults = this.options.httpFaults ?? [];
    if (rate > 0 && faults.length > 0 && this.#random() < rate) {
      const fault = faults[Math.floor(this.#random() * faults.length)] ?? '500';
      this.#count(`http:${fault}`);
      if (this.#injectHttp(client, fault)) return;
    }
    const upstream = net.connect(this.#targetPort, this.#targetHost);
    upstream.on('error', () => undefined);
    const pair: Pair = { client, upstream, held: [] };
    this.#pairs.add(pair);
    const relay = (from: net.Socket, to: net.Socket): void => {
      from.on('data', (chunk: Buffer) => {
        if (this.#mode === 'stall') pair.held.push({ to, chunk });
        else to.write(chunk);
      });
      from.on('end', () => to.end());
      from.on('close', () => {
        this.#destroy(pair, false);
      });
    };
    relay(client, upstream);
    relay(upstream, client);
  }

  /** Answers one connection with `fault`; false when the request should be forwarded after all. */
  #injectHttp(client: net.Socket, fault: HttpFault): boolean {
    const answer = (status: string, headers: string): void => {
      const body = `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected by the fault proxy","code":${status.slice(0, 3)}}`;
      client.end(
        `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${headers}Connection: close\r\n\r\n${body}`,
      );
    };
    switch (fault) {
      case '429':
        answer('429 Too Many Requests', 'Retry-After: 1\r\n');
        return true;
      case '500':
        answer('500 Internal Server Error', '');
        return true;
      case '503':
        answer('503 Service Unavailable', 'Retry-After: 1\r\n');
        return true;
      case 'reset':
        client.once('data', () => client.resetAndDestroy());
        return true;
      case 'timeout':
        // Read the request and never answer: the client's own timeout must end it.
        client.on('data', () => undefined);
        setTimeout(() => client.destroy(), 120_000).unref();
        return true;
      case 'slow':
        client.pause();
        setTimeout(() => {
          client.resume();
        }, this.options.slowMs ?? 3_000).unref();
        return false;
    }
  }

  #destroy(pair: Pair, reset: boolean): void {
    if (!this.#pairs.delete(pair)) return;
    if (reset) {
      pair.client.resetAndDestroy();
      pair.upstream.resetAndDestroy();
    } else {
      pair.client.destroy();
      pair.upstream.destroy();
    }
  }
}

function splitHostPort(target: string): [string, number] {
  const url = /^[a-z]+:\/\//i.test(target) ? new URL(target) : new URL(`tcp://${target}`);
  const port = Number(url.port);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`fault proxy target ${target} has no port`);
  return [url.hostname, port];
}
