// `plan` (dry run): what each phase of the iam job would do, as counts per kind. Reads only.
import {
  ConfigMapResource,
  DeploymentResource,
  NamespaceResource,
  RbacRoleResource,
} from '../../api/core.js';
import {
  FederatedTypeConfigResource,
  GlobalRoleBindingResource,
  RoleBaseResource,
} from '../../api/v3/index.js';
import * as v3 from '../../api/v3/index.js';
import { releaseHistory } from '../../helm/release.js';
import { crdVersions, getCrd } from '../../kube/crd.js';
import type { PlannedAction } from '../types.js';
import type { JobContext } from '../types.js';
import { ROLE_TEMPLATE_TYPES } from './cleanup.js';
import {
  ANNOTATION,
  BUILTIN_GLOBAL_ROLES,
  FEDERATED_TYPE_CONFIG_CRD,
  KUBEFED_CONTROLLER,
  KUBEFED_CRDS,
  KUBEFED_NAMESPACE,
  KUBEFED_TYPE_CONFIGS,
  KS_CORE_RELEASE,
  KUBESPHERE_NAMESPACE,
  LABEL,
  RESOURCE,
} from './constants.js';
import { identityProviderSecretName, readIdentityProviders } from './identity-providers.js';
import { listWithVersion } from './migrate.js';
import type { IamOptions } from './options.js';
import { isBuiltinWorkspaceRole } from './post.js';
import { ADOPTED_OBJECTS, missingFromManifest } from './prepare.js';
import { IAM_RESOURCES, isCustomNamespaceRole } from './resources.js';
import { phaseDone } from './snapshot.js';

const MODE_VERB = {
  'in-place': 'convert in place to',
  'storage-only': 're-store (no conversion) in',
  create: 'create as',
  none: 'snapshot only',
} as const;

/** The dry run. Phases already recorded as done are reported as skipped. */
export async function planIam(ctx: JobContext, options: IamOptions): Promise<PlannedAction[]> {
  const out: PlannedAction[] = [];

  // ---- prepare-upgrade
  if (await phaseDone(ctx.store, 'prepare-upgrade')) {
    out.push({
      phase: 'prepare-upgrade',
      action: 'skip: already completed (iam-upgrade-status-prepare-upgrade)',
    });
  } else {
    let adopt = 0;
    for (const t of ADOPTED_OBJECTS) if (await ctx.kube.tryGet(t.rt, t.name, t.namespace)) adopt++;
    out.push({ phase: 'prepare-upgrade', action: `add helm adoption metadata to ${adopt} object(s)` });
    const admin = await ctx.kube.tryGet(GlobalRoleBindingResource, 'admin');
    out.push({
      phase: 'prepare-upgrade',
      action: admin ? `label with ${LABEL.userRef}=admin` : `create with ${LABEL.userRef}=admin`,
      target: 'GlobalRoleBinding admin',
    });
    const history = await releaseHistory(ctx.kube, KUBESPHERE_NAMESPACE, KS_CORE_RELEASE);
    const rel = history.find((h) => h.release.info.status === 'deployed') ?? history[0];
    out.push(
      rel
        ? {
            phase: 'prepare-upgrade',
            action: `append ${missingFromManifest(rel.release.manifest).length} document(s) to the release manifest`,
            target: `Secret ${KUBESPHERE_NAMESPACE}/${rel.secret.metadata.name ?? ''}`,
          }
        : { phase: 'prepare-upgrade', action: `FAIL: no helm release record of ${KS_CORE_RELEASE}` },
    );
  }

  // ---- pre-upgrade
  if (await phaseDone(ctx.store, 'pre-upgrade')) {
    out.push({ phase: 'pre-upgrade', action: 'skip: already completed (iam-upgrade-status-pre-upgrade)' });
  } else {
    for (const r of IAM_RESOURCES) {
      const { items } = await listWithVersion(ctx.kube, r.source);
      const n = r.filter ? items.filter((o) => r.filter?.(o, options)).length : items.length;
      const to = r.target ? `${r.target.group}/${r.target.version} ${r.target.kind}` : '';
      out.push({
        phase: 'pre-upgrade',
        action: `snapshot ${n} and ${MODE_VERB[r.mode]}${to ? ` ${to}` : ''}`,
        target: r.key,
      });
      if (r.crd && r.target) {
        const crd = await getCrd(ctx.kube, r.crd);
        const storage = crd ? crdVersions(crd).storage : undefined;
        const stored = crd?.status?.storedVersions ?? [];
        if (storage && !(stored.length === 1 && stored[0] === storage)) {
          out.push({
            phase: 'pre-upgrade',
            action: `set storedVersions [${stored.join(', ')}] → [${storage}] (after re-storing all ${items.length})`,
            target: `CRD ${r.crd}`,
          });
        }
      }
    }
    for (const rt of ROLE_TEMPLATE_TYPES) {
      const n = (await ctx.kube.listIfServed(rt, { labelSelector: LABEL.roleTemplate })).length;
      out.push({ phase: 'pre-upgrade', action: `back up and delete ${n} role template(s)`, target: rt.kind });
    }
    const legacy = (await ctx.kube.listAll(RbacRoleResource)).filter(
      (r) => !!r.metadata.annotations?.[ANNOTATION.creator],
    );
    out.push({
      phase: 'pre-upgrade',
      action: `back up and delete ${legacy.length} legacy rbac Role(s) (${legacy.filter((r) => !isCustomNamespaceRole(r)).length} built-in)`,
    });
    if (await ctx.kube.tryGet(NamespaceResource, KUBEFED_NAMESPACE)) {
      if (await ctx.kube.tryGet(DeploymentResource, KUBEFED_CONTROLLER, KUBEFED_NAMESPACE)) {
        out.push({
          phase: 'pre-upgrade',
          action: 'scale to 0',
          target: `Deployment ${KUBEFED_NAMESPACE}/${KUBEFED_CONTROLLER}`,
        });
      }
      if (await getCrd(ctx.kube, FEDERATED_TYPE_CONFIG_CRD)) {
        let n = 0;
        for (const name of KUBEFED_TYPE_CONFIGS) {
          if (await ctx.kube.tryGet(FederatedTypeConfigResource, name, KUBEFED_NAMESPACE)) n++;
        }
        out.push({ phase: 'pre-upgrade', action: `back up and delete ${n} FederatedTypeConfig(s)` });
      }
      for (const name of KUBEFED_CRDS) {
        if (await getCrd(ctx.kube, name)) {
          out.push({
            phase: 'pre-upgrade',
            action: 'back up and delete the CRD and its objects',
            target: `CRD ${name}`,
          });
        }
      }
    }
    const cm = await ctx.kube.tryGet(ConfigMapResource, 'kubesphere-config', KUBESPHERE_NAMESPACE);
    const providers = cm ? await readIdentityProviders(ctx) : [];
    for (const p of providers) {
      out.push({
        phase: 'pre-upgrade',
        action: 'create or update identity provider Secret',
        target: `Secret ${KUBESPHERE_NAMESPACE}/${identityProviderSecretName(p.name)}`,
      });
    }
  }

  // ---- post-upgrade (estimated from the v3 objects when pre-upgrade has not run yet)
  if (await phaseDone(ctx.store, 'post-upgrade')) {
    out.push({ phase: 'post-upgrade', action: 'skip: already completed (iam-upgrade-status-post-upgrade)' });
  } else {
    const isTemplate = (o: { metadata: { labels?: Record<string, string> } }): boolean =>
      o.metadata.labels?.[LABEL.roleTemplate] !== undefined;
    const custom =
      (await ctx.kube.listAll(RbacRoleResource)).filter(isCustomNamespaceRole).filter((r) => !isTemplate(r))
        .length +
      (await ctx.kube.listIfServed(v3.WorkspaceRoleResource)).filter(
        (r) => !isBuiltinWorkspaceRole(r) && !isTemplate(r),
      ).length +
      (await ctx.kube.listIfServed(v3.GlobalRoleResource)).filter(
        (r) => !BUILTIN_GLOBAL_ROLES.includes(r.metadata.name ?? '') && !isTemplate(r),
      ).length;
    out.push({
      phase: 'post-upgrade',
      action:
        options.customRoleRules === 'reset'
          ? `back up and empty the rules of about ${custom} custom role(s) (re-author them in v4)`
          : `keep the v3 rules of about ${custom} custom role(s) (customRoleRules: keep)`,
    });
    const users = await ctx.kube.listIfServed(v3.UserResource);
    out.push({
      phase: 'post-upgrade',
      action: `annotate users lacking ${ANNOTATION.globalRole} (${users.filter((u) => !u.metadata.annotations?.[ANNOTATION.globalRole]).length} of ${users.length} lack it)`,
    });
    if (await getCrd(ctx.kube, RESOURCE.roleBase)) {
      const n = (await ctx.kube.listIfServed(RoleBaseResource)).length;
      out.push({
        phase: 'post-upgrade',
        action: `back up and delete ${n} RoleBase(s) and the CRD`,
        target: `CRD ${RESOURCE.roleBase}`,
      });
    }
  }
  return out;
}
