import type { DynamicOptions } from '../../config/types.js';
import { ValidationError } from '../../errors.js';

/**
 * `jobs.iam.dynamicOptions`. The original read none; every option here defaults to the behaviour
 * documented in docs/jobs/iam.md.
 */
export interface IamOptions {
  /** Writes in flight at once during migration (the original: 1). Default 8, 1–64. */
  concurrency: number;
  /**
   * Group subjects of role bindings. `migrate` (default): kept (apiGroup rewritten like User
   * subjects) and group-only RoleBindings/ClusterRoleBindings migrated too, so departments keep
   * their access in v4. `drop`: the original's behaviour (User subjects only).
   */
  groupSubjects: 'migrate' | 'drop';
  /**
   * Rules of custom roles in post-upgrade. `reset` (default, the original): emptied, after a backup
   * and a warning per role — v3 rules do not mean the same in v4 and must be re-authored. `keep`:
   * left as they are (they may grant more or less than intended in v4).
   */
  customRoleRules: 'reset' | 'keep';
}

export const DEFAULT_IAM_OPTIONS: IamOptions = {
  concurrency: 8,
  groupSubjects: 'migrate',
  customRoleRules: 'reset',
};

const KNOWN = Object.keys(DEFAULT_IAM_OPTIONS);

/** Parses and checks the options once, when the job is built (a bad option fails the plan). */
export function parseIamOptions(options: DynamicOptions): IamOptions {
  const unknown = Object.keys(options).filter((k) => !KNOWN.includes(k));
  if (unknown.length > 0) {
    throw new ValidationError(`jobs.iam.dynamicOptions: unknown option(s) ${unknown.join(', ')}`, {
      hint: `the iam job reads ${KNOWN.join(', ')}`,
    });
  }
  const result = { ...DEFAULT_IAM_OPTIONS };
  const concurrency = options.concurrency;
  if (concurrency !== undefined) {
    const n = typeof concurrency === 'string' ? Number(concurrency) : concurrency;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 64) {
      throw new ValidationError(
        `jobs.iam.dynamicOptions.concurrency must be an integer from 1 to 64, got ${JSON.stringify(concurrency)}`,
        { hint: 'e.g. concurrency: 8 (1 writes one object at a time, like the original)' },
      );
    }
    result.concurrency = n;
  }
  result.groupSubjects = oneOf(options, 'groupSubjects', ['migrate', 'drop'], result.groupSubjects);
  result.customRoleRules = oneOf(options, 'customRoleRules', ['reset', 'keep'], result.customRoleRules);
  return result;
}

function oneOf<T extends string>(
  options: DynamicOptions,
  key: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const value = options[key];
  if (value === undefined) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new ValidationError(
    `jobs.iam.dynamicOptions.${key} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
    { hint: `the default is ${fallback}; see docs/jobs/iam.md` },
  );
}
