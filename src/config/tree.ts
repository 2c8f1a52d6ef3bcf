// The configuration as a tree whose every node remembers the file and line that provided it.
// Merging several files keeps that provenance, so a problem found after the merge still points
// at the line the operator has to edit.

/** Where a node came from: the file as the caller named it, its position in the list, a 1-based line. */
export interface Origin {
  file: string;
  fileIndex: number;
  /** The line of the key that introduced the node (or of the node itself for list items and roots). */
  line: number;
}

export type Scalar = string | number | boolean | null;

interface NodeBase {
  at: Origin;
  /** The key as written in the file when normalisation renamed it (`access_key_id` → `accessKeyID`). */
  spelledAs?: string;
}

export interface MapNode extends NodeBase {
  kind: 'map';
  entries: Map<string, ConfigNode>;
}

export interface ListNode extends NodeBase {
  kind: 'list';
  items: ConfigNode[];
}

export interface ScalarNode extends NodeBase {
  kind: 'scalar';
  value: Scalar;
  /** The scalar's text as written (`1.10` for the number 1.1), for "quote it" hints. */
  raw?: string;
  /** First content line of a literal block scalar (`|`), so errors inside it can point at their own line. */
  blockLine?: number;
}

export type ConfigNode = MapNode | ListNode | ScalarNode;

/**
 * The original's deep-merge: mappings merge key by key (recursively); anything else in `over`,
 * lists and an explicit null included, replaces what `base` had.
 */
export function mergeNodes(base: ConfigNode, over: ConfigNode): ConfigNode {
  if (base.kind !== 'map' || over.kind !== 'map') return over;
  const entries = new Map(base.entries);
  for (const [key, value] of over.entries) {
    const previous = entries.get(key);
    entries.set(key, previous === undefined ? value : mergeNodes(previous, value));
  }
  return { ...over, entries };
}

/** Plain JSON-like data (`Object.fromEntries` so that a `__proto__` key stays an ordinary key). */
export function toPlain(node: ConfigNode): unknown {
  switch (node.kind) {
    case 'scalar':
      return node.value;
    case 'list':
      return node.items.map(toPlain);
    case 'map':
      return Object.fromEntries([...node.entries].map(([k, v]) => [k, toPlain(v)]));
  }
}

/** The child mapping at `key`, or undefined when absent or not a mapping. */
export function childMap(node: ConfigNode | undefined, key: string): MapNode | undefined {
  if (node?.kind !== 'map') return undefined;
  const child = node.entries.get(key);
  return child?.kind === 'map' ? child : undefined;
}

/** True when the key is absent or explicitly null: both mean "not set" in this config format. */
export function isUnset(node: ConfigNode | undefined): boolean {
  return node === undefined || (node.kind === 'scalar' && node.value === null);
}

/**
 * `a.b`, `a[0]`, and `a["node-role.kubernetes.io/master"]` for keys that would read ambiguously
 * after a dot.
 */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}
