// Reading one value of the Go tool's store: check it has the format its key promises (bare JSON
// as Go's encoding/json writes it, iam's base64 snapshots, YAML, marker text, chart archives), and
// decide what our store gets. The Go bytes are kept as they are; they are rewritten only where our
// jobs read the value differently (documented per case).
import { load as loadYaml } from 'js-yaml';
import { KsUpgradeError } from '../errors.js';
import { sensitiveBytesReason, sensitiveReason } from '../store/index.js';
import { CONTENT_TYPES, type GoKeyRule } from './layout.js';

/** The value does not have the format its key promises; it is not imported. */
export class GoFormatError extends KsUpgradeError {}

/** What the import stores for one Go value. */
export interface DecodedGoValue {
  /** Our key inside the job's (or the shared) scope. */
  key: string;
  payload: Uint8Array;
  contentType: string;
  /** Why it holds secrets (the table or its content), undefined when it does not. */
  sensitive: string | undefined;
  /** Changes made to the Go bytes, for the report. */
  notes: string[];
  /** Set when the value means "nothing was there" and is not imported: why. */
  skip?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  } catch (err) {
    throw new GoFormatError(`not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** A Go-marshalled list: an object with `items` (Go writes `null` for a nil slice). */
function checkList(value: unknown): { value: unknown; changed: boolean } {
  if (!isRecord(value)) throw new GoFormatError('not a JSON object (a Kubernetes list was expected)');
  if (value.items === null) return { value: { ...value, items: [] }, changed: true };
  if (!Array.isArray(value.items)) throw new GoFormatError('a Kubernetes list without an "items" array');
  if (!value.items.every(isRecord)) throw new GoFormatError('"items" holds something other than objects');
  return { value, changed: false };
}

/** The zero-valued object Go marshals when the Get found nothing: no name. */
function isEmptyObject(value: Record<string, unknown>): boolean {
  const meta = value.metadata;
  return !isRecord(meta) || typeof meta.name !== 'string' || meta.name === '';
}

function checkSnapshots(value: unknown): void {
  if (!Array.isArray(value)) throw new GoFormatError('not a JSON array of {list, timestamp} snapshots');
  value.forEach((entry: unknown, i) => {
    if (!isRecord(entry) || typeof entry.list !== 'string' || typeof entry.timestamp !== 'number') {
      throw new GoFormatError(`snapshot ${i} is not {"list": <base64>, "timestamp": <unix seconds>}`);
    }
    let list: unknown;
    try {
      list = JSON.parse(Buffer.from(entry.list, 'base64').toString('utf8'));
    } catch {
      throw new GoFormatError(`snapshot ${i} (timestamp ${entry.timestamp}): "list" is not base64 of JSON`);
    }
    try {
      checkList(list);
    } catch (err) {
      throw new GoFormatError(
        `snapshot ${i} (timestamp ${entry.timestamp}): ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  });
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function text(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new GoFormatError('not UTF-8 text');
  }
}

const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * Checks one Go value against its rule and returns what to store. Throws {@link GoFormatError}
 * (naming what is wrong, never quoting the content) when it does not have the expected format.
 */
export function decodeGoValue(rule: GoKeyRule, goKey: string, bytes: Uint8Array): DecodedGoValue {
  let payload = bytes;
  let key = goKey;
  let parsed: unknown;
  const notes: string[] = [];
  const result = (skip?: string): DecodedGoValue => {
    // The store's own check on write (bytes) and the walk of the parsed value: a superset of what
    // the write would refuse without a key, so the import can refuse up front, before any write.
    const detected =
      sensitiveBytesReason(payload) ?? (parsed === undefined ? undefined : sensitiveReason(parsed));
    return {
      key,
      payload,
      contentType: CONTENT_TYPES[rule.format],
      sensitive: rule.sensitive ? `the Go tool's ${rule.key} holds secrets` : detected,
      notes,
      ...(skip === undefined ? {} : { skip }),
    };
  };
  const rewrite = (value: unknown, note: string): void => {
    parsed = value;
    payload = Buffer.from(JSON.stringify(value), 'utf8');
    notes.push(note);
  };

  switch (rule.format) {
    case 'json-list': {
      const checked = checkList(parseJson(bytes));
      parsed = checked.value;
      if (checked.changed) rewrite(checked.value, '"items": null (Go\'s nil slice) stored as []');
      break;
    }
    case 'json-object': {
      parsed = parseJson(bytes);
      if (!isRecord(parsed)) throw new GoFormatError('not a JSON object (a Kubernetes object was expected)');
      if (rule.emptyMeansAbsent && isEmptyObject(parsed)) {
        return result(
          'the Go tool stored an empty object: the object did not exist, there was nothing to back up',
        );
      }
      break;
    }
    case 'json': {
      parsed = parseJson(bytes);
      if (parsed === null && rule.nullMeansEmptyMap) {
        rewrite({}, "null (Go's nil map: a release without user values) stored as {}");
      } else if (!isRecord(parsed)) {
        throw new GoFormatError('not a JSON object');
      }
      break;
    }
    case 'iam-snapshots':
      parsed = parseJson(bytes);
      checkSnapshots(parsed);
      break;
    case 'yaml': {
      try {
        parsed = loadYaml(text(bytes));
      } catch (err) {
        if (err instanceof GoFormatError) throw err;
        throw new GoFormatError('not valid YAML');
      }
      if (!isRecord(parsed)) throw new GoFormatError('not a YAML mapping');
      break;
    }
    case 'done-marker':
      if (text(bytes).trim() === '') {
        return result('an empty marker means "not done" to both tools: nothing to import');
      }
      break;
    case 'flag': {
      const flag = text(bytes).trim();
      if (flag !== 'true' && flag !== 'false') throw new GoFormatError('not "true" or "false"');
      break;
    }
    case 'chart':
      if (bytes.length < 2 || bytes[0] !== GZIP_MAGIC[0] || bytes[1] !== GZIP_MAGIC[1]) {
        throw new GoFormatError('not a gzip archive (a chart .tgz was expected)');
      }
      break;
  }
  if (rule.ourKey) key = rule.ourKey(goKey, parsed);
  if (key !== goKey) notes.push(`stored as ${key}`);
  return result();
}
