// Runs one program as its own process under GNU time, so every row gets the peak RSS (maxrss) of
// exactly the process that did the work — the bench process itself holds clusters, clients and
// earlier rows' garbage, and its RSS says nothing about one workload.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from '../helpers/env.js';

/** What one measured process did. */
export interface ProcessRun {
  /** Wall time of the process, start to exit (ms). */
  wallMs: number;
  /** Peak resident set size (MiB), from getrusage via GNU time. */
  peakRssMb: number;
  stdout: string;
  stderr: string;
}

const TIME = '/usr/bin/time';

/**
 * Runs `command args…` under `/usr/bin/time`; stdout goes to `stdoutFile` when given (a baseline
 * writing its output to a file, like `kubectl … > file`), else is captured. Rejects on a non-zero exit.
 */
export async function measureProcess(
  command: string,
  args: readonly string[],
  options: { stdoutFile?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ProcessRun> {
  const timeFile = path.join(tmpdir(), `bench-time-${process.pid}-${Date.now()}-${Math.random()}`);
  const out = options.stdoutFile ? openSync(options.stdoutFile, 'w') : 'pipe';
  const t0 = process.hrtime.bigint();
  const child = spawn(TIME, ['-f', '%M', '-o', timeFile, command, ...args], {
    cwd: repoRoot,
    env: options.env ?? process.env,
    stdio: ['ignore', out, 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (typeof out === 'number') closeSync(out);
  const timeText = readFileSync(timeFile, 'utf8');
  rmSync(timeFile, { force: true });
  if (code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${String(code)}:\n${stderr.slice(-4000)}`);
  }
  const kb = Number(timeText.trim().split('\n').pop());
  if (!Number.isFinite(kb)) throw new Error(`no maxrss from ${TIME}: ${timeText}`);
  return { wallMs, peakRssMb: kb / 1024, stdout, stderr };
}

/** What a workload child (test/bench/child.ts) reports on its last stdout line. */
export interface ChildResult {
  /** Time of the workload itself, without process start-up and module loading (ms). */
  ms: number;
  units: number;
  [extra: string]: unknown;
}

/** Runs a workload of test/bench/child.ts in its own Node process (same loader as the CLI: tsx). */
export async function measureChild(
  workload: string,
  params: unknown,
  nodeArgs: readonly string[] = [],
): Promise<ProcessRun & { result: ChildResult }> {
  const run = await measureProcess(process.execPath, [
    ...nodeArgs,
    '--import',
    'tsx',
    path.join(repoRoot, 'test/bench/child.ts'),
    workload,
    JSON.stringify(params),
  ]);
  const last = run.stdout.trim().split('\n').pop() ?? '';
  return { ...run, result: JSON.parse(last) as ChildResult };
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

/** The p-th percentile (0–100), nearest-rank. */
export const percentile = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return 0;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? 0;
};
