// prepare-upgrade (reference §4.2): make the v4 `helm upgrade ks-core` take over objects that v3
// created outside the chart, instead of failing with "exists and cannot be imported".
import * as yaml from 'js-yaml';
import { ConfigMapResource, SecretResource, type Secret } from '../../api/core.js';
import {
  GlobalRoleBindingResource,
  GlobalRoleResource,
  WorkspaceTemplateResource,
  type GlobalRoleBinding,
} from '../../api/v3/index.js';
import { KsUpgradeError } from '../../errors.js';
import {
  decodeRelease,
  encodeRelease,
  releaseHistory,
  releaseSecretName,
  type HelmRelease,
} from '../../helm/release.js';
import { isAbsent } from '../../kube/errors.js';
import type { ResourceType } from '../../kube/types.js';
import { isRecord } from '../../util/object.js';
import { loadBackup } from '../patterns.js';
import type { JobContext } from '../types.js';
import {
  ANNOTATION,
  HELM_GLOBAL_ROLES,
  HELM_GLOBAL_ROLE_BINDINGS,
  KEYS,
  KS_CORE_RELEASE,
  KUBESPHERE_NAMESPACE,
  LABEL,
} from './constants.js';
import { backupUnion, loadUnion } from './util.js';

/** What prepare-upgrade sets on every adopted object. */
const ADOPTION = {
  annotations: {
    [ANNOTATION.helmReleaseName]: KS_CORE_RELEASE,
    [ANNOTATION.helmReleaseNamespace]: KUBESPHERE_NAMESPACE,
  },
  labels: { [LABEL.managedBy]: 'Helm' },
} as const;

interface AdoptionTarget {
  rt: ResourceType;
  name: string;
  namespace?: string;
}

/** The objects of step 1, in the original's order (v3 types). */
export const ADOPTED_OBJECTS: readonly AdoptionTarget[] = [
  { rt: ConfigMapResource, name: 'kubesphere-config', namespace: KUBESPHERE_NAMESPACE },
  ...HELM_GLOBAL_ROLES.map((name) => ({ rt: GlobalRoleResource, name })),
  ...HELM_GLOBAL_ROLE_BINDINGS.map((name) => ({ rt: GlobalRoleBindingResource, name })),
  { rt: WorkspaceTemplateResource, name: 'system-workspace' },
];

/**
 * The values an object had for keys we overwrite (null = the key was absent). Only metadata keys
 * are recorded: the ConfigMap's data (with the JWT secret) never goes to the backup.
 */
export interface MetadataBackup {
  kind: string;
  apiVersion: string;
  name: string;
  namespace?: string;
  labels: Record<string, string | null>;
  annotations: Record<string, string | null>;
}

const metadataId = (b: MetadataBackup): string => `${b.apiVersion}/${b.kind}/${b.namespace ?? ''}/${b.name}`;

function previousValues(
  current: Record<string, string> | undefined,
  keys: readonly string[],
): Record<string, string | null> {
  return Object.fromEntries(keys.map((k) => [k, current?.[k] ?? null]));
}

/** Step 1: helm adoption metadata on each existing object (NotFound → skipped). */
export async function adoptHelmObjects(ctx: JobContext): Promise<void> {
  for (const target of ADOPTED_OBJECTS) {
    const current = await ctx.kube.tryGet(target.rt, target.name, target.namespace);
    if (!current) {
      ctx.logger.info(`helm adoption: ${target.rt.kind} ${target.name} not found, skipped`);
      continue;
    }
    // Backup (old values of the keys we set) before the change; the first attempt's values win.
    await backupUnion<MetadataBackup>(
      ctx.store,
      KEYS.helmAdoption,
      [
        {
          kind: target.rt.kind,
          apiVersion: current.apiVersion ?? '',
          name: target.name,
          ...(target.namespace ? { namespace: target.namespace } : {}),
          labels: previousValues(current.metadata.labels, Object.keys(ADOPTION.labels)),
          annotations: previousValues(current.metadata.annotations, Object.keys(ADOPTION.annotations)),
        },
      ],
      metadataId,
    );
    const { changed } = await ctx.kube.mutate(target.rt, target.name, target.namespace, (obj) => {
      obj.metadata.annotations = { ...obj.metadata.annotations, ...ADOPTION.annotations };
      obj.metadata.labels = { ...obj.metadata.labels, ...ADOPTION.labels };
    });
    ctx.logger.info(
      `helm adoption: ${target.rt.kind} ${target.namespace ? `${target.namespace}/` : ''}${target.name} ${changed ? 'annotated' : 'already annotated'}`,
    );
  }
}

/** Backup of GlobalRoleBinding `admin` before step 2: absent, or the old user-ref value. */
interface AdminBindingBackup {
  existed: boolean;
  userRef: string | null;
}

/** Step 2: GlobalRoleBinding `admin` gets `iam.kubesphere.io/user-ref: admin` (created if absent). */
export async function fixAdminBinding(ctx: JobContext): Promise<void> {
  const current = await ctx.kube.tryGet(GlobalRoleBindingResource, 'admin');
  await ctx.store.saveOnce<AdminBindingBackup>(
    KEYS.adminBinding,
    { existed: current !== undefined, userRef: current?.metadata.labels?.[LABEL.userRef] ?? null },
    { sensitive: true },
  );
  if (!current) {
    // As the original (CreateOrUpdate with a label-only mutation): a binding with the label and
    // nothing else. The v4 chart, which owns `admin`, fills it in.
    await ctx.kube.createIfAbsent(GlobalRoleBindingResource, {
      metadata: { name: 'admin', labels: { [LABEL.userRef]: 'admin' } },
    } as unknown as GlobalRoleBinding);
    ctx.logger.info('fix conflict resources: GlobalRoleBinding admin created');
    return;
  }
  const { changed } = await ctx.kube.mutate(GlobalRoleBindingResource, 'admin', undefined, (b) => {
    b.metadata.labels = { ...b.metadata.labels, [LABEL.userRef]: 'admin' };
  });
  ctx.logger.info(`fix conflict resources: GlobalRoleBinding admin ${changed ? 'labelled' : 'unchanged'}`);
}

/** A document prepare-upgrade appends to the ks-core release manifest. */
interface ManifestObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

/** The objects of step 3, as the v4 chart declares them. */
export const RELEASE_OBJECTS: readonly ManifestObject[] = [
  { apiVersion: 'v1', kind: 'ConfigMap', name: 'kubesphere-config', namespace: KUBESPHERE_NAMESPACE },
  ...HELM_GLOBAL_ROLES.map((name) => ({ apiVersion: 'iam.kubesphere.io/v1beta1', kind: 'GlobalRole', name })),
  ...HELM_GLOBAL_ROLE_BINDINGS.map((name) => ({
    apiVersion: 'iam.kubesphere.io/v1beta1',
    kind: 'GlobalRoleBinding',
    name,
  })),
  { apiVersion: 'tenant.kubesphere.io/v1beta1', kind: 'WorkspaceTemplate', name: 'system-workspace' },
  { apiVersion: 'kubesphere.io/v1alpha1', kind: 'Repository', name: 'extensions-museum' },
];

/**
 * Which of {@link RELEASE_OBJECTS} the manifest lacks. The original tested the text for
 * `name: <name>`, so GlobalRoleBinding `authenticated` counted as present whenever GlobalRole
 * `authenticated` was, and `name: admin-x` hid `admin`. We compare kind and name of the parsed
 * documents; only a manifest that does not parse falls back to the original's text test.
 */
export function missingFromManifest(manifest: string): ManifestObject[] {
  let present: Set<string> | undefined;
  try {
    present = new Set(
      yaml
        .loadAll(manifest)
        .filter(isRecord)
        .map((d) => `${String(d.kind)}/${String(isRecord(d.metadata) ? d.metadata.name : '')}`),
    );
  } catch {
    present = undefined;
  }
  return RELEASE_OBJECTS.filter((o) =>
    present ? !present.has(`${o.kind}/${o.name}`) : !manifest.includes(`name: ${o.name}`),
  );
}

/** The manifest with a minimal document appended for each missing object. */
export function appendToManifest(manifest: string, missing: readonly ManifestObject[]): string {
  if (missing.length === 0) return manifest;
  // The original appended right after the text; without a final newline that glued `---` to
  // the last line of the previous document.
  let out = manifest === '' || manifest.endsWith('\n') ? manifest : `${manifest}\n`;
  for (const o of missing) {
    const doc = {
      apiVersion: o.apiVersion,
      kind: o.kind,
      metadata: { name: o.name, ...(o.namespace ? { namespace: o.namespace } : {}) },
    };
    out += `---\n${yaml.dump(doc)}`;
  }
  return out;
}

/**
 * The manifest without the documents {@link appendToManifest} added: a {@link RELEASE_OBJECTS}
 * kind and name with nothing but apiVersion, kind and metadata. A chart's own rendering of one of
 * these (kubesphere-config with `config.create: true`) has content and stays.
 */
export function withoutAdoptionStubs(manifest: string): string {
  const docs = manifest.split(/^---[ \t]*\n/m);
  const kept = docs.filter((text) => {
    let doc: unknown;
    try {
      doc = yaml.load(text);
    } catch {
      return true;
    }
    if (!isRecord(doc) || !isRecord(doc.metadata)) return true;
    const meta = doc.metadata;
    const stub =
      Object.keys(doc).every((k) => ['apiVersion', 'kind', 'metadata'].includes(k)) &&
      Object.keys(meta).every((k) => ['name', 'namespace'].includes(k));
    return !(stub && RELEASE_OBJECTS.some((o) => o.kind === doc.kind && o.name === meta.name));
  });
  return kept.length === docs.length ? manifest : kept.join('---\n');
}

/** The record to rewrite: the newest deployed revision (else the newest of all, with a warning). */
async function chooseRelease(ctx: JobContext): Promise<{ release: HelmRelease; secret: Secret }> {
  const history = await releaseHistory(ctx.kube, KUBESPHERE_NAMESPACE, KS_CORE_RELEASE);
  if (history.length === 0) {
    throw new KsUpgradeError(`failed to find release ${KS_CORE_RELEASE}`, {
      hint: `prepare-upgrade needs the helm release record of ks-core (Secrets sh.helm.release.v1.ks-core.v<N> in ${KUBESPHERE_NAMESPACE}); check 'helm -n ${KUBESPHERE_NAMESPACE} history ks-core'`,
    });
  }
  const deployed = history.find((h) => h.release.info.status === 'deployed');
  if (deployed) return deployed;
  const newest = history[0];
  if (!newest) throw new Error('unreachable: empty release history');
  ctx.logger.warn(
    `no deployed revision of ${KS_CORE_RELEASE}; rewriting the newest revision ${newest.release.version} (${newest.release.info.status})`,
  );
  return newest;
}

/** Backup of the release record: the manifest before we appended to it. */
interface ReleaseBackup {
  secretName: string;
  revision: number;
  manifest: string;
}

/**
 * Step 3: append the missing objects to the ks-core release manifest and write the record back.
 * Idempotent: a re-run finds the documents and writes nothing.
 */
export async function rewriteReleaseRecord(ctx: JobContext): Promise<void> {
  const { release, secret } = await chooseRelease(ctx);
  const secretName = secret.metadata.name ?? releaseSecretName(KS_CORE_RELEASE, release.version);
  const missing = missingFromManifest(release.manifest);
  if (missing.length === 0) {
    ctx.logger.info(`ks-core release record ${secretName} already lists every adopted object`);
    return;
  }
  // Encrypted: a release record holds the chart values, which may include credentials.
  await ctx.store.saveOnce<ReleaseBackup>(
    KEYS.releaseSecret(secretName),
    { secretName, revision: release.version, manifest: release.manifest },
    { sensitive: true },
  );
  const { changed } = await ctx.kube.mutate(SecretResource, secretName, KUBESPHERE_NAMESPACE, (s) => {
    // Re-decoded from the current Secret: never write back a record read before a retry.
    const current = decodeRelease(s);
    const next = appendToManifest(current.manifest, missingFromManifest(current.manifest));
    if (next === current.manifest) return s;
    s.data = { ...s.data, release: encodeRelease({ ...current, manifest: next }) };
    return s;
  });
  ctx.logger.info(
    `ks-core release record ${secretName}: ${changed ? 'appended' : 'already had'} ${missing.length} document(s)`,
    {
      objects: missing.map((o) => `${o.kind}/${o.name}`),
    },
  );
}

// ---------------------------------------------------------------------------------------------
// rollback

/** Undoes steps 3, 2 and 1 (in that order), from the backups; no backup → nothing to undo. */
export async function undoPrepare(ctx: JobContext): Promise<void> {
  // Step 3: restore the manifest of each rewritten record. Only the manifest: helm may have
  // changed the record's status since (superseded), which must stay.
  for (const key of await ctx.store.list('iam-backup-release-')) {
    const backup = await ctx.store.load<ReleaseBackup>(key);
    const exists = await ctx.kube.tryGet(SecretResource, backup.secretName, KUBESPHERE_NAMESPACE);
    if (!exists) continue;
    const { changed } = await ctx.kube.mutate(
      SecretResource,
      backup.secretName,
      KUBESPHERE_NAMESPACE,
      (s) => {
        const current = decodeRelease(s);
        if (current.manifest === backup.manifest) return s;
        s.data = { ...s.data, release: encodeRelease({ ...current, manifest: backup.manifest }) };
        return s;
      },
    );
    if (changed) ctx.logger.info(`rollback: restored the manifest of release record ${backup.secretName}`);
  }

  // Step 2.
  const admin = await loadBackup<AdminBindingBackup>(ctx, KEYS.adminBinding);
  if (admin) {
    if (!admin.existed) {
      await ctx.kube.delete(GlobalRoleBindingResource, 'admin');
      ctx.logger.info('rollback: deleted GlobalRoleBinding admin (created by prepare-upgrade)');
    } else {
      await ctx.kube
        .mutate(GlobalRoleBindingResource, 'admin', undefined, (b) => {
          restoreKeys(b.metadata, 'labels', { [LABEL.userRef]: admin.userRef }, { [LABEL.userRef]: 'admin' });
        })
        .catch(ignoreAbsent);
    }
  }

  // Step 1.
  const adopted = await loadUnion<MetadataBackup>(ctx.store, KEYS.helmAdoption);
  for (const b of adopted) {
    const target = ADOPTED_OBJECTS.find((t) => t.rt.kind === b.kind && t.name === b.name);
    if (!target) continue;
    await ctx.kube
      .mutate(target.rt, b.name, b.namespace, (obj) => {
        restoreKeys(obj.metadata, 'labels', b.labels, ADOPTION.labels);
        restoreKeys(obj.metadata, 'annotations', b.annotations, ADOPTION.annotations);
      })
      .catch(ignoreAbsent);
  }
  if (adopted.length > 0)
    ctx.logger.info(`rollback: helm adoption metadata removed from ${adopted.length} object(s)`);
}

/**
 * Puts back the old values of keys we set — only where the key still holds what we wrote, so a
 * value someone changed since is left alone.
 */
function restoreKeys(
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> },
  field: 'labels' | 'annotations',
  previous: Record<string, string | null>,
  written: Record<string, string>,
): void {
  const map = { ...metadata[field] };
  for (const [k, old] of Object.entries(previous)) {
    if (map[k] !== written[k]) continue;
    if (old === null) Reflect.deleteProperty(map, k);
    else map[k] = old;
  }
  if (Object.keys(map).length === 0) Reflect.deleteProperty(metadata, field);
  else metadata[field] = map;
}

function ignoreAbsent(err: unknown): void {
  if (isAbsent(err)) return;
  throw err;
}
