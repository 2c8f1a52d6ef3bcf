// pre-upgrade step 6 (reference §4.2): v3 kept identity providers in kubesphere.yaml; v4 reads one
// Secret per provider. Provider settings hold client secrets and bind passwords: never logged, and
// backed up only encrypted.
import * as yaml from 'js-yaml';
import { ConfigMapResource, SecretResource, type Secret } from '../../api/core.js';
import { KsUpgradeError } from '../../errors.js';
import { KUBESPHERE_CONFIG } from '../../kubesphere/index.js';
import { isRecord } from '../../util/object.js';
import { loadBackup } from '../patterns.js';
import type { JobContext } from '../types.js';
import {
  IDENTITY_PROVIDER_PREFIX,
  IDENTITY_PROVIDER_SECRET_TYPE,
  KEYS,
  KUBESPHERE_NAMESPACE,
  LABEL,
} from './constants.js';
import { backupUnion, stripServerFields } from './util.js';

const CONFIG_KEY = 'configuration.yaml';

/** kubesphere.yaml is missing or unreadable. */
export class KubeSphereConfigError extends KsUpgradeError {}

/** One provider of `authentication.oauthOptions.identityProviders`. */
export interface IdentityProvider {
  name: string;
  mappingMethod: string;
  type: string;
  provider: Record<string, unknown> | null;
}

/** The Secret name v4 looks for: `kubesphere-identityprovider.<lower(name)>`. */
export function identityProviderSecretName(name: string): string {
  return `${IDENTITY_PROVIDER_PREFIX}${name.toLowerCase()}`;
}

/**
 * `configuration.yaml` of the Secret: the four fields, keys sorted at every level — what the
 * original's sigs.k8s.io/yaml encoding of the Go struct produced.
 */
export function identityProviderConfiguration(p: IdentityProvider): string {
  return yaml.dump(
    { name: p.name, mappingMethod: p.mappingMethod, type: p.type, provider: p.provider },
    { sortKeys: true, lineWidth: -1 },
  );
}

/** The providers in kubesphere.yaml; [] when the key or the list is absent. */
export async function readIdentityProviders(ctx: JobContext): Promise<IdentityProvider[]> {
  const cm = await ctx.kube.tryGet(ConfigMapResource, KUBESPHERE_CONFIG.name, KUBESPHERE_CONFIG.namespace);
  if (!cm) {
    throw new KubeSphereConfigError(
      `ConfigMap ${KUBESPHERE_CONFIG.namespace}/${KUBESPHERE_CONFIG.name} not found`,
      {
        hint: 'every KubeSphere v3 cluster has it; check the kubeconfig context points at the cluster being upgraded',
      },
    );
  }
  const text = cm.data?.[KUBESPHERE_CONFIG.key];
  if (text === undefined) return [];
  let parsed: unknown;
  try {
    parsed = yaml.load(text);
  } catch (err) {
    // The YAML error quotes the offending text, which may be a credential: not passed on.
    throw new KubeSphereConfigError(
      `${KUBESPHERE_CONFIG.key} in ConfigMap ${KUBESPHERE_CONFIG.name} is not valid YAML`,
      {
        hint: `fix ${KUBESPHERE_CONFIG.key} (kubectl -n ${KUBESPHERE_CONFIG.namespace} edit cm ${KUBESPHERE_CONFIG.name}) and run pre-upgrade again`,
        cause: err instanceof Error ? new Error(err.name) : undefined,
      },
    );
  }
  const auth = isRecord(parsed) && isRecord(parsed.authentication) ? parsed.authentication : {};
  const oauth = isRecord(auth.oauthOptions) ? auth.oauthOptions : {};
  const list = Array.isArray(oauth.identityProviders) ? (oauth.identityProviders as unknown[]) : [];
  return list.filter(isRecord).map((p) => ({
    name: typeof p.name === 'string' || typeof p.name === 'number' ? String(p.name) : '',
    mappingMethod: typeof p.mappingMethod === 'string' ? p.mappingMethod : '',
    type: typeof p.type === 'string' ? p.type : '',
    provider: isRecord(p.provider) ? p.provider : null,
  }));
}

/** Backup entry: did the Secret exist before we wrote it, and what did it hold. */
interface SecretBackup {
  name: string;
  existed: boolean;
  secret?: Secret;
}

/** Step 6: create or update one Secret per provider. */
export async function migrateIdentityProviders(ctx: JobContext): Promise<void> {
  const providers = await readIdentityProviders(ctx);
  if (providers.length === 0) {
    ctx.logger.info('no identity providers in kubesphere.yaml');
    return;
  }
  const desired = providers.map((p) => ({
    name: identityProviderSecretName(p.name),
    data: Buffer.from(identityProviderConfiguration(p), 'utf8').toString('base64'),
  }));
  const before: SecretBackup[] = [];
  for (const d of desired) {
    const current = await ctx.kube.tryGet(SecretResource, d.name, KUBESPHERE_NAMESPACE);
    before.push(
      current
        ? { name: d.name, existed: true, secret: stripServerFields(current) }
        : { name: d.name, existed: false },
    );
  }
  await backupUnion(ctx.store, KEYS.identityProviders, before, (b) => b.name);

  for (const d of desired) {
    const { created } = await ctx.kube.createIfAbsent(SecretResource, {
      metadata: {
        name: d.name,
        namespace: KUBESPHERE_NAMESPACE,
        labels: { [LABEL.idpType]: 'identityprovider' },
      },
      type: IDENTITY_PROVIDER_SECRET_TYPE,
      data: { [CONFIG_KEY]: d.data },
    });
    if (!created) {
      const { changed } = await ctx.kube.mutate(SecretResource, d.name, KUBESPHERE_NAMESPACE, (s) => {
        if (s.type !== IDENTITY_PROVIDER_SECRET_TYPE) {
          // A Secret's type is immutable: the update would fail with a less helpful message.
          throw new KubeSphereConfigError(
            `Secret ${KUBESPHERE_NAMESPACE}/${d.name} exists with type ${s.type ?? '(none)'}, not ${IDENTITY_PROVIDER_SECRET_TYPE}`,
            {
              hint: `delete or rename that Secret (v4 reads identity provider settings from it), then run pre-upgrade again`,
            },
          );
        }
        s.metadata.labels = { ...s.metadata.labels, [LABEL.idpType]: 'identityprovider' };
        // `data` rather than the original's stringData: same stored result, and an unchanged
        // Secret is not written again on a re-run.
        s.data = { ...s.data, [CONFIG_KEY]: d.data };
      });
      ctx.logger.info(`identity provider Secret ${d.name} ${changed ? 'updated' : 'unchanged'}`);
    } else {
      ctx.logger.info(`identity provider Secret ${d.name} created`);
    }
  }
}

/** Undo of step 6: Secrets we created are deleted, ones we updated get their old content back. */
export async function undoIdentityProviders(ctx: JobContext): Promise<void> {
  const backups = (await loadBackup<SecretBackup[]>(ctx, KEYS.identityProviders)) ?? [];
  for (const b of backups) {
    if (!b.existed) {
      if (await ctx.kube.delete(SecretResource, b.name, KUBESPHERE_NAMESPACE)) {
        ctx.logger.info(`rollback: deleted identity provider Secret ${b.name}`);
      }
      continue;
    }
    const old = b.secret;
    if (!old) continue;
    const exists = await ctx.kube.tryGet(SecretResource, b.name, KUBESPHERE_NAMESPACE);
    if (!exists) {
      await ctx.kube.createIfAbsent(SecretResource, old);
      continue;
    }
    await ctx.kube.mutate(SecretResource, b.name, KUBESPHERE_NAMESPACE, (s) => {
      s.data = old.data ?? {};
      if (old.metadata.labels) s.metadata.labels = old.metadata.labels;
      else delete s.metadata.labels;
    });
  }
}
