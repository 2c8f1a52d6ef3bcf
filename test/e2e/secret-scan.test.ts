// The secret scan: after the full default upgrade (S3 store, storage encryption on, payload codec
// on), driven the way an operator does it (`ks-upgrade worker` and `ks-upgrade run` processes with
// JSON logs), no secret the test planted is found in any workflow history (raw or decoded), in the
// worker's and the CLI's output, in the store's raw bytes or in the Temporal database — in plain,
// hex or base64 form. The same scan finds them where they are meant to be, so it can fail.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import * as yaml from 'js-yaml';
import { SecretResource } from '../../src/api/core.js';
import { AesGcmCodec, dataConverterOf, parseKeyring } from '../../src/temporal/codec.js';
import { startCodecServer } from '../../src/temporal/codec-server.js';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import { upgradeWorkflowId } from '../../src/upgrade/input.js';
import type { upgradeCluster } from '../../workflows/upgrade.js';
import { devEnv, repoRoot, uniqueName } from '../helpers/env.js';
import { passGateAndFinish, prepareFullUpgrade, type FullUpgradeFixture } from '../helpers/full-upgrade.js';
import {
  historyPayloads,
  payloadText,
  scanBytes,
  scanTree,
  type PlantedSecret,
  type SecretHit,
} from '../helpers/secret-scan.js';

const execFileP = promisify(execFile);
const BIN = path.join(repoRoot, 'bin/ks-upgrade.js');
/** Secret values shorter than this also occur by chance (`true`, `admin`): not scanned. */
const MIN_SECRET_BYTES = 8;

/** Runs `ks-upgrade …` to completion; its whole output goes to `logFile` too. */
async function ksUpgrade(args: string[], logFile: string): Promise<{ code: number; output: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number>((resolve) => {
    child.on('exit', (c) => {
      resolve(c ?? 1);
    });
  });
  await writeFile(logFile, output, { flag: 'a' });
  return { code, output };
}

describe('secret scan after the full default upgrade', () => {
  const env = devEnv();
  const prefix = `${uniqueName('secret-scan')}/`;
  let fx: FullUpgradeFixture;
  let temporal: DevServer;
  let dbDir: string;
  let codecKeyFile: string;
  let codecKey: Buffer;
  let workerProc: ChildProcess;
  let workerLog: string;
  let cliLog: string;
  let connection: Connection;
  let client: Client;
  let codecServer: Awaited<ReturnType<typeof startCodecServer>>;
  const taskQueue = uniqueName('scan');
  const fixtureSecrets: PlantedSecret[] = [];

  before(async () => {
    fx = await prepareFullUpgrade({
      storage: {
        s3: {
          endpoint: env.s3Endpoint.replace('http://', ''),
          disableSSL: true,
          forcePathStyle: true,
          region: env.s3Region,
          bucket: env.s3Bucket,
          prefix,
          // Inline, as in the original's config: the hardest case for keeping them out of history.
          accessKeyID: env.s3AccessKeyId,
          secretAccessKey: env.s3SecretAccessKey,
        },
      },
    });
    // Every Secret value of the fixture fleet, read before the upgrade touches anything.
    for (const c of [fx.host, fx.member]) {
      for (const s of await c.connection.client.listAll(SecretResource)) {
        for (const [k, v] of Object.entries(s.data ?? {})) {
          const value = Buffer.from(v, 'base64');
          // The app store's minio access key ID is the dev S3 server's, which is also its bucket's
          // name (public by design, like any access key ID); its secret key is planted.
          if (value.byteLength >= MIN_SECRET_BYTES && !value.equals(Buffer.from(env.s3AccessKeyId))) {
            fixtureSecrets.push({
              name: `Secret ${s.metadata.namespace ?? ''}/${s.metadata.name ?? ''} ${k}`,
              value,
            });
          }
        }
      }
    }
    codecKey = randomBytes(32);
    codecKeyFile = path.join(fx.dir, 'codec.key');
    await writeFile(codecKeyFile, `${codecKey.toString('hex')}\n`, { mode: 0o600 });
    dbDir = path.join(fx.dir, 'temporal');
    temporal = await startDevServer({
      binary: env.temporalCliPath,
      dbFile: path.join(dbDir, 'temporal.db'),
      headless: true,
      logFile: path.join(fx.dir, 'temporal-server.log'),
    });
    const keyring = parseKeyring(Buffer.from(codecKey.toString('hex')), 'scan codec key');
    connection = await Connection.connect({ address: temporal.address });
    client = new Client({ connection, dataConverter: dataConverterOf(keyring) });
    codecServer = await startCodecServer({ codec: new AesGcmCodec(keyring) });
    workerLog = path.join(fx.dir, 'worker.log');
    cliLog = path.join(fx.dir, 'cli.log');
    const common = [
      '--temporal-address',
      temporal.address,
      '--task-queue',
      taskQueue,
      '--codec-key-file',
      codecKeyFile,
    ];
    workerProc = spawn(process.execPath, [BIN, 'worker', ...common, '--log-format', 'json', '-v'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = createWriteStream(workerLog);
    workerProc.stdout?.pipe(out);
    workerProc.stderr?.pipe(out);
    const started = await ksUpgrade(
      [
        'run',
        ...common,
        '--config',
        fx.configFile,
        '--kubeconfig',
        fx.host.kubeconfig,
        '--cluster',
        fx.host.name,
        '--gate',
        'detect',
        '--heartbeat-timeout',
        '20s',
        '--detach',
        '--log-format',
        'json',
      ],
      cliLog,
    );
    assert.equal(started.code, 0, started.output);
    const handle = client.workflow.getHandle<typeof upgradeCluster>(upgradeWorkflowId(fx.host.name));
    const result = await passGateAndFinish(fx, handle);
    assert.equal(result.status, 'Succeeded');
    const status = await ksUpgrade(['status', fx.host.name, ...common, '--json'], cliLog);
    assert.equal(status.code, 0, status.output);
    workerProc.kill('SIGTERM');
    await new Promise((resolve) => workerProc.once('exit', resolve));
  });
  after(async () => {
    if (workerProc.exitCode === null) workerProc.kill('SIGKILL');
    await codecServer.close();
    await connection.close();
    await temporal.stop();
    await fx.stop();
  });

  const planted = async (): Promise<PlantedSecret[]> => {
    const kubeconfig = yaml.load(await readFile(fx.host.kubeconfig, 'utf8')) as {
      users?: { user?: { token?: string } }[];
    };
    const tokens = (kubeconfig.users ?? []).flatMap((u) => (u.user?.token ? [u.user.token] : []));
    assert.ok(tokens.length > 0, 'the fixture kubeconfig has a token');
    return [
      // The access key ID of the dev S3 server is its bucket's name, public by design: the secret key is planted.
      { name: 'S3 secretAccessKey', value: Buffer.from(env.s3SecretAccessKey) },
      { name: 'storage encryption key', value: await readFile(fx.keyFile) },
      { name: 'codec key', value: codecKey },
      ...tokens.map((t) => ({ name: 'kubeconfig token', value: Buffer.from(t) })),
      ...fixtureSecrets,
    ];
  };

  const temporalCli = async (args: string[]): Promise<string> => {
    const { stdout } = await execFileP(env.temporalCliPath, [...args, '--address', temporal.address], {
      maxBuffer: 256 * 1024 * 1024,
      timeout: 120_000,
    });
    return stdout;
  };

  it('finds no planted secret anywhere, and finds them where they are meant to be', async () => {
    const secrets = await planted();
    assert.ok(
      fixtureSecrets.length >= 5,
      `the fixture has Secret values to plant (${fixtureSecrets.length})`,
    );
    const hits: SecretHit[] = [];

    // Every workflow history, raw (what the server holds) and decoded (what the codec server shows).
    const list = JSON.parse(await temporalCli(['workflow', 'list', '-o', 'json'])) as {
      execution: { workflowId: string; runId: string };
    }[];
    assert.ok(list.length >= 1, 'the upgrade left a history');
    for (const { execution } of list) {
      const show = ['workflow', 'show', '-w', execution.workflowId, '-r', execution.runId, '-o', 'json'];
      const raw = await temporalCli(show);
      hits.push(...scanBytes(Buffer.from(raw), secrets, `history ${execution.workflowId} (raw)`));
      const decoded = await temporalCli([...show, '--codec-endpoint', codecServer.url]);
      const payloads = historyPayloads(JSON.parse(decoded));
      assert.ok(payloads.length > 50, `the decoded history has payloads (${payloads.length})`);
      hits.push(...scanBytes(Buffer.from(decoded), secrets, `history ${execution.workflowId} (decoded)`));
      hits.push(
        ...scanBytes(
          Buffer.from(payloadText(payloads)),
          secrets,
          `history ${execution.workflowId} (decoded data)`,
        ),
      );
    }

    // The worker's and the CLI's output.
    const workerOut = await readFile(workerLog);
    const cliOut = await readFile(cliLog);
    hits.push(...scanBytes(workerOut, secrets, 'worker log'), ...scanBytes(cliOut, secrets, 'CLI output'));

    // The store's raw bytes (the S3 server's files) and the Temporal database (stopped: all flushed).
    const store = await scanTree(path.join(env.stateDir, 's3', env.s3Bucket, prefix), secrets);
    assert.ok(store.files > 20, `the upgrade backed up into the bucket (${store.files} files)`);
    await temporal.stop();
    const db = await scanTree(dbDir, secrets);
    assert.ok(db.files >= 1, 'the Temporal database file exists');
    hits.push(...store.hits, ...db.hits);

    assert.deepEqual(
      hits,
      [],
      `planted secrets found:\n${hits.map((h) => `${h.secret} (${h.form}) in ${h.where}`).join('\n')}`,
    );

    // The scan itself works: it finds the token in the kubeconfig, the codec key (hex) in its file,
    // and a Secret's value in the Secret as the API server returns it (base64).
    const control = [
      ...scanBytes(await readFile(fx.host.kubeconfig), secrets, 'kubeconfig'),
      ...scanBytes(await readFile(codecKeyFile), secrets, 'codec key file'),
    ];
    const [first] = fixtureSecrets;
    const all = [
      ...(await fx.host.connection.client.listAll(SecretResource)),
      ...(await fx.member.connection.client.listAll(SecretResource)),
    ];
    const sample = all.find((s) =>
      Object.values(s.data ?? {}).some((v) => first && Buffer.from(v, 'base64').equals(first.value)),
    );
    control.push(...scanBytes(Buffer.from(JSON.stringify(sample)), secrets, 'Secret object'));
    const found = new Set(control.map((h) => `${h.secret}/${h.form}`));
    assert.ok(found.has('kubeconfig token/plain'), [...found].join(', '));
    assert.ok(found.has('codec key/hex'), [...found].join(', '));
    assert.ok(first && [...found].some((f) => f.startsWith(`${first.name}/base64`)), [...found].join(', '));
  });

  it('logs ship as JSON: every activity line names the workflow, run, cluster, job, phase and attempt', async () => {
    const lines = (await readFile(workerLog, 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.length > 20, `the worker logged JSON lines (${lines.length})`);
    const activityLines = lines.filter((l) => l.activityType !== undefined);
    assert.ok(activityLines.length > 10, `activity lines (${activityLines.length})`);
    for (const l of activityLines) {
      for (const field of ['time', 'level', 'msg', 'workflowId', 'runId', 'cluster', 'attempt']) {
        assert.ok(l[field] !== undefined, `${field} missing in ${JSON.stringify(l)}`);
      }
      assert.equal(l.cluster, fx.host.name);
      assert.equal(l.taskToken, undefined, 'no task token in logs');
    }
    const stepLines = activityLines.filter((l) => l.activityType === 'runJobPhase');
    assert.ok(stepLines.length > 10, `job step lines (${stepLines.length})`);
    // The SDK logs "Activity started" before it decodes the request: job and phase are known after.
    for (const l of stepLines.filter((x) => x.msg !== 'Activity started')) {
      assert.ok(typeof l.job === 'string' && typeof l.phase === 'string', JSON.stringify(l));
    }
  });
});
