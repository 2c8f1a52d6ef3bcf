// The Temporal codec-server protocol over HTTP, for the Temporal UI (`--ui-codec-endpoint`, or
// its Data Encoder setting) and the `temporal` CLI (`--codec-endpoint`): POST /encode and
// POST /decode take and return `{"payloads":[{"metadata":{k: base64},"data": base64}]}`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';

/** Largest request body accepted: Temporal's own payload limit is 2 MiB, a history page holds many. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Origins allowed to call from a browser (the Temporal UI's, e.g. http://127.0.0.1:8233); `*` for any. */
  corsOrigins?: string[];
  /** When set, the exact `Authorization` header value every request must carry. */
  authorization?: string;
  /** When set, only these Temporal namespaces (the `X-Namespace` header) are served. */
  namespaces?: string[];
  /** Logs one line per request (no payload content). */
  log?: (line: string) => void;
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function fromJson(p: unknown): Payload {
  if (typeof p !== 'object' || p === null) throw new HttpError(400, 'a payload is not an object');
  const { metadata: meta, data } = p as { metadata?: Record<string, unknown>; data?: unknown };
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(meta ?? {})) {
    if (typeof v !== 'string') throw new HttpError(400, `metadata ${k} is not base64 text`);
    metadata[k] = Buffer.from(v, 'base64');
  }
  if (data !== undefined && typeof data !== 'string') throw new HttpError(400, 'data is not base64 text');
  return { metadata, data: Buffer.from(data ?? '', 'base64') };
}

function toJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    metadata[k] = Buffer.from(v).toString('base64');
  }
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sameSecret(given: string | undefined, expected: string): boolean {
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(expected);
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

/** The request handler (exported for servers that mount it themselves). */
export function codecRequestHandler(o: CodecServerOptions) {
  const origins = new Set(o.corsOrigins ?? []);
  const cors = (req: IncomingMessage, res: ServerResponse): void => {
    const origin = req.headers.origin;
    if (!origin || !(origins.has('*') || origins.has(origin))) return;
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Vary', 'Origin');
    // The UI's "include cross-origin credentials" setting sends cookies: allowed for listed origins.
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
    res.setHeader('Access-Control-Max-Age', '600');
  };
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://codec');
    let status = 200;
    try {
      cors(req, res);
      // A preflight carries no credentials by design; the request that follows is checked.
      if (req.method === 'OPTIONS') {
        status = 204;
        res.writeHead(204).end();
        return;
      }
      if (url.pathname === '/healthz' && req.method === 'GET') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
        return;
      }
      const op = url.pathname.replace(/\/+$/, '');
      if (op !== '/encode' && op !== '/decode') throw new HttpError(404, 'POST /encode or /decode');
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      if (o.authorization !== undefined && !sameSecret(req.headers.authorization, o.authorization)) {
        throw new HttpError(401, 'missing or wrong Authorization header');
      }
      const ns = req.headers['x-namespace'];
      if (o.namespaces && !(typeof ns === 'string' && o.namespaces.includes(ns))) {
        throw new HttpError(403, `namespace ${String(ns ?? '(none)')} is not served here`);
      }
      let body: { payloads?: unknown };
      try {
        body = JSON.parse(await readBody(req)) as { payloads?: unknown };
      } catch (err) {
        if (err instanceof HttpError) throw err;
        throw new HttpError(400, 'the body is not JSON');
      }
      if (!Array.isArray(body.payloads)) throw new HttpError(400, 'the body has no payloads array');
      const payloads = (body.payloads as unknown[]).map(fromJson);
      let out: Payload[];
      try {
        out = op === '/encode' ? await o.codec.encode(payloads) : await o.codec.decode(payloads);
      } catch (err) {
        throw new HttpError(422, (err as Error).message);
      }
      res
        .writeHead(200, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ payloads: out.map(toJson) }));
    } catch (err) {
      status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof Error ? err.message : String(err);
      if (!res.headersSent) res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(`${message}\n`);
    } finally {
      o.log?.(
        `${req.method ?? '?'} ${url.pathname} ${status} ns=${String(req.headers['x-namespace'] ?? '-')} ${Date.now() - started}ms`,
      );
    }
  };
}

/** Starts a codec server on `host:port` (port 0: any free port); resolves with its URL. */
export async function startCodecServer(
  o: CodecServerOptions & { host?: string; port?: number },
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const handler = codecRequestHandler(o);
  const server = createServer((req, res) => {
    void handler(req, res);
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => {
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    server,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
