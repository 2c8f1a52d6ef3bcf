// Live progress of an upgrade in the terminal: one line per finished step, a progress bar for the
// running one (from its heartbeats), and what to do when the upgrade waits for a person.
import { createInterface } from 'node:readline/promises';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import {
  coreUpgradedSignal,
  progressQuery,
  type OperatorAction,
  type StepProgress,
  type UpgradeProgress,
  type UpgradeResult,
} from '../../workflows/messages.js';
import type { JobProgress } from '../jobs/types.js';
import { EXIT, operatorIdentity, type Io } from './common.js';
import { resolveSoon } from './operate.js';
import { attemptOfRunningStep, describeAttempt, pendingAttempts } from './status-pending.js';

const MARK: Record<string, string> = {
  succeeded: '✔',
  skipped: '↷',
  failed: '✖',
  'rolled-back': '↺',
  'rollback-failed': '✖',
  running: '…',
};

function formatStep(s: StepProgress): string {
  const took = s.durationMs !== undefined ? `${(s.durationMs / 1000).toFixed(1)}s` : '';
  const extra = s.state === 'failed' ? `  ${s.lastError ?? ''}` : s.reason ? `  (${s.reason})` : '';
  return `  ${MARK[s.state] ?? ' '} ${s.phase.padEnd(16)} ${s.job.padEnd(22)} ${took.padStart(7)}${extra}`;
}

function bar(p: JobProgress): string {
  if (p.total && p.total > 0) {
    const done = Math.min(p.done ?? 0, p.total);
    const width = 24;
    const filled = Math.round((done / p.total) * width);
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${p.total}${p.step ? ` ${p.step}` : ''}`;
  }
  return [p.step, p.message].filter(Boolean).join(': ');
}

/** The running step's activity as the server knows it (attempt, last failure, last heartbeat). */
async function runningAttempt(handle: WorkflowHandle, steps: readonly StepProgress[]) {
  try {
    return attemptOfRunningStep(steps, pendingAttempts(await handle.describe()))?.attempt;
  } catch {
    return undefined;
  }
}

export interface FollowOptions {
  /** Prompt for operator decisions and the gate on a terminal. */
  interactive: boolean;
  uiUrl?: string;
  pollMs?: number;
  /**
   * Stops following (SIGINT/SIGTERM): `follow` then returns {@link EXIT.interrupted} at once,
   * with no request in flight, and the upgrade goes on (or waits) in Temporal.
   */
  signal?: AbortSignal;
}

/** Follows the upgrade to its end, or until `o.signal` aborts; returns the exit code. */
export async function follow(handle: WorkflowHandle, io: Io, o: FollowOptions): Promise<number> {
  const aborted = new Promise<void>((resolve) => {
    if (o.signal?.aborted) resolve();
    o.signal?.addEventListener('abort', () => {
      resolve();
    });
  });
  const printed = new Map<string, string>();
  let announced = '';
  let lastRetry = '';
  let barShown = false;
  const clearBar = (): void => {
    if (barShown) io.stdout.write('\r\x1b[2K');
    barShown = false;
  };
  const resultP = handle.result().then(
    (r: unknown) => ({ ok: true as const, result: r as UpgradeResult }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  let done: Awaited<typeof resultP> | undefined;
  void resultP.then((r) => {
    done = r;
  });

  for (;;) {
    if (o.signal?.aborted) {
      clearBar();
      return EXIT.interrupted;
    }
    let progress: UpgradeProgress | undefined;
    try {
      progress = await handle.query(progressQuery);
    } catch {
      // the first workflow task may not have run yet, or the run just closed
    }
    if (progress) {
      for (const s of progress.steps) {
        const key = `${s.phase}/${s.job}`;
        if (s.state === 'pending' || s.state === 'running' || printed.get(key) === `${s.state}${s.runs}`)
          continue;
        printed.set(key, `${s.state}${s.runs}`);
        clearBar();
        io.stdout.write(`${formatStep(s)}\n`);
      }
      const situation = progress.awaiting
        ? `awaiting:${progress.awaiting.phase}:${progress.awaiting.job ?? ''}:${progress.awaiting.since}`
        : progress.status;
      if (situation !== announced) {
        announced = situation;
        clearBar();
        if (progress.awaiting) {
          const a = progress.awaiting;
          io.stdout.write(
            `\n⏸  ${a.phase}${a.job ? ` / ${a.job}` : ''} failed and waits for a decision:\n   ${a.error}\n` +
              (a.hint ? `   fix: ${a.hint}\n` : '') +
              `   then: ks-upgrade resolve ${progress.cluster} ${a.allowed.join('|')} --reason "<why>"\n` +
              (o.uiUrl ? `   or in the Temporal UI: ${o.uiUrl}\n` : ''),
          );
          if (o.interactive) await promptDecision(handle, io, a.allowed, o.signal);
        } else if (progress.status === 'AwaitingCoreUpgrade' && progress.gate.mode === 'signal') {
          io.stdout.write(
            `\n⏸  pre-upgrade is done. Now upgrade KubeSphere core (helm upgrade ks-core …), then run:\n` +
              `   ks-upgrade gate ${progress.cluster}\n`,
          );
          if (o.interactive) await promptGate(handle, io, o.signal);
        } else if (progress.status === 'AwaitingCoreUpgrade' && progress.gate.mode === 'helm') {
          io.stdout.write(
            `\n⏳ upgrading KubeSphere core (helm upgrade ks-core), then waiting for the rollout…\n`,
          );
        } else if (progress.status === 'AwaitingCoreUpgrade') {
          io.stdout.write(`\n⏳ waiting until KubeSphere v4 core runs on the cluster (detect gate)…\n`);
        } else if (progress.status === 'RollingBack') {
          io.stdout.write(`\n↺ rolling back the jobs that ran…\n`);
        }
      }
      if (progress.status === 'Running') {
        const attempt = await runningAttempt(handle, progress.steps);
        // A failed attempt being retried: said once per attempt, on a terminal or not.
        const retrying = attempt && describeAttempt(attempt);
        if (retrying && retrying !== lastRetry) {
          lastRetry = retrying;
          clearBar();
          io.stdout.write(`  ↻ ${progress.phase ?? ''} ${progress.job ?? ''}: ${retrying}\n`);
        }
        if (io.stdout.isTTY) {
          const detail = attempt?.lastHeartbeat;
          const line = `  … ${progress.phase ?? ''} ${progress.job ?? ''} ${detail ? bar(detail) : ''}`;
          io.stdout.write(`\r\x1b[2K${line.slice(0, 120)}`);
          barShown = true;
        }
      }
    }
    if (done) break;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      resultP,
      aborted,
      new Promise((r) => {
        timer = setTimeout(r, o.pollMs ?? 1000);
      }),
    ]);
    clearTimeout(timer);
  }
  clearBar();
  const outcome = done;
  if (outcome.ok) {
    const r = outcome.result;
    io.stdout.write(
      r.dryRun
        ? `\nDry run of ${r.cluster}: nothing was changed.\n`
        : `\n✔ upgrade of ${r.cluster} succeeded (${r.steps.length} steps, ${r.decisions.length} operator decisions)\n`,
    );
    return EXIT.ok;
  }
  const err = outcome.err;
  const cause =
    err instanceof WorkflowFailedError
      ? (err.cause as { type?: string; message?: string } | undefined)
      : undefined;
  io.stdout.write(`\n✖ ${cause?.message ?? (err instanceof Error ? err.message : String(err))}\n`);
  return EXIT.failed;
}

/**
 * A prompt on the terminal that gives way to SIGINT/SIGTERM: readline takes Ctrl-C itself while it
 * reads (it would only pause), so it is passed on as the SIGINT it is, and `signal` ends the
 * question (rejecting it with an AbortError, which the callers take as "stop asking").
 */
function prompt(io: Io, signal: AbortSignal | undefined) {
  const rl = createInterface({ input: io.stdin, output: io.stdout });
  rl.on('SIGINT', () => {
    process.kill(process.pid, 'SIGINT');
  });
  return {
    ask: (question: string) => rl.question(question, signal ? { signal } : {}),
    close: () => {
      rl.close();
    },
  };
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

async function promptDecision(
  handle: WorkflowHandle,
  io: Io,
  allowed: OperatorAction[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const rl = prompt(io, signal);
  try {
    for (;;) {
      const action = (await rl.ask(`   decision (${allowed.join('/')}, or Enter to wait): `)).trim();
      if (action === '') return;
      if (!allowed.includes(action as OperatorAction)) continue;
      const reason = (await rl.ask('   reason: ')).trim();
      try {
        await resolveSoon(handle, { action: action as OperatorAction, reason, by: operatorIdentity() });
        return;
      } catch (err) {
        io.stdout.write(
          `   rejected: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}\n`,
        );
      }
    }
  } catch (err) {
    if (!isAbort(err)) throw err;
  } finally {
    rl.close();
  }
}

async function promptGate(handle: WorkflowHandle, io: Io, signal: AbortSignal | undefined): Promise<void> {
  const rl = prompt(io, signal);
  try {
    const answer = (
      await rl.ask('   type "done" when the core upgrade finished (Enter to keep waiting): ')
    ).trim();
    if (answer === 'done') await handle.signal(coreUpgradedSignal, { by: operatorIdentity() });
  } catch (err) {
    if (!isAbort(err)) throw err;
  } finally {
    rl.close();
  }
}
