// Payload encryption on the real Temporal dev server: an upgrade round-trips through the codec,
// its history holds ciphertext only, a rotated keyring still decrypts it, and the codec server
// decodes it for `temporal workflow show --codec-endpoint` (with its Authorization check and CORS).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client, type Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { startUpgrade } from '../../src/temporal/client.js';
import {
  AesGcmCodec,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  dataConverterOf,
  parseKeyring,
} from '../../src/temporal/codec.js';
import { startCodecServer } from '../../src/temporal/codec-server.js';
import type { upgradeCluster } from '../../workflows/upgrade.js';
import { demoRegistry } from '../jobs/demo.js';
import { devClusterConnection } from '../helpers/kube.js';
import {
  encodingOf,
  historyPayloads,
  isSearchAttribute,
  payloadText,
  scanBytes,
} from '../helpers/secret-scan.js';
import { demoSetup, startWorker, temporalCli, temporalClients } from '../helpers/upgrade.js';

const hexKey = (): string => randomBytes(32).toString('hex');

describe('payload codec (AES-256-GCM) and codec server', () => {
  const oldKey = hexKey();
  const newKey = hexKey();
  const keyring = parseKeyring(Buffer.from(`${oldKey}\n`), 'test keyring');
  let conn: ClusterConnection;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  let codecServer: Awaited<ReturnType<typeof startCodecServer>>;
  const auth = `Bearer ${randomBytes(16).toString('hex')}`;

  before(async () => {
    conn = await devClusterConnection();
    const dataConverter = dataConverterOf(keyring);
    ({ client, connection, native } = await temporalClients({ dataConverter }));
    ({ worker, run, taskQueue } = await startWorker(native, demoRegistry(), undefined, dataConverter));
    codecServer = await startCodecServer({
      codec: new AesGcmCodec(keyring),
      corsOrigins: ['http://ui.example'],
      authorization: auth,
    });
  });
  after(async () => {
    worker.shutdown();
    await run;
    await codecServer.close();
    conn.close();
    await connection.close();
    await native.close();
  });

  let workflowId: string;
  let configFile: string;

  it('round trip: an upgrade runs with every payload encrypted; the history holds ciphertext only', async () => {
    const s = await demoSetup(conn.client);
    configFile = s.configFile;
    const { handle } = await startUpgrade(client, s.input, taskQueue);
    workflowId = handle.workflowId;
    const result = await handle.result();
    assert.equal(result.status, 'Succeeded');

    // Read with no codec: what the server (and anyone with its database) holds.
    const raw = await temporalCli(['workflow', 'show', '-w', workflowId, '-o', 'json']);
    assert.equal(raw.code, 0, raw.stderr);
    const all = historyPayloads(JSON.parse(raw.stdout));
    const payloads = all.filter((p) => !isSearchAttribute(p));
    assert.ok(payloads.length > 10, `the history has payloads (${payloads.length})`);
    // The SDK's core writes patch markers itself, outside the codec: they hold only patch names.
    const patches = payloads.filter((p) => p.path.includes('/details/patch-data/'));
    assert.ok(patches.length > 0);
    for (const text of payloadText(patches).split('\n'))
      assert.match(text, /^\{"id":"[a-z-]+","deprecated":(true|false)\}$/);
    const plain = payloads.filter((p) => !patches.includes(p) && encodingOf(p) !== ENCRYPTED_ENCODING);
    assert.deepEqual(
      plain.map((p) => `${p.path} ${encodingOf(p)}`),
      [],
    );
    // Search attributes stay plain (the server indexes them): only names, phases and statuses.
    const attributes = new Set(all.filter(isSearchAttribute).map((p) => p.path.replace(/.*\//, '')));
    assert.deepEqual([...attributes].sort(), [
      'TemporalChangeVersion',
      'UpgradeCluster',
      'UpgradeJob',
      'UpgradePhase',
      'UpgradeStatus',
    ]);
    // Not one input value readable: the config path, the namespace, the kubeconfig path.
    const hits = scanBytes(
      Buffer.from(raw.stdout),
      [
        { name: 'config file', value: Buffer.from(s.configFile) },
        { name: 'kubeconfig', value: Buffer.from(s.input.kube?.kubeconfig ?? '') },
      ],
      'history',
    );
    assert.deepEqual(hits, []);
  });

  it('`temporal workflow show --codec-endpoint` decodes through the codec server (Authorization checked)', async () => {
    const show = (...extra: string[]) =>
      temporalCli([
        'workflow',
        'show',
        '-w',
        workflowId,
        '-o',
        'json',
        '--codec-endpoint',
        codecServer.url,
        ...extra,
      ]);
    const denied = await show();
    assert.notEqual(denied.code, 0, 'without the Authorization header the codec server refuses');
    const shown = await show('--codec-auth', auth);
    assert.equal(shown.code, 0, shown.stderr);
    const payloads = historyPayloads(JSON.parse(shown.stdout));
    assert.ok(!payloads.some((p) => encodingOf(p) === ENCRYPTED_ENCODING), 'all decoded');
    assert.ok(payloadText(payloads).includes(configFile), 'the decoded input shows the config file');
  });

  it('rotation: a keyring with a new first key still reads history written with the old one', async () => {
    const rotated = parseKeyring(Buffer.from(`${newKey}\n${oldKey}\n`), 'rotated keyring');
    const rotatedClient = new Client({ connection, dataConverter: dataConverterOf(rotated) });
    const result = await rotatedClient.workflow.getHandle<typeof upgradeCluster>(workflowId).result();
    assert.equal(result.status, 'Succeeded');
    // New payloads are written with the new key…
    const [encoded] = await new AesGcmCodec(rotated).encode([{ metadata: {}, data: Buffer.from('x') }]);
    assert.equal(Buffer.from(encoded?.metadata?.[KEY_ID_METADATA] ?? '').toString(), rotated.current.id);
    assert.notEqual(rotated.current.id, keyring.current.id);
    // …and without the old key, the history cannot be read: the error names the missing key.
    const newOnly = new Client({
      connection,
      dataConverter: dataConverterOf(parseKeyring(Buffer.from(newKey), 'new key only')),
    });
    await assert.rejects(newOnly.workflow.getHandle(workflowId).result(), (err: Error) => {
      assert.match(
        `${err.message} ${err.cause instanceof Error ? err.cause.message : ''}`,
        new RegExp(keyring.current.id),
      );
      return true;
    });
  });

  it('the codec server: CORS for the UI origin only, 401 without Authorization, 400 on bad input', async () => {
    const preflight = await fetch(`${codecServer.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://ui.example',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,x-namespace',
      },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'http://ui.example');
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /X-Namespace/);
    const other = await fetch(`${codecServer.url}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    assert.equal(other.headers.get('access-control-allow-origin'), null);

    const [enc] = await new AesGcmCodec(keyring).encode([
      { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{"a":1}') },
    ]);
    const body = JSON.stringify({
      payloads: [
        {
          metadata: Object.fromEntries(
            Object.entries(enc?.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
          ),
          data: Buffer.from(enc?.data ?? '').toString('base64'),
        },
      ],
    });
    const headers = { 'Content-Type': 'application/json', 'X-Namespace': 'default' };
    const unauth = await fetch(`${codecServer.url}/decode`, { method: 'POST', headers, body });
    assert.equal(unauth.status, 401);
    const ok = await fetch(`${codecServer.url}/decode`, {
      method: 'POST',
      headers: { ...headers, Authorization: auth, Origin: 'http://ui.example' },
      body,
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://ui.example');
    const decoded = (await ok.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    assert.equal(Buffer.from(decoded.payloads[0]?.data ?? '', 'base64').toString(), '{"a":1}');
    assert.equal(encodingOf(decoded.payloads[0] ?? { metadata: {} }), 'json/plain');
    const bad = await fetch(`${codecServer.url}/decode`, {
      method: 'POST',
      headers: { ...headers, Authorization: auth },
      body: '{"nope":1}',
    });
    assert.equal(bad.status, 400);
  });
});
