import { ValidationError } from '../errors.js';

/**
 * One thing wrong with the configuration, located in the file that provided it.
 * `line` is 1-based; 0 means the problem concerns the file as a whole (missing, unreadable).
 * `path` is the key path (`jobs.devops.priority`); '' when the problem is not about one key
 * (YAML syntax, the file itself).
 */
export interface ConfigProblem {
  file: string;
  line: number;
  path: string;
  /** What is wrong. */
  message: string;
  /** How to fix it. */
  hint: string;
}

/**
 * `<file>:<line>: <key.path>: <what is wrong>; <how to fix>`. `:<line>` is left out when line is 0
 * and `<key.path>: ` when path is '', so every line still starts with something an editor can open.
 */
export function formatProblem(problem: ConfigProblem): string {
  const where = problem.line > 0 ? `${problem.file}:${problem.line}` : problem.file;
  const path = problem.path === '' ? '' : `${problem.path}: `;
  return `${where}: ${path}${problem.message}; ${problem.hint}`;
}

/**
 * Every problem found in the configuration files, thrown at once so that the operator fixes them in
 * one pass. The message has one {@link formatProblem} line per problem, in file order then line order.
 */
export class ConfigError extends ValidationError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'), {
      hint: 'fix each problem at the file and line it names, then run again',
    });
    this.problems = problems;
  }
}
