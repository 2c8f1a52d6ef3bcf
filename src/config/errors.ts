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

/** The last line of a capped problem list: `<file>: …and N more problems in this file; …`. */
function omittedLine(omitted: ReadonlyMap<string, number>): string[] {
  const total = [...omitted.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return [];
  const fix = 'fix the ones above, then run again to see the rest';
  const [only] = omitted.keys();
  if (omitted.size === 1 && only !== undefined) {
    return [`${only}: …and ${total} more problem${total === 1 ? '' : 's'} in this file; ${fix}`];
  }
  const byFile = [...omitted].map(([file, n]) => `${file}: ${n}`).join(', ');
  return [`…and ${total} more problems (${byFile}); ${fix}`];
}

/**
 * The problems found in the configuration files, thrown at once so that the operator fixes them in
 * one pass. The message has one {@link formatProblem} line per problem, in file order then line
 * order; a long list is cut after the first problems with a line that counts the rest.
 */
export class ConfigError extends ValidationError {
  /** The problems shown in the message. */
  readonly problems: readonly ConfigProblem[];
  /** How many more problems each file has beyond those shown. */
  readonly omitted: ReadonlyMap<string, number>;

  constructor(problems: readonly ConfigProblem[], omitted: ReadonlyMap<string, number> = new Map()) {
    super([...problems.map(formatProblem), ...omittedLine(omitted)].join('\n'), {
      hint: 'fix each problem at the file and line it names, then run again',
    });
    this.problems = problems;
    this.omitted = omitted;
  }
}
