// The fleet as a table per cluster (wave, state, the child's status, phase and job, what it waits
// for and the command that answers it), and the exit code of a fleet view.
import type { FleetProgress, FleetResult } from '../../workflows/fleet/messages.js';
import { EXIT } from './common.js';

export interface FleetView {
  progress?: FleetProgress;
  closed?: { status: string; result?: FleetResult; error?: string };
}

const MARK: Record<string, string> = {
  succeeded: '✔',
  failed: '✖',
  pending: '·',
  upgrading: '…',
  verifying: '?',
  gateways: '…',
};

function cell(s: string, width: number): string {
  return s.length > width ? `${s.slice(0, width - 1)}…` : s.padEnd(width);
}

/** The view as text; `clear` redraws the terminal (watch mode on a TTY). */
export function renderFleet(view: FleetView, workflowId: string, o: { clear?: boolean } = {}): string {
  const out: string[] = [];
  const p = view.progress;
  if (p) {
    const budget = `${p.budget.failed} failed, ${p.budget.awaitingOperator} waiting / budget ${p.budget.allowed}`;
    out.push(
      `fleet ${p.fleet} (${workflowId}, run ${p.run}): ${view.closed ? view.closed.status : p.status}` +
        `${p.currentWave ? `, wave ${p.currentWave}` : ''}; ${budget}`,
    );
    if (p.paused) out.push(`paused by ${p.paused.by}: ${p.paused.reason}`);
    out.push(
      `waves: ${p.waves.map((w) => `${w.name} [${w.state}${w.approval ? `, approved by ${w.approval.by}` : ''}]`).join(' → ')}`,
    );
    for (const [name, w] of Object.entries(p.windows)) {
      out.push(
        `window ${name}: ${w.open ? 'open' : 'closed'}, ${new Date(w.opensAt).toISOString()} – ${new Date(w.closesAt).toISOString()}`,
      );
    }
    const nameWidth = Math.min(40, Math.max(8, ...p.clusters.map((c) => c.name.length)));
    const waveWidth = Math.min(24, Math.max(5, ...p.clusters.map((c) => c.wave.length)));
    out.push(
      '',
      `  ${cell('CLUSTER', nameWidth)} ${cell('WAVE', waveWidth)} ${cell('STATE', 11)} ${cell('UPGRADE', 19)} ${cell('PHASE / JOB', 28)} NOTE`,
    );
    const waiting: string[] = [];
    for (const c of p.clusters) {
      const phase = [c.phase, c.job].filter(Boolean).join(' / ');
      const note = c.awaiting ? `waits (${c.awaiting.kind}): ${c.awaiting.error}` : (c.error ?? c.note ?? '');
      out.push(
        `${MARK[c.state] ?? ' '} ${cell(c.name, nameWidth)} ${cell(c.wave, waveWidth)} ${cell(c.state, 11)} ${cell(c.upgradeStatus ?? '', 19)} ${cell(phase, 28)} ${note.split('\n')[0] ?? ''}`,
      );
      if (c.awaiting) waiting.push(`${c.name}: ${c.awaiting.commands[0] ?? ''}`);
    }
    const approve = p.waves.find((w) => w.state === 'awaiting-approval');
    if (approve)
      out.push(
        '',
        `wave ${approve.name} waits for approval: ks-upgrade fleet approve ${p.fleet} ${approve.name} --reason "<why>"`,
      );
    if (waiting.length) out.push('', 'waiting for an operator:', ...waiting.map((w) => `  ${w}`));
  } else if (view.closed) {
    out.push(`fleet ${workflowId}: ${view.closed.status}`);
  }
  if (view.closed?.error) out.push('', `✖ ${view.closed.error}`);
  if (view.closed?.result)
    out.push('', `✔ ${view.closed.result.status} after ${view.closed.result.runs} run(s)`);
  return `${o.clear ? '\x1b[2J\x1b[H' : ''}${out.join('\n')}\n`;
}

/** 0 running or succeeded, 3 waiting for a person (an approval or a decision), 1 failed. */
export function exitCodeOf(view: FleetView): number {
  if (view.closed) {
    return view.closed.status === 'COMPLETED' && view.closed.result?.status === 'Succeeded'
      ? EXIT.ok
      : EXIT.failed;
  }
  const status = view.progress?.status;
  if (status === 'AwaitingOperator' || status === 'AwaitingApproval') return EXIT.awaitingOperator;
  return EXIT.ok;
}
