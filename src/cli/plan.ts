// `ks-upgrade plan`: the dry run. The config is validated, the jobs are listed in execution order
// with why each will or will not run, and (unless --offline) each enabled job says what it would do.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { redactConfig } from '../config/index.js';
import { describeError } from '../errors.js';
import { createStreamLogger } from '../jobs/logger.js';
import { closeSharedConnections } from '../kube/connect.js';
import { formatPreflight, type ConcurrentUpgrades, type PreflightReport } from '../preflight/index.js';
import { defaultStateDir } from '../temporal/dev-server.js';
import { runningUpgrades } from '../temporal/upgrades.js';
import { checkClusterBinding } from '../upgrade/cluster-identity.js';
import type { UpgradeClusterInput } from '../upgrade/input.js';
import { buildUpgradePlan, loadUpgradeConfig, planJobActions } from '../upgrade/plan.js';
import { clusterConnection, sharedStore } from '../upgrade/runtime.js';
import { preflightUpgrade } from '../upgrade/verification.js';
import {
  EXIT,
  clusterNameNote,
  clusterTarget,
  jobRegistry,
  temporalTarget,
  upgradeInput,
  type CommonOptions,
  type Io,
} from './common.js';

export interface PlanOptions extends CommonOptions {
  offline?: boolean;
  json?: boolean;
}

export async function planCommand(o: PlanOptions, io: Io): Promise<number> {
  const registry = await jobRegistry(o);
  const cluster = await clusterTarget(o);
  const input = upgradeInput(o, cluster);
  const loaded = await loadUpgradeConfig({ ...input, allowEmpty: o.allowEmpty === true }, registry);
  const plan = buildUpgradePlan(input.cluster, loaded, registry);
  const note = clusterNameNote(cluster);
  if (note && !o.json) io.stderr.write(note);
  let preflight: PreflightReport | undefined;
  try {
    if (!o.offline) {
      preflight = await preflightUpgrade(input, {
        registry,
        concurrent: await concurrentUpgrades(o, io, input),
      });
      // First, so that it shows even when planning a job fails (on a cluster it cannot read).
      if (!o.json) io.stdout.write(`${formatPreflight(preflight)}\n`);
      const conn = await clusterConnection(input.kube);
      const store = await sharedStore(loaded.config.storage);
      // A plan writes nothing, the binding included; it only refuses a name bound elsewhere.
      await checkClusterBinding({ cluster: input.cluster, conn, store, bind: false });
      await planJobActions(plan, loaded, registry, {
        kube: conn.client,
        store,
        logger: createStreamLogger({
          level: 'warn',
          stream: io.stderr,
          ...(o.logFormat ? { format: o.logFormat } : {}),
        }),
      });
    }
  } finally {
    await closeSharedConnections();
  }
  const exit = preflight && !preflight.ok ? EXIT.failed : EXIT.ok;
  if (o.json) {
    io.stdout.write(
      `${JSON.stringify({ plan, config: redactConfig(loaded.config), ...(preflight ? { preflight } : {}) }, null, 2)}\n`,
    );
    return exit;
  }
  const storage = loaded.config.storage.s3
    ? `s3://${loaded.config.storage.s3.bucket}/${loaded.config.storage.s3.prefix}`
    : loaded.config.storage.local.path;
  io.stdout.write(
    `Plan for cluster ${plan.cluster} (config sha256 ${plan.configSha256.slice(0, 12)})\n` +
      `  config:     ${plan.configFiles.join(', ')}\n` +
      `  backups:    ${storage}${loaded.config.storage.encryption ? ' (encrypted)' : ''}\n` +
      `  gate:       ${plan.gate}\n` +
      `  validators: ksVersion ${plan.validators.ksVersion ? 'on' : 'off'}, extensionsMuseum ${plan.validators.extensionsMuseum ? 'on' : 'off'}\n\n` +
      `  #  job                    priority  runs  phases / why not\n`,
  );
  plan.jobs.forEach((j, i) => {
    const detail = j.enabled ? j.phases.join(', ') : j.reason;
    io.stdout.write(
      `  ${String(i + 1).padStart(2)} ${j.name.padEnd(22)} ${String(j.priority).padStart(8)}  ${(j.enabled ? 'yes' : 'no').padEnd(4)}  ${detail}\n`,
    );
    for (const a of j.actions ?? [])
      io.stdout.write(`       - ${a.phase}: ${a.action}${a.target ? ` ${a.target}` : ''}\n`);
  });
  if (preflight && !preflight.ok) {
    io.stderr.write(
      `\nks-upgrade: the preflight failed: fix the checks marked ✖ (or skip one knowingly: --skip-check <name> --skip-reason "<why>")\n`,
    );
  }
  return exit;
}

/**
 * The running upgrades of the cluster in Temporal: the configured service, or the embedded one
 * when it runs (a plan never starts a server of its own just to look).
 */
async function concurrentUpgrades(
  o: PlanOptions,
  io: Io,
  input: UpgradeClusterInput,
): Promise<ConcurrentUpgrades | undefined> {
  const configured = o.temporalAddress ?? process.env.TEMPORAL_ADDRESS;
  if (!configured && !existsSync(path.join(o.stateDir ?? defaultStateDir(), 'server.json'))) return undefined;
  let target: Awaited<ReturnType<typeof temporalTarget>> | undefined;
  try {
    target = await temporalTarget(o, io);
    const source = `Temporal ${target.settings.address}, namespace ${target.settings.namespace}`;
    return await runningUpgrades(target.client, input.cluster, source);
  } catch (err) {
    return { running: [], source: configured ?? 'the embedded Temporal server', error: describeError(err) };
  } finally {
    await target?.close();
  }
}
