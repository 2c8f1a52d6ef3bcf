// The HTTP fault proxy in front of a real kube-apiserver, driven through our own transport: what
// each fault does on the server (was the write applied?) and what the transport makes of it
// (which requests it retries, how long it waits). The server side is always checked directly, not
// through the proxy.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import { ConfigMapResource, NamespaceResource, type ConfigMap } from '../../src/api/core.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { connectCluster, type ClusterConnection } from '../../src/kube/connect.js';
import { KubeApiError } from '../../src/kube/errors.js';
import { KubeUnreachableError, type TransportOptions } from '../../src/kube/transport.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { devEnv } from '../helpers/env.js';
import { HttpFaultProxy, type HttpFaultProxyOptions } from './http-proxy.js';

const NS = 'faults';
// setTimeout may fire a millisecond early on a coarse clock; the bounds below are lower bounds only.
const SLACK_MS = 25;

interface Kubeconfig {
  clusters: { name: string; cluster: { server: string } }[];
  users: { name: string; user: { token?: string } }[];
}

let cluster: EphemeralCluster;
let direct: ResourceClient;
let kubeconfigText: string;
let token: string;
let ca: Buffer;
let tmp: string;
const proxies: HttpFaultProxy[] = [];
const connections: ClusterConnection[] = [];

function pki(name: string): string {
  return path.join(devEnv().stateDir, 'pki', name);
}

async function startProxy(options: Partial<HttpFaultProxyOptions> = {}): Promise<HttpFaultProxy> {
  const proxy = await HttpFaultProxy.start({
    target: cluster.connection.server,
    caFile: pki('ca.crt'),
    certFile: pki('apiserver.crt'),
    keyFile: pki('apiserver.key'),
    ...options,
  });
  proxies.push(proxy);
  return proxy;
}

/** Our own client, through the proxy: the cluster's kubeconfig with only `server` changed. */
async function clientVia(proxy: HttpFaultProxy, options?: TransportOptions): Promise<ResourceClient> {
  const kc = yaml.load(kubeconfigText) as Kubeconfig;
  for (const c of kc.clusters) c.cluster.server = proxy.url;
  const file = path.join(tmp, `proxy-${proxy.port}-${connections.length}.kubeconfig`);
  await writeFile(file, yaml.dump(kc), { mode: 0o600 });
  const conn = await connectCluster({ kubeconfig: file }, options);
  connections.push(conn);
  return conn.client;
}

function configMap(name: string): ConfigMap {
  return { metadata: { name, namespace: NS }, data: { k: 'v' } };
}

async function elapsed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, performance.now() - t0];
}

/** The error's network code, through KubeUnreachableError's cause. */
function causeCode(err: unknown): string | undefined {
  const cause = err instanceof Error ? err.cause : undefined;
  return (cause as NodeJS.ErrnoException | undefined)?.code;
}

interface RawResult {
  status?: number;
  code?: string;
}

/** One request on a fresh connection, with no retry: what the proxy itself answered. */
function rawRequest(proxy: HttpFaultProxy, method: string, target: string): Promise<RawResult> {
  return new Promise((resolve) => {
    const r = https.request(
      proxy.url + target,
      { method, ca, agent: false, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } },
      (res) => {
        res.resume();
        res.on('error', (err: NodeJS.ErrnoException) => {
          resolve({ code: err.code ?? err.message });
        });
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0 });
        });
      },
    );
    r.on('error', (err: NodeJS.ErrnoException) => {
      resolve({ code: err.code ?? err.message });
    });
    r.end();
  });
}

interface WatchEvent {
  type: string;
  object: { metadata?: { name?: string } };
}

/**
 * Opens a watch through the proxy and resolves with the first event for `name`. Resolving at all
 * proves the stream is piped: a watch response never ends, so a buffering proxy would never deliver.
 */
function watchFor(
  proxy: HttpFaultProxy,
  target: string,
  name: string,
): { opened: Promise<number>; event: Promise<WatchEvent> } {
  let opened!: (status: number) => void;
  const openedP = new Promise<number>((resolve) => (opened = resolve));
  const event = new Promise<WatchEvent>((resolve, reject) => {
    const r = https.get(
      proxy.url + target,
      { ca, agent: false, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } },
      (res) => {
        opened(res.statusCode ?? 0);
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            const ev = JSON.parse(line) as WatchEvent;
            if (ev.object.metadata?.name === name) {
              resolve(ev);
              r.destroy();
            }
          }
        });
        res.on('error', () => undefined);
      },
    );
    r.on('error', reject);
  });
  return { opened: openedP, event };
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'http-fault-proxy-'));
  cluster = await startEphemeralCluster('hfproxy');
  direct = cluster.connection.client;
  kubeconfigText = await readFile(cluster.kubeconfig, 'utf8');
  const kc = yaml.load(kubeconfigText) as Kubeconfig;
  token = kc.users[0]?.user.token ?? '';
  assert.ok(token, 'the dev kubeconfig has a token user');
  ca = await readFile(pki('ca.crt'));
  await direct.create(NamespaceResource, { metadata: { name: NS } });
});

after(async () => {
  for (const p of proxies) await p.close();
  for (const c of connections) c.close();
  await cluster.remove();
  await rm(tmp, { recursive: true, force: true });
});

/** A `skip` that faults only the first request (of `method`, when named): every later one passes. */
function allButFirst(method?: string): (req: { method: string }) => boolean {
  let seen = false;
  return (req) => {
    if (method !== undefined && req.method !== method) return true;
    if (seen) return true;
    seen = true;
    return false;
  };
}

describe('HTTP fault proxy in front of kube-apiserver', () => {
  it('passes requests and watches through at rate 0, and faults them after setRate(1)', async () => {
    const proxy = await startProxy({ faults: ['500'] });
    const kube = await clientVia(proxy);
    const created = await kube.create(ConfigMapResource, configMap('pass'));
    assert.equal(created.metadata.namespace, NS);
    assert.deepEqual((await kube.get(ConfigMapResource, 'pass', NS)).data, { k: 'v' });
    const names = (await kube.listAll(ConfigMapResource, { namespace: NS })).map((c) => c.metadata.name);
    assert.ok(names.includes('pass'), `list through the proxy: ${names.join(', ')}`);
    await kube.delete(ConfigMapResource, 'pass', NS);
    assert.equal(await direct.tryGet(ConfigMapResource, 'pass', NS), undefined);

    const rv = (await direct.listPage(ConfigMapResource, { namespace: NS })).metadata.resourceVersion ?? '';
    const watch = watchFor(
      proxy,
      `/api/v1/namespaces/${NS}/configmaps?watch=true&resourceVersion=${rv}`,
      'watched',
    );
    assert.equal(await watch.opened, 200);
    await direct.create(ConfigMapResource, configMap('watched'));
    const ev = await watch.event;
    assert.equal(ev.type, 'ADDED');
    assert.deepEqual(proxy.log, []);

    proxy.setRate(1);
    await assert.rejects(kube.create(ConfigMapResource, configMap('after-rate')), (err: unknown) => {
      assert.ok(err instanceof KubeApiError);
      assert.equal(err.status, 500);
      return true;
    });
    assert.deepEqual(proxy.injected, { '500': 1 });
  });

  it('429: the transport retries any method after Retry-After, 5 times, then gives up', async () => {
    const always = await startProxy({ rate: 1, faults: ['429'] });
    const kube = await clientVia(always);
    const [err, ms] = await elapsed(() =>
      kube.create(ConfigMapResource, configMap('throttled')).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    assert.ok(err instanceof KubeApiError, String(err));
    assert.equal(err.status, 429);
    assert.match(err.message, /injected by the fault proxy/);
    // 1 attempt + 5 retries, each after Retry-After: 1 s.
    assert.equal(always.injected['429'], 6);
    assert.ok(ms >= 5_000 - SLACK_MS, `gave up after ${Math.round(ms)} ms`);
    assert.equal(await direct.tryGet(ConfigMapResource, 'throttled', NS), undefined);

    // Only the first request is throttled: the retried POST creates the object, once.
    const once = await startProxy({ rate: 1, faults: ['429'], skip: allButFirst() });
    const kube2 = await clientVia(once);
    const [created, ms2] = await elapsed(() => kube2.create(ConfigMapResource, configMap('throttled-once')));
    assert.equal(created.metadata.name, 'throttled-once');
    assert.ok(ms2 >= 1_000 - SLACK_MS, `succeeded after ${Math.round(ms2)} ms`);
    assert.deepEqual(once.log, [
      { fault: '429', method: 'POST', path: `/api/v1/namespaces/${NS}/configmaps?fieldManager=ks-upgrade` },
    ]);
    assert.ok(await direct.tryGet(ConfigMapResource, 'throttled-once', NS));
  });

  it('reset-after: a POST is applied on the server, the client gets a reset and does not retry', async () => {
    const proxy = await startProxy({ rate: 1, faults: ['reset-after'] });
    const kube = await clientVia(proxy);
    await assert.rejects(kube.create(ConfigMapResource, configMap('applied')), (err: unknown) => {
      assert.ok(err instanceof KubeUnreachableError, String(err));
      assert.equal(causeCode(err), 'ECONNRESET');
      return true;
    });
    // Writes are never retried on a network error: one request reached the proxy.
    assert.equal(proxy.injected['reset-after'], 1);
    const onServer = await direct.tryGet(ConfigMapResource, 'applied', NS);
    assert.ok(onServer, 'the create was executed although the client saw a reset');
    // A caller-level retry has to expect its own write.
    proxy.setRate(0);
    const again = await kube.createIfAbsent(ConfigMapResource, configMap('applied'));
    assert.equal(again.created, false);
    assert.equal(again.object.metadata.uid, onServer.metadata.uid);

    // Reads are retried on resets: 4 attempts, all reset.
    const reads = await startProxy({ rate: 1, faults: ['reset-after'] });
    const kube2 = await clientVia(reads);
    await assert.rejects(kube2.get(ConfigMapResource, 'applied', NS), KubeUnreachableError);
    assert.equal(reads.injected['reset-after'], 4);

    // A watch has no end to wait for: it is reset at once (were it forwarded and awaited, this
    // request would hang until the API server ends the watch).
    const watch = await rawRequest(reads, 'GET', `/api/v1/namespaces/${NS}/configmaps?watch=true`);
    assert.equal(watch.code, 'ECONNRESET');
    assert.equal(reads.injected['reset-after'], 5);
  });

  it('an update carrying its resourceVersion is sent again after a reset, and succeeds', async () => {
    await direct.create(ConfigMapResource, configMap('updated'));
    // Only the first PUT is faulted (the GETs of the read-modify-write pass).
    const proxy = await startProxy({ rate: 1, faults: ['reset-after'], skip: allButFirst('PUT') });
    const kube = await clientVia(proxy);
    // Without the resend the caller would see the reset (KubeUnreachableError) although the server
    // applied the change. Sent again, the PUT meets the resourceVersion its first copy changed
    // (409), and the read-modify-write reads again and finds the change there.
    await kube.mutate(ConfigMapResource, 'updated', NS, (cm) => {
      cm.data = { ...cm.data, state: 'migrated' };
    });
    assert.equal(proxy.injected['reset-after'], 1, 'the first PUT was applied, its answer lost');
    assert.equal((await direct.get(ConfigMapResource, 'updated', NS)).data?.state, 'migrated');
  });

  it('a delete is sent again after a reset: the second finds the object gone', async () => {
    await direct.create(ConfigMapResource, configMap('deleted'));
    const proxy = await startProxy({ rate: 1, faults: ['reset-after'], skip: allButFirst('DELETE') });
    const kube = await clientVia(proxy);
    // Without the resend the caller would see the reset although the server deleted the object.
    assert.equal(await kube.delete(ConfigMapResource, 'deleted', NS), false, 'already gone on the resend');
    assert.equal(proxy.injected['reset-after'], 1);
    assert.equal(await direct.tryGet(ConfigMapResource, 'deleted', NS), undefined);
  });

  it('reset-before: nothing reaches the server', async () => {
    const proxy = await startProxy({ rate: 1, faults: ['reset-before'] });
    const kube = await clientVia(proxy);
    await assert.rejects(kube.create(ConfigMapResource, configMap('never')), (err: unknown) => {
      assert.ok(err instanceof KubeUnreachableError, String(err));
      assert.equal(causeCode(err), 'ECONNRESET');
      return true;
    });
    assert.equal(proxy.injected['reset-before'], 1);
    assert.equal(await direct.tryGet(ConfigMapResource, 'never', NS), undefined);
    await assert.rejects(kube.get(ConfigMapResource, 'never', NS), KubeUnreachableError);
    assert.equal(proxy.injected['reset-before'], 1 + 4);
  });

  it('500 and 503 are answered by the proxy: nothing is created; only a GET is retried on them', async () => {
    for (const code of ['500', '503'] as const) {
      const proxy = await startProxy({ rate: 1, faults: [code] });
      const kube = await clientVia(proxy);
      const name = `status-${code}`;
      await assert.rejects(kube.create(ConfigMapResource, configMap(name)), (err: unknown) => {
        assert.ok(err instanceof KubeApiError, String(err));
        assert.equal(err.status, Number(code));
        assert.match(err.message, /injected by the fault proxy/);
        return true;
      });
      assert.deepEqual(proxy.injected, { [code]: 1 }, `POST ${code} is not retried`);
      assert.equal(await direct.tryGet(ConfigMapResource, name, NS), undefined);
    }

    await direct.create(ConfigMapResource, configMap('read-after-503'));
    for (const code of ['500', '503'] as const) {
      const once = await startProxy({ rate: 1, faults: [code], skip: allButFirst() });
      const kube = await clientVia(once);
      const [got, ms] = await elapsed(() => kube.get(ConfigMapResource, 'read-after-503', NS));
      assert.equal(got.metadata.name, 'read-after-503');
      assert.ok(ms >= 1_000 - SLACK_MS, `GET retried after ${Math.round(ms)} ms`);
      assert.deepEqual(once.injected, { [code]: 1 });
    }
  });

  it('a POST that only asks (idempotent) is sent again after a reset or a 5xx', async () => {
    for (const fault of ['reset-before', 'reset-after', '500'] as const) {
      const once = await startProxy({ rate: 1, faults: [fault], skip: allButFirst() });
      const kube = await clientVia(once);
      const res = await kube.transport.request({
        method: 'POST',
        idempotent: true,
        path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: { verb: 'get', resource: 'configmaps', namespace: NS } },
        },
      });
      assert.equal(res.status, 201, `${fault}: ${res.text.slice(0, 200)}`);
      assert.deepEqual(once.injected, { [fault]: 1 });
    }
  });

  it('slow: forwarded after slowMs, and succeeds', async () => {
    const proxy = await startProxy({ rate: 1, faults: ['slow'], slowMs: 1_500 });
    const kube = await clientVia(proxy);
    const [created, ms] = await elapsed(() => kube.create(ConfigMapResource, configMap('slow')));
    assert.equal(created.metadata.name, 'slow');
    assert.ok(ms >= 1_500 - SLACK_MS, `took ${Math.round(ms)} ms`);
    assert.deepEqual(proxy.injected, { slow: 1 });
    assert.ok(await direct.tryGet(ConfigMapResource, 'slow', NS));
  });

  it('timeout: held until timeoutHoldMs, or until close()', async () => {
    const proxy = await startProxy({ rate: 1, faults: ['timeout'], timeoutHoldMs: 300 });
    const t0 = performance.now();
    const held = await rawRequest(proxy, 'GET', `/api/v1/namespaces/${NS}/configmaps`);
    assert.equal(held.code, 'ECONNRESET', 'a destroyed socket is a hang-up for the client');
    assert.ok(performance.now() - t0 >= 300 - SLACK_MS);

    // The transport's own timeout ends it first, and ETIMEDOUT is retried for reads.
    const kube = await clientVia(proxy, { timeoutMs: 100 });
    await assert.rejects(kube.get(ConfigMapResource, 'x', NS), (err: unknown) => {
      assert.ok(err instanceof KubeUnreachableError, String(err));
      assert.equal(causeCode(err), 'ETIMEDOUT');
      return true;
    });
    assert.equal(proxy.injected.timeout, 1 + 4);

    const forever = await startProxy({ rate: 1, faults: ['timeout'] });
    const pending = rawRequest(forever, 'GET', `/api/v1/namespaces/${NS}/configmaps`);
    await waitFor(() => forever.injected.timeout === 1, 'the request to be held');
    await forever.close();
    assert.equal((await pending).code, 'ECONNRESET');
  });

  it('is seeded: the same seed and requests give the same faults', async () => {
    const options: Partial<HttpFaultProxyOptions> = {
      rate: 0.5,
      faults: ['429', '500', '503', 'reset-before', 'slow'],
      weights: { slow: 2 },
      slowMs: 20,
    };
    const run = async (seed: number): Promise<{ proxy: HttpFaultProxy; results: RawResult[] }> => {
      const proxy = await startProxy({ ...options, seed });
      const results: RawResult[] = [];
      for (let i = 0; i < 20; i++) {
        results.push(await rawRequest(proxy, 'GET', `/api/v1/namespaces/${NS}/configmaps/seed-${i}`));
      }
      return { proxy, results };
    };
    const a = await run(42);
    const b = await run(42);
    assert.deepEqual(b.proxy.log, a.proxy.log);
    assert.deepEqual(b.proxy.injected, a.proxy.injected);
    assert.deepEqual(b.results, a.results);
    assert.ok(
      a.proxy.log.length > 0 && a.proxy.log.length < 20,
      `${a.proxy.log.length} of 20 faulted at rate 0.5`,
    );
    // The ones not faulted (and the slow ones) reached the server: 404, the objects do not exist.
    const forwarded = a.results.filter((r) => r.status === 404).length;
    assert.equal(forwarded, 20 - a.proxy.log.length + (a.proxy.injected.slow ?? 0));
    const c = await run(7);
    assert.notDeepEqual(c.proxy.log, a.proxy.log);
  });
});
