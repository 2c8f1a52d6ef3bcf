import { KsUpgradeError } from '../errors.js';

/** The `Status` object the API server returns with errors. */
export interface ApiStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    causes?: { reason?: string; message?: string; field?: string }[];
  };
}

/** The API server answered with an error status. Subclasses for the cases callers branch on. */
export class KubeApiError extends KsUpgradeError {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string,
    readonly apiStatus: ApiStatus | undefined,
    options?: { hint?: string },
  ) {
    super(message, options);
  }
}

/** 404 for an object: the resource type is served, the object does not exist. */
export class NotFoundError extends KubeApiError {}
/** 409 AlreadyExists on create. */
export class AlreadyExistsError extends KubeApiError {}
/** 409 Conflict: the object changed since it was read (stale resourceVersion). */
export class ConflictError extends KubeApiError {}
/** 422: the object is invalid for the server's schema or admission. */
export class InvalidError extends KubeApiError {}
/** 403: the credentials may not do this. */
export class ForbiddenError extends KubeApiError {}
/** 410: a list continue token expired (etcd compaction); the list must start over. */
export class ExpiredError extends KubeApiError {}
/**
 * The resource type is not served by this API server (CRD missing or version not served) — the
 * original's "no matches for kind". Distinct from NotFound: the object cannot exist at all.
 */
export class NoKindError extends KubeApiError {}

export function isNotFound(err: unknown): err is NotFoundError {
  return err instanceof NotFoundError;
}
/** NotFound or NoKind: "there is no such object here", whatever the reason. */
export function isAbsent(err: unknown): boolean {
  return err instanceof NotFoundError || err instanceof NoKindError;
}
export function isAlreadyExists(err: unknown): err is AlreadyExistsError {
  return err instanceof AlreadyExistsError;
}
export function isConflict(err: unknown): err is ConflictError {
  return err instanceof ConflictError;
}
