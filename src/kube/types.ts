/** Kubernetes object metadata, the fields ks-upgrade reads or writes. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  managedFields?: unknown[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Any Kubernetes object. Kind-specific types extend it with `spec`, `status`, `data`… */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface ListMeta {
  resourceVersion?: string;
  continue?: string;
  remainingItemCount?: number;
}

export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion: string;
  kind: string;
  metadata: ListMeta;
  items: T[];
}

/**
 * A resource type: where the API server serves a kind. `T` is the TypeScript type of its objects
 * (a phantom parameter: it only types the client's results).
 */
export interface ResourceType<T extends KubeObject = KubeObject> {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** Never set; carries `T` for type inference. */
  readonly __object?: T;
}

/** `group/version`, or just `version` for the core group. */
export function apiVersionOf(rt: Pick<ResourceType, 'group' | 'version'>): string {
  return rt.group ? `${rt.group}/${rt.version}` : rt.version;
}

/** `<plural>.<group>` as used in CRD names and in the original tool's store keys. */
export function resourceName(rt: Pick<ResourceType, 'group' | 'plural'>): string {
  return rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
}

const registry = new Map<string, ResourceType>();

/**
 * Defines a resource type and registers it for lookup by apiVersion + kind. This is the one line a
 * job author writes for a kind ks-upgrade does not know yet:
 *
 * ```ts
 * export const Widget = defineResource<Widget>({ group: 'example.io', version: 'v1', kind: 'Widget', plural: 'widgets', namespaced: true });
 * ```
 *
 * Defining the same apiVersion + kind twice with a different plural or scope is an error.
 */
export function defineResource<T extends KubeObject = KubeObject>(
  def: Omit<ResourceType<T>, '__object'>,
): ResourceType<T> {
  const rt: ResourceType<T> = Object.freeze({ ...def });
  const key = `${apiVersionOf(rt)}/${rt.kind}`;
  const existing = registry.get(key);
  if (existing && (existing.plural !== rt.plural || existing.namespaced !== rt.namespaced)) {
    throw new Error(
      `resource ${key} is already defined as ${existing.plural} (namespaced=${existing.namespaced})`,
    );
  }
  registry.set(key, rt);
  return rt;
}

/** The registered resource type for an object's apiVersion + kind, if any. */
export function lookupResource(apiVersion: string, kind: string): ResourceType | undefined {
  return registry.get(`${apiVersion}/${kind}`);
}

/** Every registered resource type (for diagnostics and docs). */
export function registeredResources(): ResourceType[] {
  return [...registry.values()];
}
