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
import { joinPath, type ConfigNode, type MapNode, type Origin, type Scalar } from './tree.js';

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

/** Config texts longer than this are refused before parsing: a config is a few kilobytes. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * How many values the aliases of one file may copy in total. A mapping reused with `<<: *defaults`
 * by every job costs a few hundred; nine nested aliases of nine ("billion laughs") cost 9^9.
 */
export const MAX_ALIAS_COPIES = 10_000;

interface CollectionFrame {
  /** Values in this node, counting what its aliases copy (the cost of building it). */
  size: number;
  anchor: string | undefined;
  line: number;
}

type Frame =
  | { kind: 'doc'; index: number }
  | (CollectionFrame & {
      kind: 'map';
      path: Path | null;
      key: string | null | undefined;
      keyLine: number;
      /** Scalar keys seen so far, with their lines, for the duplicate check. */
      keys: Map<string, number>;
    })
  | (CollectionFrame & { kind: 'seq'; path: Path | null; index: number });

/** `["jobs","core"]` → `jobs.core`; '' for the top level or an unknown path. */
function pathText(path: Path | null): string {
  return (path ?? []).reduce<string>((text, segment) => joinPath(text, segment), '');
}

function anchorOf(event: Event, text: string): string | undefined {
  if (event.type === EVENT_ID.DOCUMENT || event.type === EVENT_ID.POP || event.anchorStart < 0)
    return undefined;
  return text.slice(event.anchorStart, event.anchorEnd);
}

interface Inspection {
  /** Key and value lines of every node of the first document, by JSON-encoded path. */
  positions: Map<string, Position>;
  /** Problems that make the document unsafe or impossible to build (it is not built then). */
  problems: ConfigProblem[];
}

/**
 * One pass over the parser events, before anything is constructed: the lines of every node, and
 * what construction must not meet. Duplicate keys are reported with their key path (js-yaml's own
 * error names only a line); an alias of a node that contains it would make a cycle; and aliases
 * that copy more than {@link MAX_ALIAS_COPIES} values would expand a small file into gigabytes.
 * The pass only counts (the size of each anchored node, the copies each alias makes), so it is
 * linear in the file's size whatever the aliases would expand to. Nodes reached through an alias
 * or a merge key have no position of their own; they take their parent's line.
 */
function inspectEvents(
  events: Event[],
  text: string,
  lines: Lines,
  file: string,
  options: { duplicates: boolean } = { duplicates: true },
): Inspection {
  const positions = new Map<string, Position>();
  const problems: ConfigProblem[] = [];
  const stack: Frame[] = [];
  let documents = 0;
  let anchors = new Map<string, number>();
  let open = new Set<string>();
  let copied = 0;
  let bombReported = false;
  const grow = (size: number): void => {
    const parent = stack[stack.length - 1];
    if (parent !== undefined && parent.kind !== 'doc') parent.size += size;
  };
  for (const event of events) {
    if (event.type === EVENT_ID.DOCUMENT) {
      stack.push({ kind: 'doc', index: documents++ });
      anchors = new Map();
      open = new Set();
      continue;
    }
    if (event.type === EVENT_ID.POP) {
      const closed = stack.pop();
      if (closed !== undefined && closed.kind !== 'doc') {
        if (closed.anchor !== undefined) {
          anchors.set(closed.anchor, closed.size);
          open.delete(closed.anchor);
        }
        grow(closed.size);
      }
      continue;
    }
    const top = stack[stack.length - 1];
    if (top === undefined) continue;
    const offset = offsetOf(event);
    let path: Path | null;
    let line: number;
    let isKey = false;
    if (top.kind === 'doc') {
      path = top.index === 0 ? [] : null;
      line = offset >= 0 ? lines.lineOf(offset) : 1;
    } else if (top.kind === 'seq') {
      path = top.path === null ? null : [...top.path, top.index];
      top.index++;
      line = offset >= 0 ? lines.lineOf(offset) : top.line;
    } else if (top.key === undefined) {
      // A key. Only scalar keys name config settings; complex keys are walked but not recorded.
      isKey = true;
      top.keyLine = offset >= 0 ? lines.lineOf(offset) : top.line;
      top.key = event.type === EVENT_ID.SCALAR ? getScalarValue(text, event) : null;
      path = null;
      line = top.keyLine;
      if (top.key !== null && options.duplicates) {
        const first = top.keys.get(top.key);
        if (first === undefined) top.keys.set(top.key, top.keyLine);
        else {
          problems.push({
            file,
            line: top.keyLine,
            path: top.path === null ? '' : pathText([...top.path, top.key]),
            message: `duplicated key (first on line ${first})`,
            hint: 'remove one of the two entries (a key may appear once per mapping)',
          });
        }
      }
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
    const anchor = anchorOf(event, text);
    if (event.type === EVENT_ID.MAPPING || event.type === EVENT_ID.SEQUENCE) {
      if (anchor !== undefined) open.add(anchor);
      const frame: CollectionFrame = { size: 1, anchor, line };
      // The children of a complex key have no config path.
      const framePath = isKey ? null : path;
      stack.push(
        event.type === EVENT_ID.MAPPING
          ? { ...frame, kind: 'map', path: framePath, key: undefined, keyLine: line, keys: new Map() }
          : { ...frame, kind: 'seq', path: framePath, index: 0 },
      );
      continue;
    }
    if (event.type === EVENT_ID.SCALAR) {
      if (anchor !== undefined) anchors.set(anchor, 1);
      grow(1);
      continue;
    }
    // An alias: it copies the whole anchored node.
    const name = anchor ?? '';
    if (open.has(name)) {
      problems.push({
        file,
        line,
        path: pathText(path),
        message: `the alias *${name} refers to a node that contains it (a recursive structure)`,
        hint: 'replace the *alias with a copy of the values',
      });
      continue;
    }
    const size = anchors.get(name) ?? 1; // an unknown anchor is reported by the constructor
    copied += size;
    grow(size);
    if (copied > MAX_ALIAS_COPIES && !bombReported) {
      bombReported = true;
      problems.push({
        file,
        line,
        path: pathText(path),
        message: `the alias *${name} brings the values copied by aliases in this file to more than ${MAX_ALIAS_COPIES} (a "billion laughs" pattern)`,
        hint: 'write the values out, or use fewer aliases of large nodes (the limit keeps a small file from exhausting memory)',
      });
    }
  }
  return { positions, problems };
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
  const bytes = Buffer.byteLength(source);
  if (bytes > MAX_CONFIG_BYTES) return { root: null, problems: [tooLargeProblem(file, bytes)] };
  const lines = new Lines(source);
  let events: Event[];
  try {
    events = parseEvents(source, { filename: file });
  } catch (err) {
    if (err instanceof YAMLException) return { root: null, problems: [yamlProblem(file, err)] };
    throw err;
  }
  const inspection = inspectEvents(events, source, lines, file);
  if (inspection.problems.length > 0) return { root: null, problems: inspection.problems };
  let documents: unknown[];
  try {
    documents = constructFromEvents(events, { source, filename: file, schema: SCHEMA });
  } catch (err) {
    if (err instanceof YAMLException) return { root: null, problems: [yamlProblem(file, err)] };
    throw err;
  }
  const problems: ConfigProblem[] = [];
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
  const root = buildNode(document, [], { file, fileIndex, line: 1 }, inspection.positions, problems);
  return { root: root.kind === 'map' ? root : null, problems };
}

/** The problem of a config text above {@link MAX_CONFIG_BYTES}, before any of it is parsed. */
export function tooLargeProblem(file: string, bytes: number): ConfigProblem {
  return {
    file,
    line: 0,
    path: '',
    message: `the file has ${bytes} bytes, more than the ${MAX_CONFIG_BYTES} (1 MiB) a config may have`,
    hint: 'check that --config names the config file; split a generated config, or keep large values (extension configs) short',
  };
}

/**
 * Numbers a JavaScript number cannot hold exactly: integers beyond 2^53-1 (they would be
 * rounded silently) and .inf/.nan (they would become null in JSON). `raw` is the text as written.
 */
function numberProblem(value: number, raw: string): { message: string; hint: string } | undefined {
  const hint = 'quote it if it is meant as text';
  if (!Number.isFinite(value)) {
    return { message: `${raw} is not a finite number`, hint: `use a finite number, or ${hint}` };
  }
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
    return {
      message: `${raw} is beyond ±${Number.MAX_SAFE_INTEGER} (2^53-1), the largest whole number ks-upgrade holds exactly`,
      hint: `use a smaller number, or ${hint}`,
    };
  }
  return undefined;
}

/**
 * The located tree of a constructed document. Its size is bounded: {@link inspectEvents} refused
 * cycles and alias expansion beyond {@link MAX_ALIAS_COPIES} before construction.
 */
function buildNode(
  value: unknown,
  path: Path,
  parent: Origin,
  positions: Map<string, Position>,
  problems: ConfigProblem[],
): ConfigNode {
  const position = positions.get(JSON.stringify(path));
  const at: Origin = { ...parent, line: position?.line ?? parent.line };
  if (typeof value === 'object' && value !== null) {
    if (Array.isArray(value)) {
      const items = value.map((item: unknown, i) => buildNode(item, [...path, i], at, positions, problems));
      return { kind: 'list', at, items };
    }
    const entries = new Map<string, ConfigNode>();
    for (const [key, child] of Object.entries(value)) {
      entries.set(key, buildNode(child, [...path, key], at, positions, problems));
    }
    return { kind: 'map', at, entries };
  }
  // The core schema yields only these scalar types; anything else would be a js-yaml change.
  const scalar: Scalar =
    typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || value === null
      ? value
      : typeof value;
  if (typeof scalar === 'number') {
    const problem = numberProblem(scalar, position?.raw ?? String(scalar));
    if (problem !== undefined)
      problems.push({ file: at.file, line: at.line, path: pathText(path), ...problem });
  }
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
    const events = parseEvents(text, {});
    // Only the alias checks: a duplicate key is reported by the constructor, in the text's own lines.
    const unsafe = inspectEvents(events, text, new Lines(text), '', { duplicates: false }).problems[0];
    if (unsafe !== undefined) return { reason: unsafe.message, line: unsafe.line - 1 };
    documents = constructFromEvents(events, { source: text, schema: SCHEMA });
  } catch (err) {
    if (err instanceof YAMLException) return { reason: err.reason, line: err.mark?.line ?? 0 };
    throw err;
  }
  if (documents.length > 1) return { reason: 'more than one YAML document', line: 0 };
  const document = documents[0];
  if (document === undefined || document === null || isRecord(document)) return null;
  return 'not-a-mapping';
}
