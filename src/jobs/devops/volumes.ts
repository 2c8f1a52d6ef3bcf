// Keeping Jenkins' data across the uninstall of DevOps v3 (reference §4.4 pre-upgrade steps 6–8):
// the Jenkins PV is set to Retain before the release (which owns the PVC) is uninstalled, then a
// PVC of the same name is created and bound to the same PV for the v4 extension to reuse.
import {
  NamespaceResource,
  PersistentVolumeClaimResource,
  PersistentVolumeResource,
  type PersistentVolume,
  type PersistentVolumeClaim,
} from '../../api/core.js';
import { KsUpgradeError } from '../../errors.js';
import { releaseHistory } from '../../helm/release.js';
import { uninstallRelease } from '../../helm/uninstall.js';
import { notYet, waitFor } from '../../util/wait.js';
import type { JobContext } from '../types.js';
import {
  ARGO_NS,
  ARGO_RELEASE,
  JENKINS_WORKLOAD,
  PVC_BIND_INTERVAL_MS,
  PVC_BIND_TIMEOUT_MS,
  SYSTEM_NS,
  SYSTEM_RELEASE,
  UNINSTALL_TIMEOUT_MS,
  WORKER_NS,
} from './constants.js';

/** The PV did not keep reclaim policy Retain, or the new PVC did not bind in time. */
export class JenkinsVolumeError extends KsUpgradeError {}

const RETAIN = 'Retain';

/** Sets a PV's reclaim policy to Retain (no write when it already is); false when the PV is gone. */
export async function retainVolume(ctx: JobContext, name: string): Promise<boolean> {
  if (!name || !(await ctx.kube.tryGet(PersistentVolumeResource, name))) return false;
  await ctx.kube.mutate(PersistentVolumeResource, name, undefined, (pv) => {
    pv.spec = { ...pv.spec, persistentVolumeReclaimPolicy: RETAIN };
  });
  return true;
}

/** Retain on the Jenkins PV, verified by reading it back (the original's check). */
export async function retainJenkinsVolume(ctx: JobContext, pv: PersistentVolume): Promise<void> {
  const name = pv.metadata.name ?? '';
  if (!(await retainVolume(ctx, name))) {
    throw new JenkinsVolumeError(`the devops-jenkins PV ${name} does not exist any more`, {
      hint: 'Jenkins data is gone with it; restore the PV from your storage backend before retrying',
    });
  }
  const policy = (await ctx.kube.get(PersistentVolumeResource, name)).spec?.persistentVolumeReclaimPolicy;
  if (policy !== RETAIN) {
    throw new JenkinsVolumeError(
      'failed to update PersistentVolumeReclaimPolicy of devops-jenkins PV to Retain',
      {
        hint: `something resets PV ${name}; set spec.persistentVolumeReclaimPolicy=Retain by hand and retry`,
      },
    );
  }
}

/**
 * Uninstalls the v3 releases `kubesphere-devops-system/devops` and `argocd/devops` from their
 * release records (waiting for their objects to go, 20 min each). A `devops` release whose chart
 * is already the v4 one (`devops…`) is left alone. Before the v3 release goes, PVs of the worker
 * namespace are kept (Retain) and that namespace's finalizers removed, as the original does.
 */
export async function uninstallV3(ctx: JobContext): Promise<string[]> {
  const done: string[] = [];
  const latest = (await releaseHistory(ctx.kube, SYSTEM_NS, SYSTEM_RELEASE))[0]?.release;
  if (latest && latest.chart.metadata.name.startsWith('devops')) {
    ctx.logger.info(`release ${SYSTEM_NS}/${SYSTEM_RELEASE} is already the v4 chart, not uninstalled`);
  } else if (latest) {
    for (const pvc of await ctx.kube.listAll(PersistentVolumeClaimResource, { namespace: WORKER_NS })) {
      await retainVolume(ctx, pvc.spec?.volumeName ?? '');
    }
    await ctx.kube.clearFinalizers(NamespaceResource, WORKER_NS);
    const result = await uninstallRelease(ctx.kube, SYSTEM_NS, SYSTEM_RELEASE, {
      wait: true,
      timeoutMs: UNINSTALL_TIMEOUT_MS,
      reporter: ctx,
    });
    if (result.found) done.push(`${SYSTEM_NS}/${SYSTEM_RELEASE}`);
    ctx.logger.info(`uninstalled ${SYSTEM_NS}/${SYSTEM_RELEASE}`, { deleted: result.deleted.length });
  }
  const argo = await uninstallRelease(ctx.kube, ARGO_NS, ARGO_RELEASE, {
    wait: true,
    timeoutMs: UNINSTALL_TIMEOUT_MS,
    reporter: ctx,
  });
  if (argo.found) {
    done.push(`${ARGO_NS}/${ARGO_RELEASE}`);
    ctx.logger.info(`uninstalled ${ARGO_NS}/${ARGO_RELEASE}`, { deleted: argo.deleted.length });
  }
  return done;
}

/** The backed-up PVC as a new object: same name, namespace and spec (volumeName included). */
function newPvcFrom(old: PersistentVolumeClaim): PersistentVolumeClaim {
  return {
    metadata: {
      name: old.metadata.name ?? '',
      namespace: old.metadata.namespace ?? SYSTEM_NS,
      labels: { app: JENKINS_WORKLOAD, 'app.kubernetes.io/managed-by': 'ks-upgrade' },
    },
    spec: structuredClone(old.spec ?? {}),
  };
}

/**
 * Re-creates the Jenkins PVC after the uninstall and binds it to the old PV: the PV's claimRef is
 * pointed at the new claim (uid and resourceVersion cleared), then the claim is awaited `Bound`
 * (poll 3 s, up to 300 s; a PVC still being deleted is awaited as long first). A PVC of that name
 * that already exists (kept by the uninstall, or created by an earlier run) is left as it is.
 */
export async function rebindJenkinsPvc(
  ctx: JobContext,
  old: PersistentVolumeClaim,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<'kept' | 'bound'> {
  const name = old.metadata.name ?? '';
  const namespace = old.metadata.namespace ?? SYSTEM_NS;
  const timeoutMs = options.timeoutMs ?? PVC_BIND_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? PVC_BIND_INTERVAL_MS;
  const existing = await ctx.kube.tryGet(PersistentVolumeClaimResource, name, namespace);
  if (existing && !existing.metadata.deletionTimestamp) {
    ctx.logger.info(`PVC ${namespace}/${name} exists, not re-created`);
    return 'kept';
  }
  if (existing) {
    // Still going away (its pods or the pvc-protection finalizer): wait, bounded like the bind.
    await waitFor(
      {
        what: `the old PVC ${namespace}/${name} to be deleted`,
        timeoutMs,
        intervalMs,
        check: async () =>
          (await ctx.kube.tryGet(PersistentVolumeClaimResource, name, namespace))
            ? notYet('still being deleted (a pod uses it, or its pvc-protection finalizer is set)')
            : true,
        hint: 'check what keeps it (pods of the old Jenkins, finalizers), then retry',
      },
      ctx,
    );
  }
  const { object: pvc } = await ctx.kube.createIfAbsent(PersistentVolumeClaimResource, newPvcFrom(old));
  const pvName = pvc.spec?.volumeName ?? '';
  if (pvName && (await ctx.kube.tryGet(PersistentVolumeResource, pvName))) {
    await ctx.kube.mutate(PersistentVolumeResource, pvName, undefined, (pv) => {
      const ref = pv.spec?.claimRef;
      if (!ref || ref.uid === pvc.metadata.uid) return;
      ref.name = name;
      ref.namespace = namespace;
      delete ref.uid;
      delete ref.resourceVersion;
    });
  }
  await waitFor(
    {
      what: `the new PVC ${namespace}/${name} to bind to PV ${pvName || '(none)'}`,
      timeoutMs,
      intervalMs,
      check: async () => {
        const phase =
          (await ctx.kube.get(PersistentVolumeClaimResource, name, namespace)).status?.phase ?? 'Pending';
        return phase === 'Bound' ? true : notYet(`the PVC is ${phase}`);
      },
      hint: `check PV ${pvName || '(none)'}: its claimRef must name PVC ${namespace}/${name} without uid (the PV controller of kube-controller-manager binds them); then retry`,
    },
    ctx,
  );
  return 'bound';
}
