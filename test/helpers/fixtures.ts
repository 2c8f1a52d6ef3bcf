import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { CustomResourceDefinitionResource, type CustomResourceDefinition } from '../../src/api/core.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { waitForCrdEstablished } from '../../src/kube/crd.js';
import { lookupResource, type KubeObject } from '../../src/kube/types.js';

/** Every document of a multi-document YAML file (empty documents dropped). */
export function readYamlDocuments(file: string): KubeObject[] {
  return yaml
    .loadAll(readFileSync(file, 'utf8'))
    .filter((d): d is KubeObject => !!d && typeof d === 'object');
}

/**
 * Applies fixture objects (server-side apply, so re-applying is a no-op). CRDs go first and are
 * waited for, so a file can hold a CRD and objects of its kind.
 */
export async function applyObjects(client: ResourceClient, objects: KubeObject[]): Promise<void> {
  const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition') as CustomResourceDefinition[];
  for (const crd of crds) await client.apply(CustomResourceDefinitionResource, crd, { force: true });
  for (const crd of crds) await waitForCrdEstablished(client, crd.metadata.name ?? '');
  for (const obj of objects) {
    if (obj.kind === 'CustomResourceDefinition') continue;
    const rt = lookupResource(obj.apiVersion ?? '', obj.kind ?? '');
    if (!rt)
      throw new Error(
        `fixture ${obj.kind ?? '?'} ${obj.metadata.name ?? '?'}: unknown apiVersion/kind ${obj.apiVersion ?? ''}`,
      );
    await client.apply(rt, obj, { force: true });
  }
}

/** Applies every document of the given YAML files, in order. */
export async function applyYamlFiles(client: ResourceClient, files: string[]): Promise<void> {
  for (const f of files) await applyObjects(client, readYamlDocuments(f));
}
