// Recognises data that must never be stored in plaintext. The detection errs on the side of
// "sensitive": a false positive only means the object gets encrypted (or a key is asked for).
// Data the walk cannot see into (base64 blobs such as IAM snapshots, archives) needs the caller's
// `{ sensitive: true }`.
import { loadAll } from 'js-yaml';

/** Text above this size is not parsed for embedded kubeconfigs or Secrets (chart archives etc.). */
const MAX_TEXT_SCAN_BYTES = 8 * 1024 * 1024;
const MAX_DEPTH = 200;
const TEXT_HINT = /\bkind["']?\s*:\s*["']?(Config|Secret|SecretList)\b/;

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function nameOf(obj: Json): string {
  const meta = isRecord(obj.metadata) ? obj.metadata : {};
  const name = str(meta.name);
  const ns = str(meta.namespace);
  if (!name) return '';
  return ns ? ` '${ns}/${name}'` : ` '${name}'`;
}

/**
 * Objects as jobs hold them often lack `kind` (items of a typed List never carry it), so a Secret is
 * also recognised by its shape: metadata, a string `type` and `data` or `stringData`.
 */
function looksLikeSecret(obj: Json): boolean {
  return (
    isRecord(obj.metadata) &&
    typeof obj.type === 'string' &&
    (isRecord(obj.data) || isRecord(obj.stringData)) &&
    obj.spec === undefined
  );
}

function objectReason(
  obj: Json,
  kind: string | undefined,
  apiVersion: string | undefined,
): string | undefined {
  const core = apiVersion === undefined || apiVersion === 'v1';
  if ((kind === 'Secret' && core) || (kind === undefined && looksLikeSecret(obj))) {
    return `a Secret${nameOf(obj)}`;
  }
  if (kind === 'Config' && (Array.isArray(obj.clusters) || Array.isArray(obj.users))) return 'a kubeconfig';
  // The v3 and v4 `cluster.kubesphere.io` Cluster keeps a member's kubeconfig here; the field is
  // specific enough to match whatever kind/apiVersion the object carries (often none).
  const spec = isRecord(obj.spec) ? obj.spec : undefined;
  const connection = spec && isRecord(spec.connection) ? spec.connection : undefined;
  const kubeconfig = connection?.kubeconfig;
  if (
    (typeof kubeconfig === 'string' && kubeconfig !== '') ||
    (Array.isArray(kubeconfig) && kubeconfig.length > 0)
  ) {
    return `a Cluster with spec.connection.kubeconfig${nameOf(obj)}`;
  }
  return undefined;
}

/** Why the text (YAML or JSON, possibly several documents) is sensitive, or undefined. */
export function sensitiveTextReason(text: string): string | undefined {
  if (text.length > MAX_TEXT_SCAN_BYTES || !TEXT_HINT.test(text)) return undefined;
  let docs: unknown[];
  try {
    docs = loadAll(text);
  } catch {
    // Not YAML (a template, a log): nothing here is a parsed Secret or kubeconfig.
    return undefined;
  }
  for (const [i, doc] of docs.entries()) {
    const hit = walk(doc, undefined, undefined, 0, new WeakSet());
    if (hit) return describe(hit, docs.length > 1 ? `document ${i + 1}` : '$');
  }
  return undefined;
}

/**
 * What {@link walk} found. The path is built only for a find, on the way back up (`segments`,
 * innermost first): the walk itself allocates next to nothing per node, which matters when
 * thousands of listed objects are checked while they are held in memory.
 */
interface Hit {
  reason: string;
  /** Found in the text of a string value (a YAML or JSON document inside a field). */
  inText: boolean;
  segments: string[];
}

/** The reason as a message: `<reason> at $.a.b[2]`, or `<reason> in the text at …`. */
function describe(hit: Hit, root: string): string {
  const path = root + hit.segments.reverse().join('');
  if (hit.inText) return `${hit.reason} in the text at ${path}`;
  return path === '$' ? hit.reason : `${hit.reason} at ${path}`;
}

function walk(
  value: unknown,
  inferredKind: string | undefined,
  inferredApiVersion: string | undefined,
  depth: number,
  seen: WeakSet<object>,
): Hit | undefined {
  if (typeof value === 'string') {
    const reason = value.length > 16 ? sensitiveTextReason(value) : undefined;
    return reason ? { reason, inText: true, segments: [] } : undefined;
  }
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH || seen.has(value)) return undefined;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = walk(value[i], inferredKind, inferredApiVersion, depth + 1, seen);
      if (hit) {
        hit.segments.push(`[${i}]`);
        return hit;
      }
    }
    return undefined;
  }
  const obj = value as Json;
  const kind = str(obj.kind) ?? inferredKind;
  const apiVersion = str(obj.apiVersion) ?? inferredApiVersion;
  const own = objectReason(obj, kind, apiVersion);
  if (own) return { reason: own, inText: false, segments: [] };
  for (const field of Object.keys(obj)) {
    // Items of `FooList` are Foos of the list's apiVersion even when they do not say so.
    const listItems = field === 'items' && kind?.endsWith('List') === true;
    const hit = walk(
      obj[field],
      listItems ? kind.slice(0, -'List'.length) : undefined,
      listItems ? apiVersion : undefined,
      depth + 1,
      seen,
    );
    if (hit) {
      hit.segments.push(`.${field}`);
      return hit;
    }
  }
  return undefined;
}

/**
 * Why `value` must not be stored in plaintext — a Kubernetes Secret (also inside a List or any
 * other object), a kubeconfig (object or YAML/JSON text), a KubeSphere Cluster with
 * `spec.connection.kubeconfig` — or undefined. The reason names where, never what.
 */
export function sensitiveReason(value: unknown): string | undefined {
  const hit = walk(value, undefined, undefined, 0, new WeakSet());
  return hit && describe(hit, '$');
}

/**
 * {@link sensitiveReason} of some of a list's items — `items[firstIndex…]` of `list` — with the
 * same result and the same path in the reason as a walk over the whole list would give them. The
 * list's own fields are checked with `sensitiveReason({ ...list, items: [] })`.
 */
export function sensitiveItemsReason(
  list: { apiVersion?: unknown; kind?: unknown },
  items: readonly unknown[],
  firstIndex: number,
): string | undefined {
  const kind = str(list.kind);
  const listItems = kind?.endsWith('List') === true;
  const seen = new WeakSet<object>();
  for (let i = 0; i < items.length; i++) {
    const hit = walk(
      items[i],
      listItems ? kind.slice(0, -'List'.length) : undefined,
      listItems ? str(list.apiVersion) : undefined,
      2,
      seen,
    );
    if (hit) {
      hit.segments.push(`[${firstIndex + i}]`, '.items');
      return describe(hit, '$');
    }
  }
  return undefined;
}

/** The same check for raw bytes: only UTF-8 text is looked into. */
export function sensitiveBytesReason(bytes: Uint8Array): string | undefined {
  if (bytes.byteLength > MAX_TEXT_SCAN_BYTES || bytes.includes(0)) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  return sensitiveTextReason(text);
}
