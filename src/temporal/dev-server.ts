// The embedded default: a local Temporal dev server (the pinned Temporal CLI) with its state in a
// SQLite file, so an upgrade interrupted by a crash resumes from the same workflow on the next run.
import { execFile, spawn } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { KsUpgradeError } from '../errors.js';
import { sleep } from '../util/concurrency.js';
import { SEARCH_ATTRIBUTE_NAMES } from '../../workflows/search-attributes.js';

const run = promisify(execFile);

/** The Temporal CLI version the dev server must be (its SQLite files are not portable across versions). */
export const TEMPORAL_CLI_VERSION = '1.5.1';

/** Where `deploy/dev/install` builds the Temporal CLI. */
export function pinnedTemporalCliPath(env: NodeJS.ProcessEnv = process.env): string {
  const tools =
    env.KS_UPGRADE_TOOLS_DIR ??
    path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'ks-upgrade/tools');
  return path.join(tools, `temporal-${TEMPORAL_CLI_VERSION}`, 'temporal');
}

/**
 * The `temporal` binary of the embedded default: KS_UPGRADE_TEMPORAL_CLI, else the pinned build in
 * the tool cache, else the first `temporal` on PATH (brew, the official installer), so a user needs
 * no Go toolchain. With none of them, the pinned path (startDevServer then says how to get one).
 */
export function defaultTemporalCliPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KS_UPGRADE_TEMPORAL_CLI) return env.KS_UPGRADE_TEMPORAL_CLI;
  const pinned = pinnedTemporalCliPath(env);
  if (isExecutable(pinned)) return pinned;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir || '.', 'temporal');
    if (dir && isExecutable(candidate)) return candidate;
  }
  return pinned;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** How to get a Temporal CLI, for the error when there is none. */
export const TEMPORAL_CLI_INSTALL_HINT =
  'install the Temporal CLI in one of three ways: `brew install temporal`; ' +
  'the official installer (`curl -sSf https://temporal.download/cli.sh | sh`, then put ~/.temporalio/bin on PATH); ' +
  'or, in a clone of ks-upgrade with Go installed, `npm run dev:install` (builds the pinned version). ' +
  'Or set KS_UPGRADE_TEMPORAL_CLI to its path, or pass --temporal-address of an existing Temporal service';

export interface DevServerOptions {
  /** The `temporal` binary. */
  binary: string;
  /** SQLite file holding all workflow state. Its directory is created (mode 0700). */
  dbFile: string;
  port?: number;
  uiPort?: number;
  /** Without the web UI. */
  headless?: boolean;
  logFile?: string;
  /** Keep running after this process exits (the CLI's embedded server); default false. */
  detached?: boolean;
  /** Start-up bound, ms (default 60 s: a cold start on a busy 2-core machine takes a few seconds). */
  startTimeoutMs?: number;
}

export interface DevServer {
  address: string;
  uiUrl: string | undefined;
  pid: number;
  /** SIGTERM, then SIGKILL after 10 s; resolves when the process is gone. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True once the frontend answers a health check. */
export async function isServing(binary: string, address: string): Promise<boolean> {
  try {
    const { stdout } = await run(binary, ['operator', 'cluster', 'health', '--address', address], {
      timeout: 10_000,
    });
    return stdout.includes('SERVING');
  } catch {
    return false;
  }
}

/** Detached servers this process has spawned and not yet seen serving (see {@link stopServersBeingStarted}). */
const starting = new Set<number>();

/**
 * Kills the detached servers this process is still starting (SIGTERM). For a process that must
 * exit at once (a second Ctrl-C) before it holds a lease: nobody else knows these servers yet,
 * and once this process is gone nobody would stop them.
 */
export function stopServersBeingStarted(): void {
  for (const pid of starting) {
    if (alive(pid)) process.kill(pid, 'SIGTERM');
  }
  starting.clear();
}

/** Starts `temporal server start-dev` and waits until it serves. */
export async function startDevServer(o: DevServerOptions): Promise<DevServer> {
  if (!existsSync(o.binary)) {
    throw new KsUpgradeError(
      `no Temporal CLI: ${o.binary} does not exist and there is no \`temporal\` on PATH`,
      {
        hint: TEMPORAL_CLI_INSTALL_HINT,
      },
    );
  }
  mkdirSync(path.dirname(o.dbFile), { recursive: true, mode: 0o700 });
  const port = o.port ?? (await freePort());
  const uiPort = o.headless ? undefined : (o.uiPort ?? (await freePort()));
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--db-filename',
    o.dbFile,
    // WAL keeps writes cheap; synchronous stays at its default so a machine crash loses nothing.
    '--sqlite-pragma',
    'journal_mode=WAL',
    '--log-level',
    'warn',
    ...(uiPort === undefined ? ['--headless'] : ['--ui-port', String(uiPort)]),
    ...SEARCH_ATTRIBUTE_NAMES.flatMap((name) => ['--search-attribute', `${name}=Keyword`]),
  ];
  const out = o.logFile ? openSync(o.logFile, 'a') : 'ignore';
  const child = spawn(o.binary, args, { stdio: ['ignore', out, out], detached: o.detached ?? false });
  if (o.detached) child.unref();
  const pid = child.pid ?? 0;
  if (o.detached) starting.add(pid);
  const exited = new Promise<void>((resolve) =>
    child.on('exit', () => {
      resolve();
    }),
  );
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + (o.startTimeoutMs ?? 60_000);
  while (!(await isServing(o.binary, address))) {
    if (!alive(pid)) {
      starting.delete(pid);
      throw new KsUpgradeError(`the Temporal dev server exited during start-up`, {
        hint: o.logFile
          ? `see ${o.logFile}`
          : `is port ${port} free? is ${o.dbFile} from another Temporal CLI version?`,
      });
    }
    if (Date.now() > deadline) {
      starting.delete(pid);
      child.kill('SIGKILL');
      throw new KsUpgradeError(
        `the Temporal dev server did not start within ${(o.startTimeoutMs ?? 60_000) / 1000}s`,
      );
    }
    await sleep(200);
  }
  starting.delete(pid);
  return {
    address,
    uiUrl: uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}`,
    pid,
    stop: async () => {
      if (!alive(pid)) return;
      process.kill(pid, 'SIGTERM');
      const killer = setTimeout(() => {
        if (alive(pid)) process.kill(pid, 'SIGKILL');
      }, 10_000);
      if (o.detached) {
        while (alive(pid)) await sleep(100);
      } else {
        await exited;
      }
      clearTimeout(killer);
    },
  };
}

/** What the embedded server of a state dir looks like on disk (`server.json`). */
interface ServerRecord {
  pid: number;
  address: string;
  uiUrl?: string;
  binary: string;
}

/** An embedded server in use by this process; `release` when done with it. */
export interface EmbeddedServerLease {
  server: DevServer;
  /** This call started it (otherwise another command's, or a crashed run's, was reused). */
  started: boolean;
  /** The other commands using the server now (each registered it under `users/`). */
  otherUsers(): EmbeddedServerUser[];
  /**
   * Ends this process's use. The last user (every registered PID gone) stops the server; its
   * state stays in the SQLite file, so nothing is lost and the next command starts it again.
   */
  release(): Promise<void>;
  /**
   * {@link release} for a process about to exit at once: the last user sends the server SIGTERM
   * without waiting for it to be gone (it finishes shutting down on its own).
   */
  releaseNow(): void;
}

/** A command using the embedded server. */
export interface EmbeddedServerUser {
  pid: number;
  /** What it is, e.g. `ks-upgrade run` (the command runs the upgrade's worker). */
  command: string;
}

function liveUsers(usersDir: string): EmbeddedServerUser[] {
  if (!existsSync(usersDir)) return [];
  const users: EmbeddedServerUser[] = [];
  for (const f of readdirSync(usersDir)) {
    const pid = Number(f);
    const file = path.join(usersDir, f);
    if (Number.isInteger(pid) && alive(pid)) {
      let command = '';
      try {
        command = readFileSync(file, 'utf8').trim();
      } catch {
        // it released the server just now
      }
      users.push({ pid, command: command || 'ks-upgrade' });
    } else rmSync(file, { force: true });
  }
  return users;
}

/**
 * The embedded server for a state dir: reuses the one recorded in `<stateDir>/server.json` when it
 * still serves (a second `ks-upgrade` command while `run` is going, or the server a crashed run
 * left behind), otherwise starts one on the same SQLite file. Users register their PID under
 * `<stateDir>/users/`, so the server outlives no command that needs it and no longer than needed.
 */
export async function ensureEmbeddedServer(
  stateDir: string,
  binary: string,
  command = 'ks-upgrade',
): Promise<EmbeddedServerLease> {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const recordFile = path.join(stateDir, 'server.json');
  const usersDir = path.join(stateDir, 'users');
  mkdirSync(usersDir, { recursive: true, mode: 0o700 });
  const me = path.join(usersDir, String(process.pid));
  writeFileSync(me, command);
  let server: DevServer | undefined;
  let started = false;
  if (existsSync(recordFile)) {
    const rec = JSON.parse(readFileSync(recordFile, 'utf8')) as ServerRecord;
    if (alive(rec.pid) && (await isServing(binary, rec.address))) {
      server = {
        address: rec.address,
        uiUrl: rec.uiUrl,
        pid: rec.pid,
        stop: async () => {
          if (alive(rec.pid)) process.kill(rec.pid, 'SIGTERM');
          while (alive(rec.pid)) await sleep(100);
        },
      };
    }
  }
  if (!server) {
    try {
      server = await startDevServer({
        binary,
        dbFile: path.join(stateDir, 'temporal.db'),
        logFile: path.join(stateDir, 'temporal.log'),
        detached: true,
      });
    } catch (err) {
      rmSync(me, { force: true });
      throw err;
    }
    started = true;
    const rec: ServerRecord = {
      pid: server.pid,
      address: server.address,
      binary,
      ...(server.uiUrl ? { uiUrl: server.uiUrl } : {}),
    };
    writeFileSync(recordFile, JSON.stringify(rec, null, 2), { mode: 0o600 });
  }
  const lease = server;
  return {
    server: lease,
    started,
    otherUsers: () => liveUsers(usersDir).filter((u) => u.pid !== process.pid),
    release: async () => {
      rmSync(me, { force: true });
      if (liveUsers(usersDir).length === 0) {
        await lease.stop();
        rmSync(recordFile, { force: true });
      }
    },
    releaseNow: () => {
      rmSync(me, { force: true });
      if (liveUsers(usersDir).length === 0) {
        if (alive(lease.pid)) process.kill(lease.pid, 'SIGTERM');
        rmSync(recordFile, { force: true });
      }
    },
  };
}

/** The default state dir of the embedded server. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.KS_UPGRADE_STATE_DIR ??
    path.join(env.XDG_STATE_HOME ?? path.join(homedir(), '.local/state'), 'ks-upgrade')
  );
}
