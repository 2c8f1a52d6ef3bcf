import { formatProblem, type ConfigProblem } from './errors.js';
import type { Origin } from './tree.js';

/**
 * Collects problems from every stage (reading, parsing, schema, semantic checks) and hands them
 * back in the order an operator reads them: by file in the order given, then by line.
 */
export class ProblemCollector {
  private readonly items: { problem: ConfigProblem; fileIndex: number; seq: number }[] = [];

  get size(): number {
    return this.items.length;
  }

  add(problem: ConfigProblem, fileIndex: number): void {
    this.items.push({ problem, fileIndex, seq: this.items.length });
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
}
