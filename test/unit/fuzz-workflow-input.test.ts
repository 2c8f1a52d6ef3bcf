// Property tests of the workflow input validator (docs/fuzzing.md), which both the CLI (before
// starting a workflow) and the workflow itself (on its first task) run: any JSON value, deep
// nesting, schema-valid inputs, and schema-breaking mutations of them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../src/errors.js';
import { parseDuration } from '../../src/config/duration.js';
import type { JsonSchema } from '../../src/config/schema.js';
import { assertValidInput } from '../../src/temporal/client.js';
import { INPUT_FIELDS, validateUpgradeInput, type UpgradeClusterInput } from '../../src/upgrade/input.js';
import { repoRoot } from '../helpers/env.js';
import {
  acceptOrReject,
  bounded,
  fromSchema,
  fuzzParameters,
  junk,
  oddKey,
  trackUnhandledRejections,
  withKey,
} from '../helpers/fuzz.js';

const unhandled = trackUnhandledRejections();
const schema = JSON.parse(
  readFileSync(path.join(repoRoot, 'docs/workflow-input.schema.json'), 'utf8'),
) as JsonSchema;

const durationPattern = new RegExp(schema.$defs?.duration?.pattern ?? '', 'u');
const PHASES = ['prepare-upgrade', 'pre-upgrade', 'post-upgrade', 'dynamic-upgrade'];

/** Inputs the published schema allows (phases: a non-empty subsequence, in upgrade order). */
const validInput = fromSchema(schema, {
  valuesAt: {
    // The schema's pattern cannot say "at most 2^63-1 ns" (about 292 years), nor that a fraction of a
    // nanosecond truncates to 0 as in Go (`0.5ns` is zero); the validator refuses both.
    '#/$defs/duration': fc.stringMatching(durationPattern).filter((d) => {
      try {
        return parseDuration(d) > 0;
      } catch {
        return false;
      }
    }),
    '#/properties/phases': fc
      .subarray(PHASES, { minLength: 1 })
      .map((phases) => phases.filter((p) => PHASES.includes(p))),
  },
  // The schema's pattern cannot say "at most 2^63-1 ns"; the validator refuses longer durations.
  keysAt: { '#/properties/overrides/properties/jobs': fc.constantFrom('core', 'iam', 'devops', 'x-1') },
}).map((v) => v as Record<string, unknown>);

/** A value nested `depth` levels deep: arrays, objects or both. */
function nested(depth: number, kind: 'array' | 'object' | 'mixed'): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) {
    const asArray = kind === 'array' || (kind === 'mixed' && i % 2 === 0);
    value = asArray ? [value] : { k: value };
  }
  return value;
}

/** Every key path of a value, written as the validator writes them (`a.b`, `a[0]`). */
function pathsOf(value: unknown, prefix = '', out = new Set<string>(), depth = 0): Set<string> {
  if (depth > 80 || typeof value !== 'object' || value === null) return out;
  const entries = Array.isArray(value)
    ? value.map((v, i): [string, unknown] => [`${prefix}[${i}]`, v])
    : Object.entries(value).map(([k, v]): [string, unknown] => [prefix ? `${prefix}.${k}` : k, v]);
  for (const [p, v] of entries) {
    out.add(p);
    pathsOf(v, p, out, depth + 1);
  }
  return out;
}

/** Checks the validator's answer: problems are strings that each start with a path of the input. */
function checkProblems(input: unknown): string[] {
  const problems = bounded('validateUpgradeInput', () => validateUpgradeInput(input));
  assert.ok(Array.isArray(problems) && problems.every((p) => typeof p === 'string'));
  const paths = new Set(['input', ...INPUT_FIELDS, ...pathsOf(input)]);
  for (const problem of problems) {
    // A path of the input, or a missing required field of an object at one (`skipChecks[0].by`).
    const named = (p: string): boolean =>
      problem.startsWith(`${p}: `) ||
      (problem.startsWith(`${p}.`) && /^[A-Za-z]+: /.test(problem.slice(p.length + 1)));
    assert.ok([...paths].some(named), `the problem names no key path of the input: ${problem}`);
  }
  // The CLI's typed refusal carries every problem (the workflow's InvalidInput failure does the same).
  const outcome = acceptOrReject(ValidationError, () => {
    assertValidInput(input as UpgradeClusterInput);
  });
  assert.equal(outcome.ok, problems.length === 0);
  if (!outcome.ok) for (const p of problems) assert.ok(outcome.error.message.includes(p));
  return problems;
}

describe('fuzz: workflow input', () => {
  it('any JSON value: problems that name key paths, never a crash', () => {
    fc.assert(
      fc.property(fc.oneof(junk, fc.jsonValue(), validInput), (input) => {
        checkProblems(input);
      }),
      fuzzParameters(300),
    );
  });

  it('any value at all (symbols, bigints, functions, null prototypes): never a crash', () => {
    fc.assert(
      fc.property(
        fc.anything({
          withBigInt: true,
          withMap: true,
          withSet: true,
          withNullPrototype: true,
          withTypedArray: true,
        }),
        fc.anything({ withBigInt: true, withNullPrototype: true }),
        (value, cluster) => {
          bounded('validateUpgradeInput', () => validateUpgradeInput(value));
          bounded('validateUpgradeInput', () =>
            validateUpgradeInput({ cluster, overrides: { jobs: { core: { dynamicOptions: value } } } }),
          );
        },
      ),
      fuzzParameters(200),
    );
  });

  it('deep nesting anywhere is refused with its path, in bounded time', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20_000 }),
        fc.constantFrom<'array' | 'object' | 'mixed'>('array', 'object', 'mixed'),
        fc.constantFrom('overrides', 'configFiles', 'kube', 'tuning', 'skipChecks', 'extra'),
        (depth, kind, field) => {
          const input = { cluster: 'host', [field]: nested(depth, kind) };
          const problems = checkProblems(input);
          if (depth > 100)
            assert.ok(
              problems.some((p) => p.startsWith(field)),
              problems.join('\n'),
            );
        },
      ),
      fuzzParameters(40),
    );
  });

  it('what the published schema allows is accepted, and stays accepted through JSON', () => {
    fc.assert(
      fc.property(validInput, (input) => {
        assert.deepEqual(checkProblems(input), [], JSON.stringify(input));
        assert.deepEqual(checkProblems(JSON.parse(JSON.stringify(input))), []);
      }),
      fuzzParameters(300),
    );
  });

  it('a schema-breaking change is refused, and the problem names where', () => {
    // Mutations the published schema forbids, each with the path a problem must name.
    const mutations: [string, (input: Record<string, unknown>, value: unknown) => void][] = [
      ['unknown-top', (i, v) => withKey(i, 'extraField', v)],
      ['kube.unknown', (i, v) => withKey(i, 'kube', { context: 'c', surprise: v })],
      ['cluster', (i, v) => withKey(i, 'cluster', typeof v === 'string' ? `${v}_X` : v)],
      ['gate', (i, v) => withKey(i, 'gate', typeof v === 'string' ? `${v}?` : v)],
      ['failurePolicy', (i, v) => withKey(i, 'failurePolicy', typeof v === 'string' ? `${v}?` : v)],
      ['dryRun', (i, v) => withKey(i, 'dryRun', typeof v === 'boolean' ? String(v) : v)],
      [
        'tuning.gateTimeout',
        (i, v) => withKey(i, 'tuning', { gateTimeout: typeof v === 'string' ? `${v}x` : v }),
      ],
      ['skipChecks[0].name', (i, v) => withKey(i, 'skipChecks', [{ name: v, by: 'a', reason: 'b' }])],
      [
        'overrides.jobs.core.enabled',
        (i, v) =>
          withKey(i, 'overrides', { jobs: { core: { enabled: typeof v === 'boolean' ? String(v) : v } } }),
      ],
      [
        'overrides.jobs.core.priority',
        (i, v) =>
          withKey(i, 'overrides', {
            jobs: { core: { priority: typeof v === 'number' ? -1 - Math.abs(v) : v } },
          }),
      ],
      ['overrides.jobs.core.unknown', (i, v) => withKey(i, 'overrides', { jobs: { core: { unknown: v } } })],
      [
        'overrides.upgrade.gate',
        (i, v) => withKey(i, 'overrides', { upgrade: { gate: typeof v === 'string' ? `${v}?` : v } }),
      ],
      ['overrides.unknown', (i, v) => withKey(i, 'overrides', { unknown: v })],
    ];
    fc.assert(
      fc.property(
        validInput,
        fc.constantFrom(...mutations),
        fc.oneof(junk, oddKey),
        (input, [where, mutate], value) => {
          if (value === undefined) return;
          const copy = structuredClone(input);
          mutate(copy, value);
          const problems = checkProblems(copy);
          const field = where.replace(/\.unknown$/, '').replace('unknown-top', 'extraField');
          assert.ok(
            problems.some((p) => p.startsWith(field)),
            `${where} = ${JSON.stringify(value)} not refused at ${field}: ${JSON.stringify(problems)}`,
          );
        },
      ),
      fuzzParameters(300),
    );
  });

  it('regression: 10,000 nested lists in overrides are refused, not a stack overflow', () => {
    const problems = validateUpgradeInput({
      cluster: 'x',
      overrides: { jobs: { a: { dynamicOptions: { v: nested(10_000, 'array') } } } },
    });
    assert.ok(
      problems.some((p) => p.startsWith('overrides.jobs.a.dynamicOptions.v')),
      problems.join('\n'),
    );
  });

  it('regression: a JSON input of 200,000 nested lists is refused, not a stack overflow', () => {
    const json = `{"cluster":"x","configFiles":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    const problems = validateUpgradeInput(JSON.parse(json));
    assert.ok(
      problems.some((p) => p.startsWith('configFiles')),
      problems.join('\n'),
    );
  });

  it('regression: overrides are checked as the published schema says, before the workflow starts', () => {
    assert.deepEqual(
      validateUpgradeInput({
        cluster: 'x',
        overrides: {
          jobs: { core: { priority: '__proto__', enabled: 'yes', extra: 1 } },
          upgrade: { gate: 'later' },
        },
      }),
      [
        'overrides.jobs.core.extra: unknown field; allowed: enabled, priority, dynamicOptions',
        'overrides.jobs.core.enabled: expected true or false',
        'overrides.jobs.core.priority: expected a whole number of 0 or more',
        'overrides.upgrade.gate: must be one of signal, detect, helm, none',
      ],
    );
  });

  it('leaves no unhandled rejection', () => {
    unhandled.assertNone();
  });
});
