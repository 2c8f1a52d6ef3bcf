import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { CustomResourceDefinitionResource, type CustomResourceDefinition } from '../../src/api/core.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { waitForCrdEstablished } from '../../src/kube/crd.js';
import { lookupResource, type KubeObject, type ResourceType } from '../../src/kube/types.js';
import { deepEqual } from '../../src/util/object.js';

/** Every document of a multi-document YAML file (empty documents dropped). */
export function readYamlDocuments(file: string): KubeObject[] {
  return yaml
    .loadAll(readFileSync(file, 'utf8'))
    .filter((d): d is KubeObject => !!d && typeof d === 'object');
}

/**
 * Groups of the Kubernetes built-in kinds. Their status belongs to controllers the test servers do
 * not run: a fixture object's status there is left to the server (dropped), as before.
 */
const BUILT_IN_GROUPS = new Set([
  '',
  'apps',
  'batch',
  'policy',
  'autoscaling',
  'networking.k8s.io',
  'rbac.authorization.k8s.io',
  'admissionregistration.k8s.io',
  'apiextensions.k8s.io',
  'apiregistration.k8s.io',
  'storage.k8s.io',
]);

/** A Kubernetes built-in kind (its status belongs to a controller, not to the fixture). */
export function isBuiltIn(rt: ResourceType): boolean {
  return BUILT_IN_GROUPS.has(rt.group);
}

/** The resource type of a fixture object, or an error naming it. */
export function fixtureResource(obj: KubeObject): ResourceType {
  const rt = lookupResource(obj.apiVersion ?? '', obj.kind ?? '');
  if (!rt)
    throw new Error(
      `fixture ${obj.kind ?? '?'} ${obj.metadata.name ?? '?'}: unknown apiVersion/kind ${obj.apiVersion ?? ''}`,
    );
  return rt;
}

/**
 * Applies fixture objects (server-side apply, so re-applying is a no-op). CRDs go first and are
 * waited for, so a file can hold a CRD and objects of its kind. A custom resource's status is
 * written through the status sub-resource when its CRD has one (the main resource ignores it there,
 * as on a real cluster), so the fixture can still say what the v3 controllers had written.
 */
export async function applyObjects(client: ResourceClient, objects: KubeObject[]): Promise<void> {
  const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition') as CustomResourceDefinition[];
  // Independent of each other: applied and awaited together (one at a time is most of the fixture's load time).
  await Promise.all(
    crds.map(async (crd) => {
      await client.apply(CustomResourceDefinitionResource, crd, { force: true });
      await waitForCrdEstablished(client, crd.metadata.name ?? '');
    }),
  );
  for (const obj of objects) {
    if (obj.kind === 'CustomResourceDefinition') continue;
    const rt = fixtureResource(obj);
    const applied = await client.apply(rt, obj, { force: true });
    const status = (obj as { status?: unknown }).status;
    if (
      status !== undefined &&
      !isBuiltIn(rt) &&
      !deepEqual((applied as { status?: unknown }).status, status)
    ) {
      await client.patch(rt, obj.metadata.name ?? '', obj.metadata.namespace, { status }, 'merge', 'status');
    }
  }
}

/** Applies every document of the given YAML files, in order. */
export async function applyYamlFiles(client: ResourceClient, files: string[]): Promise<void> {
  for (const f of files) await applyObjects(client, readYamlDocuments(f));
}
