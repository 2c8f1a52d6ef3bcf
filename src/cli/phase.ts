// `ks-upgrade prepare-upgrade|pre-upgrade|post-upgrade|dynamic-upgrade|rollback`: one phase, in
// process, without Temporal — the original tool's commands (for Helm hook Jobs and debugging).
import { createJobContext } from '../jobs/context.js';
import { createStreamLogger } from '../jobs/logger.js';
import { JobPhaseError, instantiateJobs, runPhase } from '../jobs/runner.js';
import type { Phase } from '../jobs/types.js';
import { closeSharedConnections } from '../kube/connect.js';
import { checkKsVersion, waitForMuseumSync } from '../upgrade/checks.js';
import { checkClusterBinding } from '../upgrade/cluster-identity.js';
import { loadUpgradeConfig } from '../upgrade/plan.js';
import { clusterConnection, sharedStore } from '../upgrade/runtime.js';
import {
  EXIT,
  clusterNameNote,
  clusterTarget,
  jobRegistry,
  upgradeInput,
  type CommonOptions,
  type Io,
} from './common.js';

export async function phaseCommand(phase: Phase, o: CommonOptions, io: Io): Promise<number> {
  const registry = await jobRegistry(o);
  const cluster = await clusterTarget(o);
  const input = upgradeInput(o, cluster);
  const logger = createStreamLogger({ level: o.verbose ? 'debug' : 'info', stream: io.stderr });
  const loaded = await loadUpgradeConfig({ ...input, allowEmpty: o.allowEmpty === true }, registry);
  const jobs = instantiateJobs(loaded.config, registry);
  const note = clusterNameNote(cluster);
  if (note) io.stderr.write(note);
  try {
    const conn = await clusterConnection(input.kube);
    const store = await sharedStore(loaded.config.storage);
    // Backups go under <cluster>/: never another cluster's folder.
    await checkClusterBinding({ cluster: input.cluster, conn, store, bind: true });
    const v = loaded.config.validator;
    // The original's validators, per phase: a v4 ks-core skips prepare/pre; post waits for the museum.
    if (
      (phase === 'prepare-upgrade' || phase === 'pre-upgrade' || phase === 'post-upgrade') &&
      v.ksVersion.enabled
    ) {
      const res = await checkKsVersion(conn.client);
      if (!res.ok) {
        io.stdout.write(`[Validator] ${phase} skipped: ${res.reason}\n`);
        return EXIT.ok;
      }
    }
    if (phase === 'post-upgrade' && v.extensionsMuseum.enabled)
      await waitForMuseumSync(conn.client, v.extensionsMuseum);
    const results = await runPhase(phase, jobs, (j, p) =>
      createJobContext({
        job: j.name,
        phase: p,
        cluster: { name: input.cluster },
        kube: conn.client,
        store,
        config: j.config,
        logger,
      }),
    );
    for (const r of results) {
      io.stdout.write(`[Job] ${r.name} ${phase}: ${r.outcome}${r.reason ? ` (${r.reason})` : ''}\n`);
    }
    return EXIT.ok;
  } catch (err) {
    if (err instanceof JobPhaseError) {
      io.stderr.write(`${err.message}\n  fix: ${err.hint ?? ''}\n`);
      return EXIT.failed;
    }
    throw err;
  } finally {
    await closeSharedConnections();
  }
}
