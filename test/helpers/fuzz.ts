// Shared machinery of the property (fuzz) tests, test/unit/fuzz-*.test.ts (docs/fuzzing.md).
//
// - Run counts: each property has a CI count small enough for `npm test`; FUZZ_RUNS=<n> runs every
//   property n times instead, FUZZ_SEED=<seed> replays a reported failure.
// - Bounded cases: every case is timed, and one slower than FUZZ_CASE_MS fails the property with
//   its counterexample, so super-linear work (an alias bomb, a regex blow-up) shows up as a
//   failure, not as a slow suite.
// - Typed rejections: `acceptOrReject` accepts a result or an error of the expected class and
//   fails on anything else (TypeError, RangeError, a plain Error: a crash).
// - Schema-driven input: `fromSchema` turns a JSON Schema (the subset src/config/schema.ts uses)
//   into an arbitrary of values that mostly fit it, with wrong types and unknown keys mixed in.
// - File loaders: `fileLoaderProperties` registers the standard properties of a loader of YAML
//   files (noise, schema-shaped trees as YAML and JSON, several files, duplicate keys, alias bombs,
//   size caps, big numbers, round trip). The config loader uses it; a loader of another YAML file
//   (e.g. the fleet file) gets the same properties from one call with its schema and load function.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { dump } from 'js-yaml';
import type { JsonSchema, JsonType } from '../../src/config/schema.js';

/** Number of cases for a property: FUZZ_RUNS when set (the larger documented run), else `ci`. */
export function fuzzRuns(ci: number): number {
  const env = Number(process.env.FUZZ_RUNS);
  return Number.isInteger(env) && env > 0 ? env : ci;
}

/** Longest one case may take, in ms (generous: the CI machine is shared and slow). */
export const CASE_BUDGET_MS = Number(process.env.FUZZ_CASE_MS) || 3_000;

/** fast-check parameters: the run count, and FUZZ_SEED to replay a failure. */
export function fuzzParameters<T>(ci: number): fc.Parameters<T> {
  const seed = Number(process.env.FUZZ_SEED);
  return {
    numRuns: fuzzRuns(ci),
    ...(Number.isInteger(seed) ? { seed } : {}),
  };
}

/** Runs `fn` and fails when it took longer than {@link CASE_BUDGET_MS} (a hang or blow-up). */
export function bounded<T>(what: string, fn: () => T): T {
  const start = performance.now();
  const result = fn();
  const took = performance.now() - start;
  assert.ok(took <= CASE_BUDGET_MS, `${what} took ${Math.round(took)} ms (budget ${CASE_BUDGET_MS} ms)`);
  return result;
}

/** {@link bounded} for async work. */
export async function boundedAsync<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await fn();
  const took = performance.now() - start;
  assert.ok(took <= CASE_BUDGET_MS, `${what} took ${Math.round(took)} ms (budget ${CASE_BUDGET_MS} ms)`);
  return result;
}

/** The outcome of code under test that may refuse its input. */
export type Outcome<T, E> = { ok: true; value: T } | { ok: false; error: E };

/**
 * Calls `fn`: its value, or the error when it is an instance of `errorClass`. Anything else
 * thrown is a crash and fails the property with the error's stack.
 */
export function acceptOrReject<T, E extends Error>(
  errorClass: abstract new (...args: never[]) => E,
  fn: () => T,
): Outcome<T, E> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof errorClass) return { ok: false, error: err };
    throw crash(errorClass, err);
  }
}

/** {@link acceptOrReject} for async code. */
export async function acceptOrRejectAsync<T, E extends Error>(
  errorClass: abstract new (...args: never[]) => E,
  fn: () => Promise<T>,
): Promise<Outcome<T, E>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (err instanceof errorClass) return { ok: false, error: err };
    throw crash(errorClass, err);
  }
}

function crash(errorClass: { name: string }, err: unknown): Error {
  const detail = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  return new Error(`crash: expected a result or a ${errorClass.name}, got ${detail}`);
}

/**
 * Unhandled promise rejections during a test file: call once at the top of the file, then
 * `assertNone()` after the properties (node:test would only report them at the end of the run).
 */
export function trackUnhandledRejections(): { assertNone(): void } {
  const seen: unknown[] = [];
  process.on('unhandledRejection', (reason) => seen.push(reason));
  return {
    assertNone() {
      assert.deepEqual(seen.map(String), [], 'unhandled promise rejections');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Values

/** Scalars that trip parsers and type checks: big and odd numbers, YAML keywords as text, unicode. */
export const oddScalar: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    1.5,
    2 ** 53,
    2 ** 53 + 2,
    -(2 ** 63),
    1e308,
    Number.MIN_VALUE,
    '',
    ' ',
    'yes',
    'no',
    'on',
    'null',
    '~',
    '0x1F',
    '1e400',
    '.inf',
    '-.nan',
    '30',
    '1h30m',
    '-5m',
    '10',
    '<<',
    '__proto__',
    'constructor',
    'a\nb',
    '\t',
    '\u0000',
    '\uFEFF',
    '😀',
    'AKIAABCDEFGHIJKLMNOP',
    '-----BEGIN RSA PRIVATE KEY-----',
    true,
    false,
    null,
  ),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Keys that trip maps and path formatting. */
export const oddKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'toString', 'a.b', 'a b', '[0]', '"', '', '<<', 'é', 'x'),
  fc.string({ maxLength: 8 }),
);

/** Any JSON-like value, a few levels deep, with odd scalars and keys. */
export const junk: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    oddScalar,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(oddKey, tie('value'), { maxKeys: 3 }),
  ),
})).value;

/** Options of {@link fromSchema}. */
export interface SchemaArbitraryOptions {
  /** Weight of a junk value against 10 for a fitting one, at every node (0: only fitting values). */
  junkWeight?: number;
  /** Keys for `additionalProperties` maps at a schema location (`#/properties/jobs`), e.g. job names. */
  keysAt?: Record<string, fc.Arbitrary<string>>;
  /** Values for a schema location instead of the generated ones (e.g. valid YAML for a YAML text). */
  valuesAt?: Record<string, fc.Arbitrary<unknown>>;
}

function typesOf(schema: JsonSchema): JsonType[] {
  if (schema.type === undefined) return [];
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}

/**
 * An arbitrary of values for `schema` (the JSON Schema subset of src/config/schema.ts: $ref, anyOf,
 * enum, type lists, properties, additionalProperties, required, items, pattern, minLength,
 * minimum). Optional keys are left out or set at random; with `junkWeight` > 0 any node may be
 * junk instead, so the result covers both what the schema accepts and what it must reject.
 */
export function fromSchema(root: JsonSchema, options: SchemaArbitraryOptions = {}): fc.Arbitrary<unknown> {
  const junkWeight = options.junkWeight ?? 0;
  const resolve = (schema: JsonSchema): [JsonSchema, string | undefined] => {
    if (schema.$ref === undefined) return [schema, undefined];
    const name = schema.$ref.replace('#/$defs/', '');
    const target = root.$defs?.[name];
    assert.ok(target, `unknown $ref ${schema.$ref}`);
    return [{ ...target, ...schema, $ref: undefined }, `#/$defs/${name}`];
  };
  const build = (given: JsonSchema, location: string, depth: number): fc.Arbitrary<unknown> => {
    const [schema, refLocation] = resolve(given);
    const at = refLocation ?? location;
    const fitting = options.valuesAt?.[at] ?? fitted(schema, at, depth);
    if (junkWeight === 0) return fitting;
    return fc.oneof({ arbitrary: fitting, weight: 10 }, { arbitrary: junk, weight: junkWeight });
  };
  const fitted = (schema: JsonSchema, location: string, depth: number): fc.Arbitrary<unknown> => {
    if (schema.anyOf !== undefined) {
      return fc.oneof(...schema.anyOf.map((s, i) => build(s, `${location}/anyOf/${i}`, depth)));
    }
    if (schema.enum !== undefined) return fc.constantFrom(...schema.enum);
    const types = typesOf(schema);
    if (types.length === 0) return junk;
    return fc.oneof(...types.map((type) => ofType(schema, type, location, depth)));
  };
  const ofType = (
    schema: JsonSchema,
    type: JsonType,
    location: string,
    depth: number,
  ): fc.Arbitrary<unknown> => {
    switch (type) {
      case 'null':
        return fc.constant(null);
      case 'boolean':
        return fc.boolean();
      case 'integer':
        return fc.oneof(
          fc.integer({ min: schema.minimum ?? -1000, max: (schema.minimum ?? 0) + 1_000_000 }),
          fc.constantFrom(schema.minimum ?? 0, Number.MAX_SAFE_INTEGER),
        );
      case 'number':
        return fc.double({ noNaN: true, noDefaultInfinity: true, min: schema.minimum ?? -1e9 });
      case 'string':
        if (schema.pattern !== undefined) return fc.stringMatching(new RegExp(schema.pattern, 'u'));
        return fc.oneof(
          fc.string({ minLength: schema.minLength ?? 0, maxLength: 16 }),
          fc.stringMatching(/^[a-z][a-z0-9./:-]{0,20}$/),
        );
      case 'array':
        return fc.array(schema.items ? build(schema.items, `${location}/items`, depth + 1) : junk, {
          maxLength: 3,
        });
      case 'object':
        return objectOf(schema, location, depth);
    }
  };
  const objectOf = (schema: JsonSchema, location: string, depth: number): fc.Arbitrary<unknown> => {
    const properties = Object.entries(schema.properties ?? {});
    const required = new Set(schema.required ?? []);
    const known = fc.record(
      Object.fromEntries(
        properties.map(([key, s]) => [key, build(s, `${location}/properties/${key}`, depth + 1)]),
      ),
      { requiredKeys: properties.map(([key]) => key).filter((key) => required.has(key)) },
    );
    const extra = schema.additionalProperties;
    if (extra === undefined || extra === false) {
      if (junkWeight === 0) return known;
      // Now and then an unknown key, to check the messages that name and suggest keys.
      return fc
        .tuple(known, fc.option(fc.tuple(oddKey, junk), { freq: 8 }))
        .map(([o, unknown]) => (unknown === null ? o : withKey(o, unknown[0], unknown[1])));
    }
    const keys = options.keysAt?.[location] ?? oddKey;
    const values =
      extra === true
        ? depth > 4
          ? oddScalar
          : junk
        : build(extra, `${location}/additionalProperties`, depth + 1);
    const dictionary = fc
      .array(fc.tuple(keys, values), { maxLength: 3 })
      .map((entries) => entries.reduce<Record<string, unknown>>((o, [k, v]) => withKey(o, k, v), {}));
    if (properties.length === 0) return dictionary;
    return fc.tuple(known, dictionary).map(([a, b]) => Object.assign(b, a));
  };
  return build(root, '#', 0);
}

/** `{...o, [key]: value}` that keeps `__proto__` an ordinary key. */
export function withKey(o: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  return o;
}

// ---------------------------------------------------------------------------------------------
// YAML texts

/** YAML text of a value (block style, no anchors), as an operator would write it. */
export function toYaml(value: unknown): string {
  return dump(value, { noRefs: true, lineWidth: -1, skipInvalid: true });
}

/** Fragments that YAML parsers treat specially; strings of them are mostly invalid YAML. */
const YAML_TOKENS = [
  'jobs:',
  'storage:',
  's3:',
  'local:',
  'path:',
  'enabled: true',
  'priority: ',
  '\n',
  '\n  ',
  '\n    ',
  '  ',
  '- ',
  ': ',
  '? ',
  '&a ',
  '*a',
  '&b ',
  '*b',
  '<<: ',
  '{',
  '}',
  '[',
  ']',
  ',',
  '"',
  "'",
  '\\',
  '!!str ',
  '!!binary ',
  '!custom ',
  '|',
  '>-',
  '---',
  '...',
  '#',
  '%YAML 1.1\n',
  '\t',
  '~',
  '.inf',
  '1e400',
  '9007199254740993',
  '0o17',
  '\uFEFF',
  '\r\n',
];

/** Text made of YAML fragments and random characters: the parser's error paths. */
export const yamlNoise: fc.Arbitrary<string> = fc
  .array(fc.oneof({ arbitrary: fc.constantFrom(...YAML_TOKENS), weight: 4 }, fc.string({ maxLength: 4 })), {
    maxLength: 40,
  })
  .map((parts) => parts.join(''));

/**
 * A mapping at `path` whose aliases copy `fanout^levels` values ("billion laughs"), e.g. levels 9,
 * fan-out 9: a few hundred bytes that would expand to 387 million values.
 */
export function aliasBomb(path: readonly string[], levels: number, fanout: number): string {
  const indent = '  '.repeat(path.length);
  const head = path.map((key, i) => `${'  '.repeat(i)}${key}:\n`).join('');
  const lines = [`${indent}l0: &l0 [x]`];
  for (let level = 1; level <= levels; level++) {
    const refs = Array.from({ length: fanout }, () => `*l${level - 1}`).join(', ');
    lines.push(`${indent}l${level}: &l${level} [${refs}]`);
  }
  return `${head}${lines.join('\n')}\n`;
}

/** The keys of a key path as the loaders write it: `a.b["c.d"][0]` → a, b, c.d. */
export function pathKeys(path: string): string[] {
  const keys: string[] = [];
  for (const m of path.matchAll(/(?:^|\.)([A-Za-z_][\w-]*)|\[("(?:[^"\\]|\\.)*")\]/g)) {
    const key = m[1] ?? (m[2] === undefined ? undefined : (JSON.parse(m[2]) as string));
    if (key !== undefined) keys.push(key);
  }
  return keys;
}

/** Paths of the mappings in a plain value (for placing duplicates and big numbers). */
export function mappingPaths(value: unknown, path: string[] = []): string[][] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return [path, ...Object.entries(value).flatMap(([k, v]) => mappingPaths(v, [...path, k]))];
}

/** The value at `path` in a plain value. */
export function valueAt(value: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], value);
}

// ---------------------------------------------------------------------------------------------
// File loaders

/** One problem of a rejected file, as the loader's error reports it. */
export interface LocatedProblem {
  file: string;
  /** 1-based; 0 for the file as a whole. */
  line: number;
  /** Key path, '' when not about one key. */
  path: string;
  message: string;
}

/** A loader of YAML files under test, and what {@link fileLoaderProperties} needs to know of it. */
export interface FileLoaderSpec<T, E extends Error> {
  /** Names the `describe` of the properties. */
  name: string;
  /** The schema of one file (for the schema-shaped trees). */
  schema: JsonSchema;
  /** Extra options of {@link fromSchema} (job names, YAML texts). */
  schemaOptions?: SchemaArbitraryOptions;
  /** The error class of a refused file. */
  errorClass: abstract new (...args: never[]) => E;
  /** The problems an error lists. */
  problems(error: E): LocatedProblem[];
  /** Loads texts as files named `name`, in order. */
  load(sources: { name: string; text: string }[]): T | Promise<T>;
  /** The loaded value as data comparable with deepEqual (e.g. without a hash). */
  comparable(value: T): unknown;
  /** The text of a file that loads as `value` again (the round trip). */
  reserialize(value: T): string;
  /** A top-level key under which {@link aliasBomb} and duplicates are placed in a free-form map. */
  freeFormPath: readonly string[];
  /** A file with a valid value at `path` = {@link freeFormPath} + `key`: for the big-number property. */
  integerPath: { path: readonly string[]; valid: number };
  /** The byte limit of one file. */
  maxBytes: number;
  /** How many values the aliases of one file may copy. */
  maxAliasCopies: number;
  /** Top-level sections that are maps of entries (e.g. `jobs`): a split spreads their entries over files. */
  entryMaps?: readonly string[];
  /** Run counts in CI (default 60 for the cheap properties). */
  runs?: number;
}

/**
 * Registers the standard properties of a YAML file loader (inside the caller's `describe`):
 * never a crash, every refusal names file:line and (for well-formed YAML) a key path, and what is
 * accepted reloads equal from its reserialized text.
 */
export function fileLoaderProperties<T, E extends Error>(spec: FileLoaderSpec<T, E>): void {
  const runs = spec.runs ?? 60;
  const load = async (sources: { name: string; text: string }[]): Promise<Outcome<T, E>> =>
    boundedAsync(`loading ${sources.map((s) => s.name).join(', ')}`, () =>
      acceptOrRejectAsync(spec.errorClass, async () => spec.load(sources)),
    );
  const checkLocated = (
    error: E,
    sources: { name: string; text: string }[],
    needPath: boolean,
  ): LocatedProblem[] => {
    const problems = spec.problems(error);
    assert.ok(problems.length > 0, `a ${error.name} without problems: ${error.message}`);
    for (const p of problems) {
      const source = sources.find((s) => s.name === p.file);
      assert.ok(source, `problem names no given file: ${JSON.stringify(p)}`);
      const lines = source.text.split('\n').length;
      assert.ok(
        p.line >= 0 && p.line <= lines,
        `line ${p.line} outside ${p.file} (${lines} lines): ${p.message}`,
      );
      if (needPath && p.line !== 0) {
        assert.notEqual(p.path, '', `no key path in a problem of well-formed YAML: ${JSON.stringify(p)}`);
        // The line shows the key the problem is about, or one of its parents (a missing key is
        // reported at its parent); YAML text inside a block scalar has lines of its own.
        const text = source.text.split('\n')[p.line - 1] ?? '';
        const shown = pathKeys(p.path).some(
          (key) =>
            text.includes(key) ||
            text.includes(JSON.stringify(key).slice(1, -1)) ||
            text.includes(key.replace(/'/g, "''")),
        );
        const inBlock = /YAML text/.test(p.message);
        // A list item's line shows its value (and a key missing from an item is reported at the item's
        // line, `- {}`); a problem about two keys is at the one it names.
        const item =
          /\[\d+\]$/.test(p.path) || (p.message.startsWith('missing') && /\[\d+\]\.[^.[]+$/.test(p.path));
        const lineKey = /^\s*(?:- )*["']?([^"':]+)["']?:/.exec(text)?.[1];
        const named = lineKey !== undefined && p.message.includes(lineKey);
        assert.ok(
          shown || inBlock || item || named,
          `line ${p.line} (${JSON.stringify(text)}) shows no key of ${p.path}: ${p.message}`,
        );
      }
      assert.ok(error.message.includes(p.message), 'the message lists every problem');
    }
    return problems;
  };
  const treeArbitrary = fromSchema(spec.schema, { junkWeight: 1, ...spec.schemaOptions });
  const fittingTree = fromSchema(spec.schema, { ...spec.schemaOptions, junkWeight: 0 });

  it(`${spec.name}: any text loads or is refused with file:line problems`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(yamlNoise, { minLength: 1, maxLength: 3 }), async (texts) => {
        const sources = texts.map((text, i) => ({ name: `noise-${i}.yaml`, text }));
        const outcome = await load(sources);
        if (!outcome.ok) checkLocated(outcome.error, sources, false);
      }),
      fuzzParameters(runs * 3),
    );
  });

  it(`${spec.name}: schema-shaped trees, as YAML and as JSON, load alike; refusals name key paths`, async () => {
    await fc.assert(
      fc.asyncProperty(treeArbitrary, async (tree) => {
        const yaml = [{ name: 'tree.yaml', text: toYaml(tree) }];
        const json = [{ name: 'tree.json', text: JSON.stringify(tree) }];
        const a = await load(yaml);
        const b = await load(json);
        const isMapping = typeof tree === 'object' && tree !== null && !Array.isArray(tree);
        if (!a.ok) checkLocated(a.error, yaml, isMapping);
        if (!b.ok) checkLocated(b.error, json, isMapping);
        assert.equal(a.ok, b.ok, 'YAML and JSON of one tree: both accepted or both refused');
        if (a.ok && b.ok) assert.deepEqual(spec.comparable(a.value), spec.comparable(b.value));
        if (!a.ok && !b.ok) {
          const paths = (e: E) => [...new Set(spec.problems(e).map((p) => p.path))].sort();
          assert.deepEqual(paths(a.error), paths(b.error), 'the same key paths are refused');
        }
      }),
      fuzzParameters(runs * 2),
    );
  });

  it(`${spec.name}: accepted files round-trip (value → text → load gives the same value)`, async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fittingTree, async (tree) => {
        const first = await load([{ name: 'first.yaml', text: toYaml(tree) }]);
        if (!first.ok) return;
        accepted++;
        const text = spec.reserialize(first.value);
        const again = await load([{ name: 'again.json', text }]);
        assert.ok(
          again.ok,
          `the reserialized value is refused:\n${text}\n${again.ok ? '' : again.error.message}`,
        );
        assert.deepEqual(spec.comparable(again.value), spec.comparable(first.value));
        const third = await load([{ name: 'third.json', text: spec.reserialize(again.value) }]);
        assert.ok(third.ok);
        assert.deepEqual(spec.comparable(third.value), spec.comparable(first.value));
      }),
      fuzzParameters(runs * 2),
    );
    // A generator that never produced an acceptable file would make this property vacuous.
    assert.ok(accepted > 0, 'no generated file was accepted');
  });

  it(`${spec.name}: several files merge; a file split by sections loads like the whole`, async () => {
    await fc.assert(
      fc.asyncProperty(fittingTree, fc.integer({ min: 1, max: 4 }), fc.nat(), async (tree, parts, salt) => {
        const whole = await load([{ name: 'whole.yaml', text: toYaml(tree) }]);
        const sources = splitSections(tree, parts, salt, spec.entryMaps ?? []).map((part, i) => ({
          name: `part-${i}.yaml`,
          text: toYaml(part),
        }));
        const split = await load(sources);
        if (!split.ok) checkLocated(split.error, sources, true);
        assert.equal(split.ok, whole.ok, 'split and whole: both accepted or both refused');
        if (split.ok && whole.ok)
          assert.deepEqual(spec.comparable(split.value), spec.comparable(whole.value));
        // The same file twice, and an empty file after it, change nothing.
        const twice = await load([...sources, ...sources, { name: 'empty.yaml', text: '' }]);
        assert.equal(twice.ok, split.ok);
        if (twice.ok && split.ok)
          assert.deepEqual(spec.comparable(twice.value), spec.comparable(split.value));
      }),
      fuzzParameters(runs),
    );
  });

  it(`${spec.name}: a duplicate key is refused with its key path and line`, async () => {
    await fc.assert(
      fc.asyncProperty(fittingTree, fc.nat(), fc.nat(), oddScalar, async (tree, pickMap, pickKey, extra) => {
        const maps = mappingPaths(tree).filter((p) => Object.keys(valueAt(tree, p) as object).length > 0);
        const path = maps[pickMap % maps.length];
        if (path === undefined) return;
        const keys = Object.keys(valueAt(tree, path) as object);
        const key = keys[pickKey % keys.length] ?? '';
        const { text, line } = prettyJsonWithDuplicate(tree, path, key, extra);
        const sources = [{ name: 'dup.json', text }];
        const outcome = await load(sources);
        assert.ok(!outcome.ok, `a duplicate ${JSON.stringify(key)} on line ${line} was accepted`);
        const problems = checkLocated(outcome.error, sources, false);
        const dup = problems.find((p) => p.line === line && /duplicate/i.test(p.message));
        assert.ok(dup, `no duplicate-key problem at line ${line}: ${outcome.error.message}`);
        assert.ok(
          dup.path.endsWith(key) || dup.path.endsWith(`${JSON.stringify(key)}]`),
          `the problem names ${JSON.stringify(dup.path)}, not the key ${JSON.stringify(key)}`,
        );
      }),
      fuzzParameters(runs),
    );
  });

  it(`${spec.name}: alias bombs are refused in bounded time, small aliases are fine`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        async (levels, fanout) => {
          const sources = [{ name: 'bomb.yaml', text: aliasBomb(spec.freeFormPath, levels, fanout) }];
          const outcome = await load(sources);
          // Values the aliases copy: each *l(k-1) copies the list l(k-1) and everything in it.
          let copies = 0;
          for (let level = 1, size = 2; level <= levels; level++) {
            copies += fanout * size;
            size = 1 + fanout * size;
          }
          if (copies > spec.maxAliasCopies) {
            assert.ok(!outcome.ok, `${fanout}^${levels} alias copies accepted`);
            const problems = checkLocated(outcome.error, sources, true);
            assert.ok(
              problems.some((p) => /alias/.test(p.message) && p.path.startsWith(spec.freeFormPath.join('.'))),
              outcome.error.message,
            );
          } else {
            assert.ok(
              outcome.ok,
              `${copies} alias copies refused: ${outcome.ok ? '' : outcome.error.message}`,
            );
          }
        },
      ),
      fuzzParameters(runs),
    );
  });

  it(`${spec.name}: texts over the size cap are refused before parsing`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: -64, max: 64 }), fittingTree, async (delta, tree) => {
        const body = toYaml(tree);
        const padding = Math.max(0, spec.maxBytes + delta - Buffer.byteLength(body) - 2);
        const text = `${body}#${'x'.repeat(padding)}\n`;
        const sources = [{ name: 'big.yaml', text }];
        const outcome = await load(sources);
        const over = Buffer.byteLength(text) > spec.maxBytes;
        if (over) {
          assert.ok(!outcome.ok, `${Buffer.byteLength(text)} bytes accepted`);
          const problems = checkLocated(outcome.error, sources, false);
          assert.deepEqual(
            problems.map((p) => [p.line, p.path]),
            [[0, '']],
          );
          assert.match(outcome.error.message, /bytes/);
        } else if (!outcome.ok) {
          assert.doesNotMatch(outcome.error.message, /more than the \d+ .*a config may have/);
        }
      }),
      fuzzParameters(Math.min(runs, 20)),
    );
  });

  it(`${spec.name}: whole numbers beyond 2^53 are refused with their path, not rounded`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.bigInt({ min: 2n ** 53n, max: 2n ** 70n }), fc.boolean(), async (big, negative) => {
        const value = negative ? -big : big;
        const { path } = spec.integerPath;
        const text = path
          .map((k, i) => `${'  '.repeat(i)}${k}:${i === path.length - 1 ? ` ${value}` : ''}`)
          .join('\n');
        const sources = [{ name: 'big-number.yaml', text: `${text}\n` }];
        const outcome = await load(sources);
        const exact = Number.isSafeInteger(Number(value)) && BigInt(Number(value)) === value;
        if (exact) return;
        assert.ok(!outcome.ok, `${value} accepted at ${path.join('.')}`);
        const problems = checkLocated(outcome.error, sources, true);
        assert.ok(
          problems.some((p) => p.path === path.join('.') && p.line === path.length),
          `no problem at ${path.join('.')} line ${path.length}: ${outcome.error.message}`,
        );
      }),
      fuzzParameters(runs),
    );
  });
}

/**
 * Splits a mapping into `parts` files by its top-level sections, and the entries of each section
 * among the files (a section's entry stays whole, so no merge rule other than key-by-key applies).
 */
export function splitSections(
  tree: unknown,
  parts: number,
  salt: number,
  entryMaps: readonly string[],
): Record<string, unknown>[] {
  const files = Array.from({ length: parts }, (): Record<string, unknown> => ({}));
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree)) return files;
  let n = salt;
  const next = (): Record<string, unknown> => {
    n = (n * 1103515245 + 12345) % 2 ** 31;
    const file = files[n % parts];
    assert.ok(file);
    return file;
  };
  for (const [section, value] of Object.entries(tree)) {
    if (entryMaps.includes(section) && typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
        const file = next();
        if (!Object.hasOwn(file, section)) withKey(file, section, {});
        withKey(file[section] as Record<string, unknown>, key, entry);
      }
      continue;
    }
    withKey(next(), section, value);
  }
  return files;
}

/**
 * Indented JSON of `tree` (valid YAML too) with `key` of the mapping at `path` written a second
 * time, with `extra` as its value; `line` is the 1-based line of the second one.
 */
export function prettyJsonWithDuplicate(
  tree: unknown,
  path: readonly string[],
  key: string,
  extra: unknown,
): { text: string; line: number } {
  const lines: string[] = [];
  let line = 0;
  const write = (value: unknown, at: string[], indent: string, prefix: string, suffix: string): void => {
    if (typeof value !== 'object' || value === null) {
      lines.push(`${indent}${prefix}${value === undefined ? 'null' : JSON.stringify(value)}${suffix}`);
      return;
    }
    const entries: [string | null, unknown][] = Array.isArray(value)
      ? value.map((v): [null, unknown] => [null, v])
      : Object.entries(value);
    const target = !Array.isArray(value) && at.length === path.length && at.every((k, i) => k === path[i]);
    if (target) entries.push([key, extra]);
    lines.push(`${indent}${prefix}${Array.isArray(value) ? '[' : '{'}`);
    entries.forEach(([k, v], i) => {
      const comma = i < entries.length - 1 ? ',' : '';
      if (target && i === entries.length - 1) line = lines.length + 1;
      const childPrefix = k === null ? '' : `${JSON.stringify(k)}: `;
      write(v, k === null ? [...at, String(i)] : [...at, k], `${indent}  `, childPrefix, comma);
    });
    lines.push(`${indent}${Array.isArray(value) ? ']' : '}'}${suffix}`);
  };
  write(tree, [], '', '', '');
  return { text: `${lines.join('\n')}\n`, line };
}
