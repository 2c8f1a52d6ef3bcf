import { ConfigError, formatProblem, type ConfigProblem } from './errors.js';
import type { Origin } from './tree.js';

/** At most this many problems are shown; the rest are counted ("…and N more"). */
export const MAX_REPORTED_PROBLEMS = 50;

/**
 * Problems kept for sorting; beyond this only their number per file is kept, so a file of a
 * hundred thousand unknown keys costs a counter, not a hundred thousand messages.
 */
const MAX_KEPT_PROBLEMS = 5_000;

/**
 * Collects problems from every stage (reading, parsing, schema, semantic checks) and hands them
 * back in the order an operator reads them: by file in the order given, then by line.
 */
export class ProblemCollector {
  private readonly items: { problem: ConfigProblem; fileIndex: number; seq: number }[] = [];
  /** Problems beyond {@link MAX_KEPT_PROBLEMS}, by file. */
  private readonly dropped = new Map<string, number>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(problem: ConfigProblem, fileIndex: number): void {
    this.count++;
    if (this.items.length < MAX_KEPT_PROBLEMS) {
      this.items.push({ problem, fileIndex, seq: this.items.length });
    } else {
      this.dropped.set(problem.file, (this.dropped.get(problem.file) ?? 0) + 1);
    }
  }

  /** A problem at a node of the (merged) tree. */
  at(origin: Origin, path: string, message: string, hint: string): void {
    this.add({ file: origin.file, line: origin.line, path, message, hint }, origin.fileIndex);
  }

  /** Sorted, without duplicates (the same file given twice reports its problems once). */
  sorted(): ConfigProblem[] {
    const seen = new Set<string>();
    return [...this.items]
      .sort((a, b) => a.fileIndex - b.fileIndex || a.problem.line - b.problem.line || a.seq - b.seq)
      .map((item) => item.problem)
      .filter((problem) => {
        const line = formatProblem(problem);
        if (seen.has(line)) return false;
        seen.add(line);
        return true;
      });
  }

  /** The error to throw: the first {@link MAX_REPORTED_PROBLEMS} problems, and how many more by file. */
  toError(): ConfigError {
    const all = this.sorted();
    const omitted = new Map<string, number>();
    for (const problem of all.slice(MAX_REPORTED_PROBLEMS)) {
      omitted.set(problem.file, (omitted.get(problem.file) ?? 0) + 1);
    }
    for (const [file, n] of this.dropped) omitted.set(file, (omitted.get(file) ?? 0) + n);
    return new ConfigError(all.slice(0, MAX_REPORTED_PROBLEMS), omitted);
  }
}
