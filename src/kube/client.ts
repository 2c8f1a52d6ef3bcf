import { deepEqual } from '../util/object.js';
import {
  AlreadyExistsError,
  ConflictError,
  ExpiredError,
  ForbiddenError,
  InvalidError,
  KubeApiError,
  NoKindError,
  NotFoundError,
  type ApiStatus,
} from './errors.js';
import type { KubeRequest, KubeResponse, KubeTransport } from './transport.js';
import { apiVersionOf, resourceName, type KubeList, type KubeObject, type ResourceType } from './types.js';

/** The field manager of every write ks-upgrade makes (visible in `metadata.managedFields`). */
export const FIELD_MANAGER = 'ks-upgrade';

export interface ListOptions {
  /** Omit for all namespaces (namespaced kinds) or for cluster-scoped kinds. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size; the server returns at most this many items per request. Default 500. */
  pageSize?: number;
}

export type PatchType = 'merge' | 'json' | 'strategic';

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  /** Remove `metadata.finalizers` first, so the object goes away without its controller. */
  clearFinalizers?: boolean;
}

export interface MutateOptions {
  /** Attempts on 409 Conflict before giving up (default 8). */
  maxAttempts?: number;
}

/** What {@link ResourceClient.mutate} did. */
export interface MutateResult<T> {
  object: T;
  /** False when the mutation left the object as it was (no write was made). */
  changed: boolean;
}

/**
 * A small, typed client for any resource type, over one {@link KubeTransport}. Objects travel as
 * plain JSON: unlike the generated @kubernetes/client-node models, nothing the client does not know
 * about is dropped on the way (custom resources carry arbitrary fields).
 */
export class ResourceClient {
  constructor(
    readonly transport: KubeTransport,
    private readonly signal?: AbortSignal,
  ) {}

  /** The same client, with every request bound to `signal` (an activity's cancellation). */
  withSignal(signal: AbortSignal): ResourceClient {
    return new ResourceClient(this.transport, signal);
  }

  /** The object, or {@link NotFoundError} / {@link NoKindError}. */
  async get<T extends KubeObject>(rt: ResourceType<T>, name: string, namespace?: string): Promise<T> {
    return this.call<T>(rt, { method: 'GET', path: objectPath(rt, name, namespace) }, name);
  }

  /** The object, or undefined when it (or its resource type) does not exist. */
  async tryGet<T extends KubeObject>(
    rt: ResourceType<T>,
    name: string,
    namespace?: string,
  ): Promise<T | undefined> {
    try {
      return await this.get(rt, name, namespace);
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof NoKindError) return undefined;
      throw err;
    }
  }

  /** One page of a list. */
  async listPage<T extends KubeObject>(
    rt: ResourceType<T>,
    options: ListOptions & { continueToken?: string } = {},
  ): Promise<KubeList<T>> {
    const list = await this.call<KubeList<T>>(rt, {
      method: 'GET',
      path: collectionPath(rt, options.namespace),
      query: {
        limit: options.pageSize ?? 500,
        continue: options.continueToken,
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
      },
    });
    // List items come without apiVersion/kind; stamp them so an item can be written back or backed up.
    for (const item of list.items) {
      item.apiVersion ??= apiVersionOf(rt);
      item.kind ??= rt.kind;
    }
    return list;
  }

  /**
   * Every matching object, one page (limit/continue, `pageSize` objects) at a time: memory stays
   * bounded by one page, however many objects there are.
   */
  async *listPages<T extends KubeObject>(
    rt: ResourceType<T>,
    options: ListOptions = {},
  ): AsyncGenerator<T[]> {
    let continueToken: string | undefined;
    do {
      const page = await this.listPage(rt, { ...options, continueToken });
      yield page.items;
      continueToken = page.metadata.continue || undefined;
    } while (continueToken);
  }

  /**
   * {@link listPages}, but a resource type that is not served lists nothing (as
   * {@link listIfServed}). Only the first page can tell that: a kind that stops being served
   * after it (its CRD deleted mid-list) throws {@link NoKindError}.
   */
  async *listPagesIfServed<T extends KubeObject>(
    rt: ResourceType<T>,
    options: ListOptions = {},
  ): AsyncGenerator<T[]> {
    const pages = this.listPages(rt, options);
    let first: IteratorResult<T[]>;
    try {
      first = await pages.next();
    } catch (err) {
      if (err instanceof NoKindError) return;
      throw err;
    }
    if (first.done) return;
    try {
      yield first.value;
      yield* pages;
    } finally {
      // A consumer that stops after the first page ends the inner generator too.
      await pages.return(undefined);
    }
  }

  /** Every matching object, yielded as its page arrives (memory bounded by one page). */
  async *list<T extends KubeObject>(rt: ResourceType<T>, options: ListOptions = {}): AsyncGenerator<T> {
    for await (const page of this.listPages(rt, options)) yield* page;
  }

  /** Every matching object as an array (use {@link list} for very large collections). */
  async listAll<T extends KubeObject>(rt: ResourceType<T>, options: ListOptions = {}): Promise<T[]> {
    const all: T[] = [];
    for await (const item of this.list(rt, options)) all.push(item);
    return all;
  }

  /** Like {@link listAll}, but an unserved resource type is an empty list instead of an error. */
  async listIfServed<T extends KubeObject>(rt: ResourceType<T>, options: ListOptions = {}): Promise<T[]> {
    try {
      return await this.listAll(rt, options);
    } catch (err) {
      if (err instanceof NoKindError) return [];
      throw err;
    }
  }

  async create<T extends KubeObject>(rt: ResourceType<T>, obj: T): Promise<T> {
    const body = withTypeMeta(rt, obj);
    return this.call<T>(
      rt,
      {
        method: 'POST',
        path: collectionPath(rt, requireNamespace(rt, body)),
        body,
        query: { fieldManager: FIELD_MANAGER },
      },
      body.metadata.name,
    );
  }

  /** Creates the object unless one with its name exists; returns whichever is there now. */
  async createIfAbsent<T extends KubeObject>(
    rt: ResourceType<T>,
    obj: T,
  ): Promise<{ object: T; created: boolean }> {
    try {
      return { object: await this.create(rt, obj), created: true };
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      return { object: await this.get(rt, requireName(obj), obj.metadata.namespace), created: false };
    }
  }

  /** Replaces the object; {@link ConflictError} when its resourceVersion is stale. */
  async update<T extends KubeObject>(rt: ResourceType<T>, obj: T): Promise<T> {
    const body = withTypeMeta(rt, obj);
    const name = requireName(body);
    return this.call<T>(
      rt,
      {
        method: 'PUT',
        path: objectPath(rt, name, requireNamespace(rt, body)),
        body,
        query: { fieldManager: FIELD_MANAGER },
      },
      name,
    );
  }

  /** Replaces the status sub-resource. */
  async updateStatus<T extends KubeObject>(rt: ResourceType<T>, obj: T): Promise<T> {
    const body = withTypeMeta(rt, obj);
    const name = requireName(body);
    return this.call<T>(
      rt,
      {
        method: 'PUT',
        path: `${objectPath(rt, name, requireNamespace(rt, body))}/status`,
        body,
        query: { fieldManager: FIELD_MANAGER },
      },
      name,
    );
  }

  async patch<T extends KubeObject>(
    rt: ResourceType<T>,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    type: PatchType = 'merge',
    subresource?: 'status',
  ): Promise<T> {
    const path = objectPath(rt, name, namespace) + (subresource ? `/${subresource}` : '');
    return this.call<T>(
      rt,
      {
        method: 'PATCH',
        path,
        body: patch,
        contentType: PATCH_CONTENT_TYPES[type],
        query: { fieldManager: FIELD_MANAGER },
      },
      name,
    );
  }

  /**
   * Server-side apply with field manager `ks-upgrade`. `force` takes over fields owned by other
   * managers (needed when re-applying CRDs first applied by kubectl or Helm).
   */
  async apply<T extends KubeObject>(
    rt: ResourceType<T>,
    obj: T,
    // dryRun: validated and admitted by the server, persisted nowhere.
    options: { force?: boolean; dryRun?: boolean } = {},
  ): Promise<T> {
    const body = withTypeMeta(rt, obj);
    const name = requireName(body);
    // The server refuses managedFields in an apply request.
    const { managedFields: _drop, ...metadata } = body.metadata;
    return this.call<T>(
      rt,
      {
        method: 'PATCH',
        path: objectPath(rt, name, requireNamespace(rt, body)),
        body: { ...body, metadata },
        contentType: 'application/apply-patch+yaml',
        query: {
          fieldManager: FIELD_MANAGER,
          force: options.force ?? false,
          dryRun: options.dryRun ? 'All' : undefined,
        },
      },
      name,
    );
  }

  /**
   * Deletes the object. Returns false when it was already gone (delete is idempotent), true when
   * this call deleted it (or started its deletion).
   */
  async delete(
    rt: ResourceType,
    name: string,
    namespace?: string,
    options: DeleteOptions = {},
  ): Promise<boolean> {
    try {
      if (options.clearFinalizers) await this.clearFinalizers(rt, name, namespace);
      await this.call(
        rt,
        {
          method: 'DELETE',
          path: objectPath(rt, name, namespace),
          body: options.propagationPolicy ? { propagationPolicy: options.propagationPolicy } : undefined,
        },
        name,
      );
      return true;
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof NoKindError) return false;
      throw err;
    }
  }

  /** Empties `metadata.finalizers` (no-op when there are none or the object is gone). */
  async clearFinalizers(rt: ResourceType, name: string, namespace?: string): Promise<void> {
    try {
      const obj = await this.get(rt, name, namespace);
      if (!obj.metadata.finalizers?.length) return;
      await this.patch(rt, name, namespace, { metadata: { finalizers: null } }, 'merge');
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof NoKindError) return;
      throw err;
    }
  }

  /**
   * Read-modify-write with conflict retry: reads the object, applies `mutate` to a copy and writes
   * it back, re-reading and re-applying the mutation on 409. When the mutation changes nothing, no
   * write is made — re-running an upgrade step does not churn resourceVersions.
   * `mutate` may change the copy in place and/or return a replacement.
   */
  async mutate<T extends KubeObject>(
    rt: ResourceType<T>,
    name: string,
    namespace: string | undefined,
    // `void` lets callers mutate the copy in place without a `return` statement.
    // eslint-disable-next-line @typescript-eslint/no-invalid-void-type
    mutate: (obj: T) => T | undefined | void,
    options: MutateOptions = {},
  ): Promise<MutateResult<T>> {
    const maxAttempts = options.maxAttempts ?? 8;
    for (let attempt = 1; ; attempt++) {
      const current = await this.get(rt, name, namespace);
      const copy = structuredClone(current);
      const next = mutate(copy) ?? copy;
      if (deepEqual(next, current)) return { object: current, changed: false };
      try {
        return { object: await this.update(rt, next), changed: true };
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= maxAttempts) throw err;
        // Jittered backoff so competing writers do not collide in lock-step.
        await new Promise((r) => setTimeout(r, Math.random() * 20 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  private async call<T>(rt: ResourceType, req: KubeRequest, name?: string): Promise<T> {
    const res = await this.transport.request(this.signal ? { ...req, signal: this.signal } : req);
    if (res.status >= 200 && res.status < 300) return JSON.parse(res.text) as T;
    throw toApiError(rt, req, res, name);
  }
}

function withTypeMeta<T extends KubeObject>(rt: ResourceType<T>, obj: T): T {
  return { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(rt), kind: obj.kind ?? rt.kind };
}

function requireName(obj: KubeObject): string {
  const name = obj.metadata.name;
  if (!name) throw new Error(`${obj.kind ?? 'object'} has no metadata.name`);
  return name;
}

function requireNamespace(rt: ResourceType, obj: KubeObject): string | undefined {
  if (rt.namespaced && !obj.metadata.namespace) {
    throw new Error(`${rt.kind} ${obj.metadata.name ?? ''} is namespaced but has no metadata.namespace`);
  }
  return rt.namespaced ? obj.metadata.namespace : undefined;
}

function groupPath(rt: ResourceType): string {
  return rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
}

/** The collection URL; a namespaced kind without a namespace lists across all namespaces. */
export function collectionPath(rt: ResourceType, namespace?: string): string {
  const ns = rt.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${groupPath(rt)}${ns}/${rt.plural}`;
}

export function objectPath(rt: ResourceType, name: string, namespace?: string): string {
  if (rt.namespaced && !namespace)
    throw new Error(`${rt.kind} '${name}' is namespaced: a namespace is required`);
  return `${collectionPath(rt, namespace)}/${encodeURIComponent(name)}`;
}

function parseStatus(text: string): ApiStatus | undefined {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && (parsed as ApiStatus).kind === 'Status') return parsed;
  } catch {
    // a plain-text body, e.g. "404 page not found" for an unserved group/version
  }
  return undefined;
}

function toApiError(rt: ResourceType, req: KubeRequest, res: KubeResponse, name?: string): KubeApiError {
  const status = parseStatus(res.text);
  const what = `${rt.kind}${name ? ` '${name}'` : ''} (${resourceName(rt)}/${rt.version})`;
  const message = `${req.method} ${what}: ${status?.message ?? (res.text.trim().slice(0, 200) || `HTTP ${res.status}`)}`;
  const reason = status?.reason ?? '';
  switch (res.status) {
    case 404:
      // An object's NotFound names the object; a missing resource type answers without details
      // (or with a plain-text body), which is the "no matches for kind" case.
      if (status?.reason === 'NotFound' && status.details?.name) {
        return new NotFoundError(message, 404, reason, status);
      }
      return new NoKindError(
        `${what} is not served by this API server: ${status?.message ?? res.text.trim().slice(0, 100)}`,
        404,
        reason || 'NoKind',
        status,
        { hint: `install or upgrade the CRD ${resourceName(rt)} so that version ${rt.version} is served` },
      );
    case 409:
      return reason === 'AlreadyExists'
        ? new AlreadyExistsError(message, 409, reason, status)
        : new ConflictError(message, 409, reason || 'Conflict', status);
    case 410:
      return new ExpiredError(message, 410, reason, status, {
        hint: 'the list took too long; run the step again',
      });
    case 422:
      return new InvalidError(message, 422, reason, status);
    case 403:
      return new ForbiddenError(message, 403, reason, status, {
        hint: 'grant the ks-upgrade service account the missing permission (see deploy/ RBAC)',
      });
    default:
      return new KubeApiError(message, res.status, reason, status);
  }
}
