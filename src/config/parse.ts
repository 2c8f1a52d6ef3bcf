import { isRecord } from '../util/object.js';
import {
  CORE_SCHEMA,
  EVENT_ID,
  SCALAR_STYLE,
  YAMLException,
  constructFromEvents,
  getScalarValue,
  mergeTag,
  parseEvents,
  type Event,
} from 'js-yaml';
import type { ConfigProblem } from './errors.js';
import type { ConfigNode, MapNode, Origin, Scalar } from './tree.js';

/**
 * YAML 1.2 core schema (what js-yaml and current tooling speak; `yes`/`no` are strings, and strict
 * validation reports them instead of guessing) plus merge keys (`<<: *anchor`), which the original's
 * YAML library supported and long configs use.
 */
const SCHEMA = CORE_SCHEMA.withTags(mergeTag);

type Path = (string | number)[];

interface Position {
  line: number;
  raw?: string;
  blockLine?: number;
}

/** A file's parse result: the document as a located tree (null for an empty file) and any problems. */
export interface ParsedSource {
  root: MapNode | null;
  problems: ConfigProblem[];
}

/** Line lookup for source offsets. */
class Lines {
  private readonly starts: number[] = [0];
  constructor(text: string) {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.starts.push(i + 1);
  }
  /** 1-based line of a 0-based offset. */
  lineOf(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }
}

/** Hints for js-yaml's syntax errors that operators meet most; the reason text itself stays as YAML said it. */
function syntaxHint(reason: string): string {
  if (reason.includes('tab')) return 'indent with spaces only (YAML forbids tabs in indentation)';
  if (reason.includes('duplicated mapping key')) {
    return 'remove one of the two entries (a key may appear once per mapping)';
  }
  if (reason.includes('indentation')) {
    return 'align the key with its siblings (nested keys need more spaces than their parent key)';
  }
  if (reason.includes('unknown') && reason.includes('tag')) {
    return 'remove the !tag (only standard YAML types are supported)';
  }
  return 'fix the YAML syntax at this line (check quotes, colons, brackets and indentation)';
}

function yamlProblem(file: string, err: YAMLException): ConfigProblem {
  return {
    file,
    line: (err.mark?.line ?? 0) + 1,
    path: '',
    message: `invalid YAML: ${err.reason}`,
    hint: syntaxHint(err.reason),
  };
}

function offsetOf(event: Event): number {
  switch (event.type) {
    case EVENT_ID.MAPPING:
    case EVENT_ID.SEQUENCE:
      return event.start;
    case EVENT_ID.SCALAR:
      return event.valueStart;
    case EVENT_ID.ALIAS:
      return event.anchorStart;
    default:
      return -1;
  }
}

type Frame =
  | { kind: 'doc'; index: number }
  | { kind: 'map'; path: Path | null; line: number; key: string | null | undefined; keyLine: number }
  | { kind: 'seq'; path: Path | null; line: number; index: number };

/**
 * Key and value lines of every node of the first document, by JSON-encoded path. Nodes reached
 * through an alias or a merge key have no entry of their own; they take their parent's line.
 */
function positionsOf(events: Event[], text: string, lines: Lines): Map<string, Position> {
  const positions = new Map<string, Position>();
  const stack: Frame[] = [];
  let documents = 0;
  for (const event of events) {
    if (event.type === EVENT_ID.DOCUMENT) {
      stack.push({ kind: 'doc', index: documents++ });
      continue;
    }
    if (event.type === EVENT_ID.POP) {
      stack.pop();
      continue;
    }
    const top = stack[stack.length - 1];
    if (top === undefined) continue;
    const offset = offsetOf(event);
    let path: Path | null;
    let line: number;
    if (top.kind === 'doc') {
      path = top.index === 0 ? [] : null;
      line = offset >= 0 ? lines.lineOf(offset) : 1;
    } else if (top.kind === 'seq') {
      path = top.path === null ? null : [...top.path, top.index];
      top.index++;
      line = offset >= 0 ? lines.lineOf(offset) : top.line;
    } else if (top.key === undefined) {
      // A key. Only scalar keys name config settings; complex keys are walked but not recorded.
      top.keyLine = offset >= 0 ? lines.lineOf(offset) : top.line;
      top.key = event.type === EVENT_ID.SCALAR ? getScalarValue(text, event) : null;
      if (event.type === EVENT_ID.MAPPING) {
        stack.push({ kind: 'map', path: null, line: top.keyLine, key: undefined, keyLine: top.keyLine });
      } else if (event.type === EVENT_ID.SEQUENCE) {
        stack.push({ kind: 'seq', path: null, line: top.keyLine, index: 0 });
      }
      continue;
    } else {
      path = top.path === null || top.key === null ? null : [...top.path, top.key];
      line = top.keyLine;
      top.key = undefined;
    }
    if (path !== null) {
      const position: Position = { line };
      if (event.type === EVENT_ID.SCALAR && event.valueStart >= 0) {
        position.raw = text.slice(event.valueStart, event.valueEnd);
        if (event.style === SCALAR_STYLE.LITERAL_BLOCK) position.blockLine = lines.lineOf(event.valueStart);
      }
      positions.set(JSON.stringify(path), position);
    }
    if (event.type === EVENT_ID.MAPPING) {
      stack.push({ kind: 'map', path, line, key: undefined, keyLine: line });
    } else if (event.type === EVENT_ID.SEQUENCE) {
      stack.push({ kind: 'seq', path, line, index: 0 });
    }
  }
  return positions;
}

/** The line where the second document starts (its `---`), for the "one document per file" error. */
function secondDocumentLine(events: Event[], text: string, lines: Lines): number {
  const first = events.find((e) => e.type === EVENT_ID.DOCUMENT);
  const markers = [...text.matchAll(/^---(?=\s|$)/gm)].map((m) => m.index);
  const marker = first?.type === EVENT_ID.DOCUMENT && first.explicitStart ? markers[1] : markers[0];
  if (marker !== undefined) return lines.lineOf(marker);
  let seen = 0;
  for (const event of events) {
    if (event.type === EVENT_ID.DOCUMENT) seen++;
    else if (seen >= 2 && offsetOf(event) >= 0) return lines.lineOf(offsetOf(event));
  }
  return 1;
}

function describeTopLevel(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `the ${typeof value} ${String(value)}`;
}

/** What a kind of file is called in the messages of {@link parseSource}. */
export interface SourceKind {
  /** The top-level keys, for "the top level must be a mapping of …". */
  topLevel: string;
  /** How to fix a second document. */
  secondDocumentHint: string;
  /** An example first key. */
  firstKey: string;
}

const CONFIG_KIND: SourceKind = {
  topLevel: 'settings (storage, validator, jobs, upgrade)',
  secondDocumentHint:
    'remove this "---" and what follows, or move it into its own file and pass that with another --config',
  firstKey: 'jobs',
};

/**
 * Parses one YAML (or JSON) config text into a located tree. Never throws: syntax errors, several
 * documents and a non-mapping top level become problems.
 */
export function parseSource(
  file: string,
  fileIndex: number,
  text: string,
  kind: SourceKind = CONFIG_KIND,
): ParsedSource {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lines = new Lines(source);
  const problems: ConfigProblem[] = [];
  let events: Event[];
  let documents: unknown[];
  try {
    events = parseEvents(source, { filename: file });
    documents = constructFromEvents(events, { source, filename: file, schema: SCHEMA });
  } catch (err) {
    if (err instanceof YAMLException) return { root: null, problems: [yamlProblem(file, err)] };
    throw err;
  }
  if (documents.length > 1) {
    problems.push({
      file,
      line: secondDocumentLine(events, source, lines),
      path: '',
      message: 'a second YAML document starts here (ks-upgrade reads exactly one document per file)',
      hint: kind.secondDocumentHint,
    });
  }
  const document = documents[0];
  if (document === undefined || document === null) return { root: null, problems };
  if (!isRecord(document)) {
    problems.push({
      file,
      line: 1,
      path: '',
      message: `the top level must be a mapping of ${kind.topLevel}, got ${describeTopLevel(document)}`,
      hint: `start the file with top-level keys such as "${kind.firstKey}:"${kind === CONFIG_KIND ? ' (an empty file is fine too)' : ''}`,
    });
    return { root: null, problems };
  }
  const positions = positionsOf(events, source, lines);
  const root = buildNode(document, [], { file, fileIndex, line: 1 }, positions, new Set(), problems);
  return { root: root.kind === 'map' ? root : null, problems };
}

function buildNode(
  value: unknown,
  path: Path,
  parent: Origin,
  positions: Map<string, Position>,
  ancestors: Set<unknown>,
  problems: ConfigProblem[],
): ConfigNode {
  const position = positions.get(JSON.stringify(path));
  const at: Origin = { ...parent, line: position?.line ?? parent.line };
  if (typeof value === 'object' && value !== null) {
    if (ancestors.has(value)) {
      problems.push({
        file: at.file,
        line: at.line,
        path: '',
        message: 'an alias refers to a node that contains it (a recursive structure)',
        hint: 'replace the *alias with a copy of the values',
      });
      return { kind: 'scalar', at, value: null };
    }
    ancestors.add(value);
    try {
      if (Array.isArray(value)) {
        const items = value.map((item: unknown, i) =>
          buildNode(item, [...path, i], at, positions, ancestors, problems),
        );
        return { kind: 'list', at, items };
      }
      const entries = new Map<string, ConfigNode>();
      for (const [key, child] of Object.entries(value)) {
        entries.set(key, buildNode(child, [...path, key], at, positions, ancestors, problems));
      }
      return { kind: 'map', at, entries };
    } finally {
      ancestors.delete(value);
    }
  }
  // The core schema yields only these scalar types; anything else would be a js-yaml change.
  const scalar: Scalar =
    typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || value === null
      ? value
      : typeof value;
  const node: ConfigNode = { kind: 'scalar', at, value: scalar };
  if (position?.raw !== undefined) node.raw = position.raw;
  if (position?.blockLine !== undefined) node.blockLine = position.blockLine;
  return node;
}

/**
 * Parses YAML text held inside the config (`extensionRef.config`, cluster overrides) just enough to
 * tell whether it is valid, returning the 0-based line of the error within the text.
 */
export function checkEmbeddedYaml(text: string): { reason: string; line: number } | 'not-a-mapping' | null {
  let documents: unknown[];
  try {
    documents = constructFromEvents(parseEvents(text, {}), { source: text, schema: SCHEMA });
  } catch (err) {
    if (err instanceof YAMLException) return { reason: err.reason, line: err.mark?.line ?? 0 };
    throw err;
  }
  if (documents.length > 1) return { reason: 'more than one YAML document', line: 0 };
  const document = documents[0];
  if (document === undefined || document === null || isRecord(document)) return null;
  return 'not-a-mapping';
}
