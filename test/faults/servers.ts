// The fault suite's own etcd and kube-apiservers. Restarting the dev etcd would break every other
// test of the run, so each scenario gets an etcd and a host + member pair of its own, started
// from the same pinned binaries and dev PKI as deploy/dev. Each API server writes an audit log of
// the writes it served: the suite's proof that no create or delete happened twice.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import https from 'node:https';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectCluster } from '../../src/kube/connect.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { devEnv, repoRoot, uniqueName } from '../helpers/env.js';

const run = promisify(execFile);

/**
 * Every process the suite started and has not seen exit: killed when this process exits, so an
 * interrupted suite (Ctrl-C, `kill`, a test timeout) leaves no etcd, API server or worker behind.
 */
const live = new Set<number>();
process.on('exit', () => {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

/** Kills `pid` when this process exits, unless {@link forget} was called for it first. */
export function killOnExit(pid: number | undefined): void {
  if (pid !== undefined) live.add(pid);
}

export function forget(pid: number | undefined): void {
  if (pid !== undefined) live.delete(pid);
}

/** Only writes are audited (reads would grow the log by orders of magnitude, and say nothing here). */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, delete, deletecollection, update, patch]
  - level: None
`;

const REVIEW_GROUPS = new Set(['authorization.k8s.io', 'authentication.k8s.io']);

/** One write the API server answered, from its audit log. */
export interface AuditWrite {
  verb: string;
  /** `<group>/<resource>` (core: `/<resource>`), with the subresource after a `/` when there is one. */
  resource: string;
  namespace: string;
  name: string;
  code: number;
  userAgent: string;
}

interface Binaries {
  etcd: string;
  apiserver: string;
  advertise: string[];
}

let binaries: Promise<Binaries> | undefined;

/** The pinned binaries deploy/dev installed, and the advertise flag it would use. */
function findBinaries(): Promise<Binaries> {
  binaries ??= (async () => {
    const { stdout } = await run(
      'bash',
      ['-c', 'source deploy/dev/lib.sh; etcd_bin; kube_apiserver_bin; advertise_args; echo'],
      { cwd: repoRoot },
    );
    const [etcd = '', apiserver = '', adv = ''] = stdout.split('\n');
    return { etcd, apiserver, advertise: adv.trim() ? [adv.trim()] : [] };
  })();
  return binaries;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) =>
    s.close(() => {
      r();
    }),
  );
  return port;
}

/** A server process of the suite: started, stopped (SIGKILL or SIGTERM) and started again on its port. */
class Server {
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    private readonly command: () => Promise<string[]>,
    private readonly logFile: string,
    private readonly ready: () => Promise<boolean>,
  ) {}

  async start(): Promise<void> {
    const [bin = '', ...args] = await this.command();
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    this.#child = child;
    killOnExit(child.pid);
    child.once('exit', () => {
      forget(child.pid);
    });
    this.#exited = new Promise((resolve) =>
      child.once('exit', () => {
        resolve();
      }),
    );
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${this.name} exited during start-up; log: ${this.logFile}`);
      }
      if (await this.ready().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`${this.name} not ready after 120 s; log: ${this.logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** SIGTERM (a clean shutdown) or SIGKILL (a crash); resolves when the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** An etcd and two API servers (host, member) of one scenario, with audit logs. */
export class FaultServers {
  readonly etcd: Server;
  readonly apiservers = new Map<string, Server>();
  readonly clusters: EphemeralCluster[] = [];

  private constructor(
    readonly dir: string,
    private readonly etcdPort: number,
    peerPort: number,
  ) {
    this.etcd = new Server(
      'etcd',
      async () => {
        const b = await findBinaries();
        return [
          b.etcd,
          '--name=faults',
          `--data-dir=${path.join(dir, 'etcd')}`,
          `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
          `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
          `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-cluster=faults=http://127.0.0.1:${peerPort}`,
          '--unsafe-no-fsync',
          '--log-level=warn',
        ];
      },
      path.join(dir, 'etcd.log'),
      async () => (await fetch(`http://127.0.0.1:${etcdPort}/health`)).ok,
    );
  }

  /** Starts etcd, then a host and a member API server; names are unique to this call. */
  static async start(label: string): Promise<FaultServers> {
    const dir = await mkdtemp(path.join(tmpdir(), `ks-upgrade-faults-${label}-`));
    const s = new FaultServers(dir, await freePort(), await freePort());
    await writeFile(path.join(dir, 'audit-policy.yaml'), AUDIT_POLICY);
    await s.etcd.start();
    // Started side by side, kept in order: clusters[0] is the host, clusters[1] the member.
    const pair = await Promise.all(['host', 'member'].map((role) => s.#addApiserver(`${label}-${role}`)));
    s.clusters.push(...pair);
    return s;
  }

  async #addApiserver(prefix: string): Promise<EphemeralCluster> {
    const name = uniqueName(prefix).slice(0, 40).replace(/-+$/, '');
    const pki = path.join(devEnv().stateDir, 'pki');
    const port = await freePort();
    await mkdir(path.join(this.dir, name), { recursive: true });
    const token = (await readFile(path.join(pki, 'admin.token'), 'utf8')).trim();
    const ca = await readFile(path.join(pki, 'ca.crt'));
    const server = new Server(
      `kube-apiserver ${name}`,
      async () => {
        const b = await findBinaries();
        return [
          b.apiserver,
          `--etcd-servers=http://127.0.0.1:${this.etcdPort}`,
          `--etcd-prefix=/registry-${name}`,
          '--bind-address=127.0.0.1',
          `--secure-port=${port}`,
          `--cert-dir=${pki}`,
          `--tls-cert-file=${path.join(pki, 'apiserver.crt')}`,
          `--tls-private-key-file=${path.join(pki, 'apiserver.key')}`,
          '--service-cluster-ip-range=10.0.0.0/24',
          `--service-account-issuer=https://127.0.0.1:${port}/`,
          `--service-account-key-file=${path.join(pki, 'sa.pub')}`,
          `--service-account-signing-key-file=${path.join(pki, 'sa.key')}`,
          `--token-auth-file=${path.join(pki, 'tokens.csv')}`,
          '--authorization-mode=RBAC',
          '--disable-admission-plugins=ServiceAccount',
          '--allow-privileged=true',
          `--audit-policy-file=${path.join(this.dir, 'audit-policy.yaml')}`,
          `--audit-log-path=${this.auditLog(name)}`,
          '--audit-log-format=json',
          '--audit-log-mode=blocking',
          ...b.advertise,
          '--v=0',
        ];
      },
      path.join(this.dir, name, 'apiserver.log'),
      async () => {
        const status = await new Promise<number>((resolve, reject) => {
          const req = https.get(
            `https://127.0.0.1:${port}/api/v1/namespaces/default`,
            { ca, headers: { Authorization: `Bearer ${token}` }, timeout: 5_000 },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('error', reject);
          req.on('timeout', () => {
            req.destroy(new Error('timeout'));
          });
        });
        return status === 200;
      },
    );
    this.apiservers.set(name, server);
    await server.start();
    const kubeconfig = path.join(this.dir, name, 'kubeconfig');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `  - name: ${name}`,
        '    cluster:',
        `      server: https://127.0.0.1:${port}`,
        `      certificate-authority: ${path.join(pki, 'ca.crt')}`,
        'users:',
        '  - name: admin',
        '    user:',
        `      token: ${token}`,
        'contexts:',
        `  - name: ${name}`,
        '    context:',
        `      cluster: ${name}`,
        '      user: admin',
        `current-context: ${name}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    // The stand-ins and the fixture write as a test user agent: the audit check counts only the
    // upgrade's own writes (user agent `ks-upgrade`).
    const connection = await connectCluster({ kubeconfig }, { userAgent: 'ks-upgrade-test-fixture' });
    return {
      name,
      kubeconfig,
      connection,
      remove: async () => {
        connection.close();
        await server.stop();
      },
    };
  }

  /** The host's and the member's cluster, in that order. */
  get pair(): [EphemeralCluster, EphemeralCluster] {
    const [h, m] = this.clusters;
    if (!h || !m) throw new Error('the fault servers are not started');
    return [h, m];
  }

  auditLog(cluster: string): string {
    return path.join(this.dir, cluster, 'audit.log');
  }

  /** Stops an API server, keeps it down for `downMs`, starts it again on the same port. */
  async restartApiserver(cluster: string, downMs = 0, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const s = this.apiservers.get(cluster);
    if (!s) throw new Error(`no API server ${cluster}`);
    await s.stop(signal);
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await s.start();
  }

  /** Kills etcd and starts it again on its data: every API server loses its storage meanwhile. */
  async restartEtcd(downMs = 0): Promise<void> {
    await this.etcd.stop('SIGKILL');
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.etcd.start();
  }

  /** The successful and failed writes the API server of `cluster` logged. */
  async auditWrites(cluster: string): Promise<AuditWrite[]> {
    let text: string;
    try {
      text = await readFile(this.auditLog(cluster), 'utf8');
    } catch {
      return [];
    }
    const out: AuditWrite[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      const e = JSON.parse(line) as {
        stage: string;
        verb: string;
        requestURI?: string;
        userAgent?: string;
        objectRef?: {
          resource?: string;
          apiGroup?: string;
          namespace?: string;
          name?: string;
          subresource?: string;
        };
        responseStatus?: { code?: number };
      };
      if (e.stage !== 'ResponseComplete' || !e.objectRef) continue;
      const r = e.objectRef;
      // Questions, not objects: a review is "created" and answered, nothing is stored; a dry run
      // stores nothing either. Asking twice is harmless (a retried preflight asks again).
      if (REVIEW_GROUPS.has(r.apiGroup ?? '') || /[?&]dryRun=/.test(e.requestURI ?? '')) continue;
      out.push({
        verb: e.verb,
        resource: `${r.apiGroup ?? ''}/${r.resource ?? ''}${r.subresource ? `/${r.subresource}` : ''}`,
        namespace: r.namespace ?? '',
        name: r.name ?? '',
        code: e.responseStatus?.code ?? 0,
        userAgent: e.userAgent ?? '',
      });
    }
    return out;
  }

  /** Stops everything and removes the data. */
  async stop(): Promise<void> {
    for (const c of this.clusters) await c.remove();
    await this.etcd.stop('SIGKILL');
    await rm(this.dir, { recursive: true, force: true });
  }
}
