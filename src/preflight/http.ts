// One HTTP(S) exchange with bounded size and time, for the preflight's reads of registries and
// chart repositories (node:http directly: a private CA must be settable per request).
import http from 'node:http';
import https from 'node:https';
import { KsUpgradeError } from '../errors.js';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Largest body read (default 64 KiB); a larger one fails the request. */
  maxBytes?: number;
  timeoutMs?: number;
  /** Extra CA certificates (PEM) for HTTPS. */
  ca?: string | Buffer;
  signal?: AbortSignal;
}

/** The server could not be reached, or did not answer in time (network level). */
export class UnreachableError extends KsUpgradeError {}

/** Sends one request; redirects are followed (up to 5), dropping `authorization` across hosts. */
export function httpRequest(url: string, o: HttpRequestOptions = {}, redirects = 0): Promise<HttpResponse> {
  const maxBytes = o.maxBytes ?? 64 << 10;
  const headers = o.headers ?? {};
  return new Promise((resolve, reject) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      reject(new KsUpgradeError(`'${url}' is not a URL`));
      return;
    }
    const mod = target.protocol === 'http:' ? http : https;
    const req = mod.request(
      target,
      {
        method: o.method ?? 'GET',
        headers: { 'user-agent': 'ks-upgrade-preflight', ...headers },
        timeout: o.timeoutMs ?? 15_000,
        ...(o.ca && target.protocol === 'https:' ? { ca: o.ca } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (status >= 300 && status < 400 && location && redirects < 5) {
          res.resume();
          const next = new URL(location, target);
          const kept =
            next.host === target.host
              ? headers
              : Object.fromEntries(
                  Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'),
                );
          httpRequest(next.toString(), { ...o, headers: kept }, redirects + 1).then(resolve, reject);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) {
            req.destroy(new KsUpgradeError(`${target.host}: response larger than ${maxBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          resolve({ status, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new UnreachableError(`${target.host}: no answer within the timeout`)),
    );
    req.on('error', (err) => {
      reject(
        err instanceof KsUpgradeError
          ? err
          : new UnreachableError(`${target.host}: ${err.message}`, { cause: err }),
      );
    });
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}
