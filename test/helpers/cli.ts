// The `ks-upgrade` CLI as users run it: a child process of the real entry point (bin/ks-upgrade.js,
// the TypeScript sources through tsx), with the demo jobs loaded as a plugin. And the processes it
// leaves behind, read from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { devEnv, repoRoot } from './env.js';
import type { DemoSetup } from './upgrade.js';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running CLI process: its output so far, a wait for a line, and its end. */
export interface RunningCli {
  child: ChildProcess;
  pid: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once stdout or stderr matches `re`; rejects when the process ends first or after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<CliResult>;
}

function cliEnv(extraEnv: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KS_UPGRADE_PLUGINS: path.join(repoRoot, 'test/jobs/demo-plugin.ts'),
    TEMPORAL_ADDRESS: '',
    ...extraEnv,
  };
}

/**
 * Options of `run` for a demo setup on the dev host cluster: its config without the built-in
 * defaults, no gate, and a short heartbeat timeout.
 */
export function demoRunArgs(s: DemoSetup): string[] {
  const env = devEnv();
  return [
    '--kubeconfig',
    env.kubeconfig,
    '--context',
    env.kubeContext,
    '--no-defaults',
    '--cluster',
    s.cluster,
    '--config',
    s.configFile,
    '--gate',
    'none',
    '--heartbeat-timeout',
    '5s',
    // The demo jobs run on a bare API server: no KubeSphere to find, nor to verify.
    '--skip-check',
    'kubesphere-version',
    '--skip-check',
    'verification',
    '--skip-reason',
    'demo jobs on a bare API server',
  ];
}

/** Starts the CLI; it is SIGKILLed after `timeoutMs` so that a hung test cannot hang the run. */
export function spawnCli(
  args: string[],
  extraEnv: Record<string, string> = {},
  timeoutMs = 240_000,
): RunningCli {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/ks-upgrade.js'), ...args], {
    cwd: repoRoot,
    env: cliEnv(extraEnv),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const l of listeners) l();
  };
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    notify();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    notify();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = new Promise<CliResult>((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // Output may still be in the pipes when 'exit' fires; 'close' comes after it.
      child.on('close', () => {
        notify();
        resolve({ code, signal, stdout, stderr });
      });
    });
  });
  let ended = false;
  void exited.then(() => {
    ended = true;
    notify();
  });
  return {
    child,
    pid: child.pid ?? 0,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitFor(re: RegExp, waitMs = 180_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (re.test(stdout) || re.test(stderr)) done(undefined);
          else if (ended) done(new Error(`the CLI ended before ${re}:\n${stdout}\n${stderr}`));
        };
        const timeout = setTimeout(() => {
          done(new Error(`timed out waiting for ${re}:\n${stdout}\n${stderr}`));
        }, waitMs);
        const done = (err: Error | undefined): void => {
          clearTimeout(timeout);
          listeners.delete(check);
          if (err) reject(err);
          else resolve();
        };
        listeners.add(check);
        check();
      });
    },
    exited,
  };
}

/** Runs the CLI to its end. */
export function cli(
  args: string[],
  extraEnv: Record<string, string> = {},
  timeoutMs = 180_000,
): Promise<CliResult> {
  return spawnCli(args, extraEnv, timeoutMs).exited;
}

/** PIDs whose command line mentions `text` (e.g. a dev server's SQLite file or a state dir). */
export async function processesUsing(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

/** Live descendants of `pid` (children, their children, …), from the parent PIDs in /proc. */
export async function descendantsOf(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid …; comm may contain spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (Number.isInteger(ppid)) parents.set(Number(entry), ppid);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift();
    for (const [child, ppid] of parents) {
      if (ppid === parent && !found.includes(child)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/** Whether a process exists and is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (stat === '') return false;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
}

/** Polls until none of `pids` is alive (true) or `timeoutMs` passes (false). */
export async function allGone(pids: readonly number[], timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = [];
    for (const pid of pids) if (await isAlive(pid)) alive.push(pid);
    if (alive.length === 0) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}
