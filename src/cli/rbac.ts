// `ks-upgrade rbac`: the ClusterRole, Roles and bindings the enabled jobs need, from their access
// table (docs/rbac.md). deploy/kubernetes/rbac.yaml is this output for the default config.
import { ValidationError } from '../errors.js';
import { loadJobsConfig, rbacManifests } from '../rbac/index.js';
import { configFilesOf } from '../upgrade/plan.js';
import { EXIT, jobRegistry, type CommonOptions, type Io } from './common.js';

export interface RbacOptions extends CommonOptions {
  /** `<namespace>/<name>` of the worker's service account. */
  serviceAccount?: string;
  /** Name of the roles and bindings. */
  name?: string;
  members?: boolean;
}

export async function rbacCommand(o: RbacOptions, io: Io): Promise<number> {
  const registry = await jobRegistry(o);
  const sa = o.serviceAccount ?? 'ks-upgrade/ks-upgrade';
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(sa);
  if (!m?.[1] || !m[3]) {
    throw new ValidationError(`--service-account '${sa}' is not <namespace>/<name>`, {
      hint: 'e.g. --service-account ks-upgrade/ks-upgrade',
    });
  }
  const config = await loadJobsConfig(
    configFilesOf({ configFiles: o.config ?? [], ...(o.defaults === false ? { useDefaults: false } : {}) }),
    registry,
  );
  io.stdout.write(
    rbacManifests(
      config,
      registry,
      { serviceAccount: { namespace: m[1], name: m[3] }, ...(o.name ? { name: o.name } : {}) },
      { members: o.members === true },
    ),
  );
  return EXIT.ok;
}
