import { KsUpgradeError } from '../errors.js';
import { MIN_MULTIPART_THRESHOLD } from './defaults.js';
import { parseDuration } from './duration.js';
import { checkEmbeddedYaml } from './parse.js';
import type { ProblemCollector } from './problems.js';
import type { JsonSchema, JsonType } from './schema.js';
import { closestMatch } from './suggest.js';
import { isUnset, joinPath, type ConfigNode, type ScalarNode } from './tree.js';

// An interpreter for the JSON Schema subset in schema.ts, over the located tree, that reports
// operator-grade messages instead of JSON Schema jargon. Two $defs get dedicated checks whose
// messages a generic validator could not give: `duration` (Go syntax, the nanosecond trap) and
// `yamlText` (a mapping written where YAML text belongs, and syntax errors inside the text).

/**
 * Fixes that depend on the setting, keyed by `<parent>.<key>:<keyword>` of the schema location
 * (e.g. `s3.bucket:required`). Everything else gets a hint derived from the expected type.
 */
const SPECIFIC_HINTS: Readonly<Record<string, string>> = {
  's3.bucket:required':
    'add "bucket: <name>" under storage.s3, or remove storage.s3 to keep backups in storage.local.path',
  'extensionRef.version:required':
    'add the extension version served by extensions-museum, e.g. version: "1.1.2" (the InstallPlan needs it)',
  'job.priority:minimum': 'use a whole number of 0 or more (higher priorities run first)',
  's3.multipartThreshold:minimum': `use at least ${MIN_MULTIPART_THRESHOLD} bytes (5 MiB, the smallest S3 part size), e.g. the default 8388608 (8 MiB)`,
  'retry.maximumAttempts:minimum':
    'use 1 or more (1 means no automatic retry: the operator is asked after the first failure)',
  'encryption.keyEnv:pattern':
    'give the name of the environment variable that holds the key (letters, digits, _), not the key itself',
};

const TYPE_WORDS: Record<JsonType, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'a boolean (true or false)',
  null: 'null',
};

function typeOf(node: ConfigNode): JsonType {
  if (node.kind === 'map') return 'object';
  if (node.kind === 'list') return 'array';
  const value = node.value;
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value === 'boolean' ? 'boolean' : 'string';
}

/**
 * "the string "yes"", "a mapping", … — what the operator wrote, in words. With `secret`, only the
 * kind of value, so that a credential never reaches a log through an error message.
 */
export function describeValue(node: ConfigNode, secret = false): string {
  if (node.kind === 'map') return 'a mapping';
  if (node.kind === 'list') return 'a list';
  const value = node.value;
  if (value === null) return 'an empty value (null)';
  if (secret) return `a ${typeof value}`;
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value;
    return `the string ${JSON.stringify(shown)}`;
  }
  return `the ${typeof value} ${String(value)}`;
}

function typesOf(schema: JsonSchema): JsonType[] | undefined {
  if (schema.type === undefined) return undefined;
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}

function accepts(types: JsonType[], actual: JsonType): boolean {
  return types.includes(actual) || (actual === 'integer' && types.includes('number'));
}

/** `#/$defs/job/properties/priority` → `job.priority`. */
function hintKey(location: string, keyword: string): string {
  const parts = location
    .split('/')
    .filter((p) => !['#', 'properties', '$defs', 'additionalProperties', 'items'].includes(p));
  return `${parts.slice(-2).join('.')}:${keyword}`;
}

function typeHint(expected: JsonType[], node: ConfigNode, secret: boolean): string {
  const value = node.kind === 'scalar' ? node.value : undefined;
  if (expected.includes('boolean')) {
    if (typeof value === 'string' && /^(true|false)$/i.test(value)) {
      return `remove the quotes: ${value.toLowerCase()}`;
    }
    if (typeof value === 'string' && /^(yes|no|on|off|y|n)$/i.test(value)) {
      return 'write true or false without quotes (YAML 1.2 reads yes/no/on/off as text)';
    }
    return 'write true or false without quotes';
  }
  if (expected.includes('integer') || expected.includes('number')) {
    if (typeof value === 'string' && /^-?[0-9]+(\.[0-9]+)?$/.test(value))
      return `remove the quotes: ${value}`;
    return 'write a whole number without quotes or fraction, e.g. 100';
  }
  if (expected.includes('string')) {
    if (node.kind === 'scalar' && secret) return 'put the value in quotes so it stays text';
    if (node.kind === 'scalar') {
      const raw = node.raw ?? String(value);
      return `put the value in quotes so it stays text: "${raw.replace(/"/g, '\\"')}"`;
    }
    return 'write a single text value here (quote it if it contains ": " or starts with a special character)';
  }
  if (expected.includes('object'))
    return 'write it as "key: value" lines indented under the key (use {} for none)';
  if (expected.includes('array')) return 'write a list: one "- item" line per entry, or [a, b]';
  return 'see config.schema.json for the expected form';
}

class SchemaValidator {
  private readonly hints: Readonly<Record<string, string>>;

  constructor(
    private readonly root: JsonSchema,
    private readonly problems: ProblemCollector,
    private readonly options: SchemaCheckOptions = {},
  ) {
    this.hints = { ...SPECIFIC_HINTS, ...options.hints };
  }

  check(node: ConfigNode, schema: JsonSchema, location: string, path: string): void {
    if (schema.$ref !== undefined) {
      const name = schema.$ref.replace(/^#\/\$defs\//, '');
      if (name === 'duration') this.checkDuration(node, path);
      else if (name === 'yamlText') this.checkYamlText(node, path);
      else {
        const target = this.root.$defs?.[name];
        if (target === undefined) throw new Error(`config schema: unresolved $ref ${schema.$ref}`);
        this.check(node, target, `#/$defs/${name}`, path);
      }
      return;
    }
    if (schema.anyOf !== undefined)
      throw new Error('config schema: anyOf is only interpreted inside $defs/duration');
    const types = typesOf(schema);
    const actual = typeOf(node);
    if (types !== undefined && !accepts(types, actual)) {
      const expected = types.filter((t) => t !== 'null');
      this.problems.at(
        node.at,
        path,
        `expected ${expected.map((t) => TYPE_WORDS[t]).join(' or ')}, got ${describeValue(node, schema.writeOnly)}`,
        typeHint(expected, node, schema.writeOnly === true),
      );
      return;
    }
    if (actual === 'null') return;
    if (node.kind === 'scalar') this.checkScalar(node, schema, location, path);
    else if (node.kind === 'list') {
      if (schema.items !== undefined) {
        const items = schema.items;
        node.items.forEach((item, i) => {
          this.check(item, items, `${location}/items`, joinPath(path, i));
        });
      }
    } else {
      this.checkMap(node.entries, node, schema, location, path);
    }
  }

  private checkScalar(node: ScalarNode, schema: JsonSchema, location: string, path: string): void {
    const value = node.value;
    const shown = schema.writeOnly === true ? 'the value' : JSON.stringify(value);
    if (schema.enum !== undefined && !schema.enum.includes(value)) {
      const allowed = schema.enum.filter((v) => v !== null).map(String);
      this.problems.at(
        node.at,
        path,
        `${shown} is not an allowed value`,
        `use one of: ${allowed.join(', ')}`,
      );
      return;
    }
    if (typeof value === 'string') {
      if (schema.minLength !== undefined && value.length < schema.minLength) {
        this.problems.at(
          node.at,
          path,
          'must not be empty',
          this.hints[hintKey(location, 'required')] ?? 'set a value, or remove the key to use the default',
        );
      } else if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
        this.problems.at(
          node.at,
          path,
          // Not repeated: the one pattern-checked key (keyEnv) most often fails by holding the key itself.
          `the value does not match ${schema.pattern}`,
          this.hints[hintKey(location, 'pattern')] ??
            `see the description of this key in ${this.options.schemaFile ?? 'config.schema.json'}`,
        );
      }
    }
    if (typeof value === 'number' && schema.minimum !== undefined && value < schema.minimum) {
      this.problems.at(
        node.at,
        path,
        schema.minimum === 0
          ? `must not be negative, got ${value}`
          : `must be at least ${schema.minimum}, got ${value}`,
        this.hints[hintKey(location, 'minimum')] ?? `use ${schema.minimum} or more`,
      );
    }
  }

  private checkMap(
    entries: Map<string, ConfigNode>,
    node: ConfigNode,
    schema: JsonSchema,
    location: string,
    path: string,
  ): void {
    const properties = schema.properties ?? {};
    const required = new Set(schema.required ?? []);
    for (const key of required) {
      if (!isUnset(entries.get(key))) continue;
      const within = path === '' ? 'the top level' : path;
      this.problems.at(
        entries.get(key)?.at ?? node.at,
        joinPath(path, key),
        `missing (required when ${within} is set)`,
        this.hints[hintKey(`${location}/properties/${key}`, 'required')] ?? `add ${key} under ${within}`,
      );
    }
    for (const [key, child] of entries) {
      const childPath = joinPath(path, child.spelledAs ?? key);
      const property = Object.hasOwn(properties, key) ? properties[key] : undefined;
      if (property !== undefined) {
        if (!(required.has(key) && isUnset(child))) {
          this.check(child, property, `${location}/properties/${key}`, childPath);
        }
      } else if (schema.additionalProperties === false) {
        const allowed = Object.entries(properties)
          .filter(([, s]) => s.deprecated !== true)
          .map(([k]) => k);
        const guess = closestMatch(key, allowed);
        this.problems.at(
          child.at,
          childPath,
          'unknown key',
          guess !== undefined
            ? `did you mean '${guess}'?`
            : `remove it or use one of the keys allowed here: ${allowed.join(', ')}`,
        );
      } else if (typeof schema.additionalProperties === 'object') {
        this.check(child, schema.additionalProperties, `${location}/additionalProperties`, childPath);
      }
    }
  }

  private checkDuration(node: ConfigNode, path: string): void {
    const example = 'a duration such as "30s", "5m" or "1h30m"';
    if (node.kind !== 'scalar') {
      this.problems.at(
        node.at,
        path,
        `expected ${example}, got ${describeValue(node)}`,
        'write a number and a unit (h, m, s, ms, us, ns) on the same line as the key',
      );
      return;
    }
    const value = node.value;
    if (value === null || value === 0) return;
    if (typeof value === 'number') {
      this.problems.at(
        node.at,
        path,
        `expected ${example}, got the number ${value} (the original tool read bare numbers as nanoseconds)`,
        `write the unit explicitly, e.g. "${value}s" or "${value}ms"`,
      );
      return;
    }
    if (typeof value !== 'string') {
      this.problems.at(
        node.at,
        path,
        `expected ${example}, got ${describeValue(node)}`,
        'write a number and a unit (h, m, s, ms, us, ns)',
      );
      return;
    }
    try {
      if (parseDuration(value) < 0) {
        this.problems.at(
          node.at,
          path,
          `invalid duration ${JSON.stringify(value)}: must not be negative`,
          'use 0 or a positive duration such as "5m"',
        );
      }
    } catch (err) {
      if (!(err instanceof KsUpgradeError)) throw err;
      this.problems.at(node.at, path, err.message, err.hint ?? 'write a duration such as "5m"');
    }
  }

  private checkYamlText(node: ConfigNode, path: string): void {
    if (node.kind !== 'scalar' || (node.value !== null && typeof node.value !== 'string')) {
      const key = path.replace(/^.*[.[]/, '').replace(/[\]"]/g, '');
      this.problems.at(
        node.at,
        path,
        `expected YAML text (a string), got ${describeValue(node)}`,
        node.kind === 'map' || node.kind === 'list'
          ? `write it as a block scalar: put "|" after the colon (${key}: |) and indent the YAML lines below it`
          : `put the value in quotes or in a "|" block scalar`,
      );
      return;
    }
    if (node.value === null) return;
    const result = checkEmbeddedYaml(node.value);
    if (result === null) return;
    if (result === 'not-a-mapping') {
      this.problems.at(
        node.at,
        path,
        'the YAML text must be a mapping of values ("key: value" lines)',
        'write the extension values as YAML key: value lines inside the "|" block',
      );
      return;
    }
    // A literal block maps 1:1 onto source lines, so the error can point into the block itself;
    // errors found at the end of the text (an unclosed bracket) point at its last line.
    const lastLine = node.value.replace(/\n+$/, '').split('\n').length - 1;
    const at =
      node.blockLine !== undefined
        ? { ...node.at, line: node.blockLine + Math.min(result.line, lastLine) }
        : node.at;
    const where = node.blockLine !== undefined ? '' : ` (line ${result.line + 1} of the text)`;
    this.problems.at(
      at,
      path,
      `the YAML text is invalid: ${result.reason}${where}`,
      'fix the YAML inside the block (indentation by spaces, quotes, brackets)',
    );
  }
}

/** How another file kind (the fleet file) tailors the messages. */
export interface SchemaCheckOptions {
  /** Fixes by `<parent>.<key>:<keyword>`, over the config's own. */
  hints?: Readonly<Record<string, string>>;
  /** The schema file operators are pointed to. */
  schemaFile?: string;
}

/** Checks the merged tree against the schema, adding a problem for every violation found. */
export function validateAgainstSchema(
  root: ConfigNode,
  schema: JsonSchema,
  problems: ProblemCollector,
  options: SchemaCheckOptions = {},
): void {
  new SchemaValidator(schema, problems, options).check(root, schema, '#', '');
}
