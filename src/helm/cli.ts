// The real `helm` binary, run as a child process: ks-upgrade never re-implements Helm's release
// logic (three-way merges, hooks, rollback). What this module adds is what a worker needs to run it
// safely: the binary found or a clear error, the target cluster's credentials in a private 0600
// file that is deleted afterwards (never on the command line, never in logs), no HELM_KUBE* or
// HELM_DRIVER from the worker's environment steering it elsewhere, bounded output, heartbeats
// while it runs, and cancellation that lets helm record its own failure.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { KsUpgradeError, ValidationError } from '../errors.js';
import { loadKubeConfig, type KubeTarget } from '../kube/connect.js';

/** The oldest Helm this project supports: `--plain-http` and `--dry-run=server` arrived in 3.13. */
export const MIN_HELM_VERSION = { major: 3, minor: 13 } as const;

/** The three ways to get a helm binary, for every "helm is missing" message. */
export const HELM_INSTALL_HINT =
  'get a helm binary (Helm v3.13+ or v4) in one of three ways: install it on the worker’s PATH ' +
  '(https://helm.sh/docs/intro/install/); build the pinned one with ' +
  '`GOTOOLCHAIN=local go install helm.sh/helm/v4/cmd/helm@v4.3.2` (in a checkout: `deploy/dev/install helm`); ' +
  'or set upgrade.helm.binary to the path of a helm you already have';

/** No usable helm binary. */
export class HelmNotFoundError extends ValidationError {}

/** The helm binary is older than {@link MIN_HELM_VERSION} (or says no version). */
export class HelmVersionError extends ValidationError {}

/** helm exited non-zero (or was stopped). The message carries the end of its stderr. */
export class HelmCommandError extends KsUpgradeError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    options?: { hint?: string },
  ) {
    const last = stderr.trim().split('\n').slice(-6).join('\n');
    super(`${command} failed (exit ${exitCode ?? 'signal'}): ${last || 'no output'}`, options);
  }
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/**
 * The helm binary to run: the configured path, else `helm` on PATH. Missing → a
 * {@link HelmNotFoundError} that names the three ways to get one.
 */
export async function findHelmBinary(
  configured: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (configured !== undefined) {
    if (await isExecutableFile(configured)) return path.resolve(configured);
    throw new HelmNotFoundError(`upgrade.helm.binary is ${configured}, which is not an executable file`, {
      hint: HELM_INSTALL_HINT,
    });
  }
  const dirs = (env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.join(dir, 'helm');
    if (await isExecutableFile(candidate)) return candidate;
  }
  throw new HelmNotFoundError(
    `no helm binary: upgrade.helm.binary is not set and there is no helm on the worker's PATH (${dirs.join(path.delimiter) || 'empty'})`,
    { hint: HELM_INSTALL_HINT },
  );
}

/** `v3.14.2` / `v4.3.2+g1a2b3c` → numbers; undefined when it is not a Helm version. */
export function parseHelmVersion(text: string): { major: number; minor: number; patch: number } | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(text.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

// Variables that would point helm at another cluster, namespace, identity or storage driver than
// the one this upgrade targets, or make it print values and manifests into the worker's logs.
const STEERING_ENV = /^(HELM_KUBE.*|HELM_NAMESPACE|HELM_DRIVER.*|HELM_DEBUG)$/;

/** The environment helm runs with: the worker's, minus what would steer it, plus the kubeconfig. */
export function helmEnvironment(base: NodeJS.ProcessEnv, kubeconfig: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(base)) if (!STEERING_ENV.test(key)) env[key] = value;
  env.KUBECONFIG = kubeconfig;
  return env;
}

type Cluster = NonNullable<ReturnType<KubeConfig['getCurrentCluster']>>;
type User = NonNullable<ReturnType<KubeConfig['getCurrentUser']>>;

function definedOnly(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null));
}

function clusterEntry(c: Cluster): Record<string, unknown> {
  return definedOnly({
    server: c.server,
    'certificate-authority-data': c.caData,
    'certificate-authority': c.caFile,
    'insecure-skip-tls-verify': c.skipTLSVerify ? true : undefined,
    'tls-server-name': c.tlsServerName,
    'proxy-url': c.proxyUrl,
  });
}

function userEntry(u: User | null): Record<string, unknown> {
  if (!u) return {};
  // client-node models the in-cluster service account token as an auth provider of its own; in a
  // kubeconfig it is `tokenFile` (read by helm on every request, so rotation keeps working).
  const provider = u.authProvider as { name?: string; config?: Record<string, string> } | undefined;
  if (provider?.name === 'tokenFile' && provider.config?.tokenFile) {
    return { tokenFile: provider.config.tokenFile };
  }
  return definedOnly({
    'client-certificate-data': u.certData,
    'client-certificate': u.certFile,
    'client-key-data': u.keyData,
    'client-key': u.keyFile,
    token: u.token,
    username: u.username,
    password: u.password,
    exec: u.exec,
    'auth-provider': u.authProvider as unknown,
    as: u.impersonateUser,
  });
}

/**
 * A kubeconfig with only the target's context (cluster and user), so helm cannot reach any other
 * cluster of a multi-context kubeconfig, and an in-cluster worker's service account works too.
 */
export function targetKubeconfig(target: KubeTarget): string {
  const kc = loadKubeConfig(target);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ValidationError('the kubeconfig selects no cluster', { hint: 'check --context' });
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'target', cluster: clusterEntry(cluster) }],
    users: [{ name: 'target', user: userEntry(kc.getCurrentUser()) }],
    contexts: [{ name: 'target', context: { cluster: 'target', user: 'target' } }],
    'current-context': 'target',
  });
}

const WORKDIR_PREFIX = 'ks-upgrade-helm-';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the work dirs of worker processes that died (SIGKILL skips `finally`), so a kubeconfig
 * never outlives its worker for longer than the next helm step. Dirs of live processes are kept.
 */
async function sweepDeadWorkdirs(root: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${WORKDIR_PREFIX}(\\d+)-`).exec(name);
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) {
      await rm(path.join(root, name), { recursive: true, force: true });
    }
  }
}

/** What one helm command gave back. */
export interface HelmOutput {
  stdout: string;
  stderr: string;
}

export interface HelmRunOptions {
  /** Stops helm (SIGTERM, so it records a failed release itself; SIGKILL 30 s later). */
  signal?: AbortSignal;
  /** Called every `tickMs` while helm runs (activities heartbeat here). */
  onTick?: () => void;
  tickMs?: number;
  /** Largest stdout accepted (release JSON, CRDs); more fails the command. Default 64 MiB. */
  maxStdoutBytes?: number;
}

const STDERR_KEEP = 16 * 1024;

/**
 * A helm binary bound to one target cluster, with a private work dir (mode 0700) holding that
 * cluster's kubeconfig (0600), pulled charts and generated values. {@link close} deletes it.
 */
export class HelmSession {
  private constructor(
    readonly binary: string,
    readonly version: string,
    /** The private work dir: put pulled charts and values files here. */
    readonly dir: string,
    private readonly kubeconfig: string,
    private readonly baseEnv: NodeJS.ProcessEnv,
  ) {}

  /** Finds helm, checks its version and writes the target's kubeconfig into a fresh work dir. */
  static async open(options: {
    binary?: string;
    kube: KubeTarget;
    env?: NodeJS.ProcessEnv;
    tmpRoot?: string;
  }): Promise<HelmSession> {
    const env = options.env ?? process.env;
    const binary = await findHelmBinary(options.binary, env);
    const root = options.tmpRoot ?? tmpdir();
    await sweepDeadWorkdirs(root);
    // mkdtemp makes the directory 0700: only this user can list or read what is inside.
    const dir = await mkdtemp(path.join(root, `${WORKDIR_PREFIX}${process.pid}-`));
    try {
      const kubeconfig = path.join(dir, 'kubeconfig');
      await writeFile(kubeconfig, targetKubeconfig(options.kube), { mode: 0o600, flag: 'wx' });
      const session = new HelmSession(binary, '', dir, kubeconfig, env);
      const { stdout } = await session.run(['version', '--template', '{{.Version}}']);
      const version = parseHelmVersion(stdout);
      if (
        !version ||
        version.major < MIN_HELM_VERSION.major ||
        (version.major === MIN_HELM_VERSION.major && version.minor < MIN_HELM_VERSION.minor)
      ) {
        throw new HelmVersionError(
          `${binary} is helm ${stdout.trim() || '(no version)'}; ks-upgrade needs v${MIN_HELM_VERSION.major}.${MIN_HELM_VERSION.minor} or newer`,
          { hint: HELM_INSTALL_HINT },
        );
      }
      return new HelmSession(binary, stdout.trim(), dir, kubeconfig, env);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Deletes the work dir (kubeconfig, charts, values). Safe to call twice. */
  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Runs `helm <args>`; non-zero exit → {@link HelmCommandError}. Args must never hold secrets. */
  async run(args: string[], options: HelmRunOptions = {}): Promise<HelmOutput> {
    const command = `helm ${args.slice(0, 2).join(' ')}`;
    const maxStdout = options.maxStdoutBytes ?? 64 * 1024 * 1024;
    return new Promise<HelmOutput>((resolve, reject) => {
      const child = spawn(this.binary, args, {
        env: helmEnvironment(this.baseEnv, this.kubeconfig),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      let outBytes = 0;
      let err = '';
      let overflow = false;
      let killTimer: NodeJS.Timeout | undefined;
      const stop = (): void => {
        child.kill('SIGTERM');
        killTimer ??= setTimeout(() => child.kill('SIGKILL'), 30_000);
      };
      child.stdout.on('data', (chunk: Buffer) => {
        outBytes += chunk.length;
        if (outBytes > maxStdout) {
          overflow = true;
          stop();
          return;
        }
        out.push(chunk);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        err = (err + chunk.toString('utf8')).slice(-STDERR_KEEP);
      });
      const ticker = options.onTick ? setInterval(options.onTick, options.tickMs ?? 5000) : undefined;
      const onAbort = (): void => {
        stop();
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (): void => {
        if (ticker) clearInterval(ticker);
        if (killTimer) clearTimeout(killTimer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      child.on('error', (e) => {
        finish();
        reject(new HelmCommandError(command, null, e.message, { hint: HELM_INSTALL_HINT }));
      });
      child.on('close', (code) => {
        finish();
        if (overflow) {
          reject(new HelmCommandError(command, code, `output larger than ${maxStdout} bytes`));
        } else if (code !== 0) {
          reject(new HelmCommandError(command, code, err));
        } else {
          resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: err });
        }
      });
    });
  }
}
