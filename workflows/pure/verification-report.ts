// The verification report as text and markdown. A pure module written for the workflow sandbox
// (types only from outside workflows/): the workflow renders its details and errors with it.
import type { VerificationReport } from '../../src/verify/types.js';

/** The report as terminal text. */
export function formatVerification(report: VerificationReport): string {
  const lines = [
    `Verification of cluster ${report.cluster}: ${report.ok ? 'passed' : 'FAILED'} (${report.checkedAt})`,
  ];
  for (const f of report.findings) {
    lines.push(`  ${f.ok ? '✔' : '✖'} ${f.check.padEnd(44)} ${f.evidence}`);
    if (!f.ok && f.fix) lines.push(`    ${''.padEnd(44)} fix: ${f.fix}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The failed findings as markdown (workflow details). */
export function verificationMarkdown(report: VerificationReport): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    '| check | result | evidence | fix |',
    '|---|---|---|---|',
    ...report.findings.map(
      (f) =>
        `| ${f.check} | ${f.ok ? 'ok' : '**failed**'} | ${cell(f.evidence)} | ${f.ok ? '' : cell(f.fix ?? '')} |`,
    ),
  ].join('\n');
}

/** The failed findings as the error and the fix an operator reads. */
export function verificationFailure(report: VerificationReport): { error: string; hint: string } {
  const failed = report.findings.filter((f) => !f.ok);
  return {
    error: [
      `verification of cluster ${report.cluster} failed:`,
      ...failed.map((f) => `- ${f.check}: ${f.evidence}`),
    ].join('\n'),
    hint: `${failed.map((f) => `${f.check}: ${f.fix ?? 'see the evidence'}`).join('; ')}. Then retry (verification runs again), skip (accept the cluster as it is) or abort (roll back).`,
  };
}
