// What an API server keeps of an object: the fixture test sends each fixture object and compares it
// with what the server returns, so a field name the real schema does not have (pruned) shows up.
import type { KubeObject } from '../../src/kube/types.js';
import { isRecord } from '../../src/util/object.js';

/** Metadata the fixture sets and the server keeps as sent; everything else there is the server's. */
const KEPT_METADATA = ['name', 'namespace', 'labels', 'annotations', 'finalizers', 'ownerReferences'];

/** A difference between a sent object and the stored one: a path and what became of it. */
export interface FieldLoss {
  path: string;
  /** `pruned`: the field is gone; `changed`: it holds another value now. */
  kind: 'pruned' | 'changed';
}

function walk(sent: unknown, got: unknown, path: string, out: FieldLoss[]): void {
  if (Array.isArray(sent)) {
    if (!Array.isArray(got)) {
      if (got === undefined && sent.length === 0) return;
      out.push({ path, kind: got === undefined ? 'pruned' : 'changed' });
      return;
    }
    sent.forEach((item, i) => {
      walk(item, got[i], `${path}[${i}]`, out);
    });
    return;
  }
  if (isRecord(sent)) {
    if (!isRecord(got)) {
      // An empty map (e.g. a ConfigMap's `data: {}`) is omitted like an absent one.
      if (got === undefined && Object.keys(sent).length === 0) return;
      out.push({ path, kind: got === undefined ? 'pruned' : 'changed' });
      return;
    }
    for (const [k, v] of Object.entries(sent)) {
      const p = path ? `${path}.${k}` : k;
      walk(v, got[k], p, out);
    }
    return;
  }
  // null is how a fixture says "empty": the server drops it like an absent field.
  if (sent === null) return;
  // An empty string of a built-in kind's optional field is Go's zero value: omitted on the way out.
  if (sent === '' && got === undefined) return;
  if (got === undefined) out.push({ path, kind: 'pruned' });
  else if (got !== sent) out.push({ path, kind: 'changed' });
}

/**
 * The fields of `sent` the server did not keep (as JSON paths), comparing `spec`, `status` (unless
 * `ignoreStatus`: built-in kinds, whose status is their controllers') and every other top-level
 * field, and of the metadata only what a client sets (name, namespace, labels, annotations,
 * finalizers, owner references). Fields the server adds are not differences.
 */
export function fieldLosses(
  sent: KubeObject,
  got: KubeObject,
  options: { ignoreStatus?: boolean } = {},
): FieldLoss[] {
  const out: FieldLoss[] = [];
  const meta = sent.metadata as Record<string, unknown>;
  const gotMeta = got.metadata as Record<string, unknown>;
  for (const k of KEPT_METADATA) {
    if (meta[k] === undefined) continue;
    walk(meta[k], gotMeta[k], `metadata.${k}`, out);
  }
  for (const [k, v] of Object.entries(sent)) {
    if (k === 'apiVersion' || k === 'kind' || k === 'metadata') continue;
    if (k === 'status' && options.ignoreStatus) continue;
    walk(v, (got as unknown as Record<string, unknown>)[k], k, out);
  }
  return out;
}
