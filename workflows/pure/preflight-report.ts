// The preflight report as text and markdown. A pure module written for the workflow sandbox
// (types only from outside workflows/): the workflow renders its details with it.
import type { PreflightCheckResult, PreflightReport } from '../../src/preflight/types.js';

const MARK = (c: PreflightCheckResult): string => (c.ok ? '✔' : c.skipped ? '↷' : '✖');

/** The report as terminal text. */
export function formatPreflight(report: PreflightReport): string {
  const lines = [
    `Preflight of cluster ${report.cluster}: ${report.ok ? 'passed' : 'FAILED'} (${report.checkedAt})`,
  ];
  for (const c of report.checks) {
    lines.push(`  ${MARK(c)} ${c.name.padEnd(19)} ${c.evidence}`);
    if (!c.ok && c.fix) lines.push(`    ${''.padEnd(19)} fix: ${c.fix}`);
    if (c.skipped) lines.push(`    ${''.padEnd(19)} skipped by ${c.skipped.by}: ${c.skipped.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The report as markdown (workflow details in the Temporal UI). */
export function preflightMarkdown(report: PreflightReport): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `| check | result | evidence | fix |`,
    `|---|---|---|---|`,
    ...report.checks.map(
      (c) =>
        `| ${c.name} | ${c.ok ? 'ok' : c.skipped ? `skipped by ${cell(c.skipped.by)}: ${cell(c.skipped.reason)}` : '**failed**'} | ${cell(c.evidence)} | ${c.ok ? '' : cell(c.fix ?? '')} |`,
    ),
  ].join('\n');
}

/** The failing checks as the error and the fix an operator reads when the upgrade stops. */
export function preflightFailure(report: PreflightReport): { error: string; hint: string } {
  const failed = report.checks.filter((c) => !c.ok && !c.skipped);
  return {
    error: [
      `preflight of cluster ${report.cluster} failed:`,
      ...failed.map((c) => `- ${c.name}: ${c.evidence}`),
    ].join('\n'),
    hint:
      failed.map((c) => `${c.name}: ${c.fix ?? 'see the evidence'}`).join('; ') +
      '. Then retry; to go past a check knowingly, start the upgrade again with skipChecks [{"name", "by", "reason"}] (CLI: --skip-check <name> --skip-reason "<why>").',
  };
}
