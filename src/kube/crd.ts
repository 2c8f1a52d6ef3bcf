import { CustomResourceDefinitionResource, type CustomResourceDefinition } from '../api/core.js';
import { KsUpgradeError } from '../errors.js';
import { WaitTimeoutError, notYet, waitFor, type WaitReporter } from '../util/wait.js';
import type { ResourceClient } from './client.js';
import { defineResource, type KubeObject, type ResourceType } from './types.js';

/** The CRD, or undefined when it is not installed. */
export async function getCrd(
  client: ResourceClient,
  name: string,
): Promise<CustomResourceDefinition | undefined> {
  return client.tryGet(CustomResourceDefinitionResource, name);
}

export async function crdExists(client: ResourceClient, name: string): Promise<boolean> {
  return (await getCrd(client, name)) !== undefined;
}

export function isEstablished(crd: CustomResourceDefinition): boolean {
  return (crd.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True');
}

/** The served, deprecated and storage versions of a CRD. */
export function crdVersions(crd: CustomResourceDefinition): {
  served: string[];
  deprecated: string[];
  storage: string | undefined;
} {
  const versions = crd.spec.versions;
  return {
    served: versions.filter((v) => v.served).map((v) => v.name),
    deprecated: versions.filter((v) => v.deprecated).map((v) => v.name),
    storage: versions.find((v) => v.storage)?.name,
  };
}

/**
 * The "old" and "new" version of a multi-version CRD, as the original's IAM job decides them: a
 * single version is old with no new one; otherwise the deprecated version is old and a
 * non-deprecated one is new (the last such, as in the original).
 */
export function oldAndNewVersion(crd: CustomResourceDefinition): {
  old: string | undefined;
  new: string | undefined;
} {
  const versions = crd.spec.versions;
  if (versions.length === 1) return { old: versions[0]?.name, new: undefined };
  let oldV: string | undefined;
  let newV: string | undefined;
  for (const v of versions) {
    if (v.deprecated) oldV = v.name;
    else newV = v.name;
  }
  return { old: oldV, new: newV };
}

/** A resource type for one served version of a CRD. */
export function resourceTypeOf<T extends KubeObject = KubeObject>(
  crd: CustomResourceDefinition,
  version: string,
): ResourceType<T> {
  return defineResource<T>({
    group: crd.spec.group,
    version,
    kind: crd.spec.names.kind,
    plural: crd.spec.names.plural,
    namespaced: crd.spec.scope === 'Namespaced',
  });
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Where the wait logs and heartbeats, and its cancellation (a job passes its context). */
  reporter?: WaitReporter;
}

/** The CRD did not become Established in time. */
export class CrdNotEstablishedError extends WaitTimeoutError {}

/**
 * Waits until the CRD exists and is Established (its resource types are served). Bounded: fails
 * with {@link CrdNotEstablishedError} after `timeoutMs` (default 60 s).
 */
export async function waitForCrdEstablished(
  client: ResourceClient,
  name: string,
  options: WaitOptions = {},
): Promise<CustomResourceDefinition> {
  return waitFor(
    {
      what: `CRD ${name} to be Established`,
      timeoutMs: options.timeoutMs ?? 60_000,
      intervalMs: options.intervalMs ?? 200,
      maxIntervalMs: 2000,
      check: async () => {
        const crd = await getCrd(client, name);
        if (crd && isEstablished(crd)) return crd;
        return notYet(crd ? 'installed, not Established yet' : 'not installed');
      },
      hint:
        `if it is not installed, apply CRD ${name} (the KubeSphere v4 CRDs must be applied before this step); ` +
        `otherwise check 'kubectl describe crd ${name}' for its conditions`,
      timeoutError: CrdNotEstablishedError,
    },
    options.reporter,
  );
}

/** A storedVersions list that would leave the CRD inconsistent. */
export class StoredVersionsError extends KsUpgradeError {}

/**
 * Sets `status.storedVersions` (status sub-resource) after checking the list: every version must
 * be in `spec.versions` and the current storage version must be included. The API server itself
 * accepts any list on the status sub-resource (verified against kube-apiserver 1.35), which would
 * leave a CRD whose objects may be unreadable or whose next update fails.
 */
export async function setStoredVersions(
  client: ResourceClient,
  name: string,
  versions: string[],
): Promise<CustomResourceDefinition> {
  const crd = await client.get(CustomResourceDefinitionResource, name);
  const known = crd.spec.versions.map((v) => v.name);
  const unknown = versions.filter((v) => !known.includes(v));
  const { storage } = crdVersions(crd);
  if (unknown.length > 0 || versions.length === 0 || (storage !== undefined && !versions.includes(storage))) {
    throw new StoredVersionsError(
      `refusing to set ${name} status.storedVersions to [${versions.join(', ')}]`,
      {
        hint:
          unknown.length > 0
            ? `${unknown.join(', ')} not in spec.versions (${known.join(', ')})`
            : `the list must include the storage version ${storage ?? '(none)'}`,
      },
    );
  }
  return client.patch(
    CustomResourceDefinitionResource,
    name,
    undefined,
    { status: { storedVersions: versions } },
    'merge',
    'status',
  );
}

/** Server-side applies a CRD (field manager ks-upgrade) and waits until it is Established. */
export async function applyCrd(
  client: ResourceClient,
  crd: CustomResourceDefinition,
  options: WaitOptions & { force?: boolean } = {},
): Promise<CustomResourceDefinition> {
  await client.apply(CustomResourceDefinitionResource, crd, { force: options.force ?? true });
  return waitForCrdEstablished(client, crd.metadata.name ?? '', options);
}
