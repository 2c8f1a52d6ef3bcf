// What every CLI command shares: options, the job registry, the Temporal connection (embedded or
// remote), the workflow input built from flags, and exit codes.
import { createHash } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { GateMode } from '../config/types.js';
import { KsUpgradeError, ValidationError, describeError } from '../errors.js';
import { registerBuiltinJobs } from '../jobs/builtin.js';
import { loadPlugins, pluginsFromEnv } from '../jobs/plugins.js';
import { defaultRegistry, type JobRegistry } from '../jobs/registry.js';
import type { Phase } from '../jobs/types.js';
import { assertValidInput, connectClient } from '../temporal/client.js';
import { temporalSettings, type TemporalSettings } from '../temporal/connection.js';
import {
  defaultStateDir,
  defaultTemporalCliPath,
  ensureEmbeddedServer,
  type DevServer,
  type EmbeddedServerUser,
} from '../temporal/dev-server.js';
import {
  SKIPPABLE_CHECKS,
  validateSkipChecks,
  type FailurePolicy,
  type KubeTargetInput,
  type UpgradeClusterInput,
} from '../upgrade/input.js';

/** Process exit codes (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The upgrade (or a phase) failed or was aborted. */
  failed: 1,
  /** Bad flags, config or input: nothing was changed. */
  usage: 2,
  /** The upgrade waits for an operator decision (status, run --detach). */
  awaitingOperator: 3,
  /** Interrupted by SIGINT (Ctrl-C); `ks-upgrade run` again resumes. */
  interrupted: 130,
  /** Stopped by SIGTERM; `ks-upgrade run` again resumes. */
  terminated: 143,
} as const;

/** Options shared by the commands that touch a cluster or a workflow. */
export interface CommonOptions {
  config?: string[];
  defaults?: boolean;
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  cluster?: string;
  temporalAddress?: string;
  namespace?: string;
  taskQueue?: string;
  stateDir?: string;
  plugin?: string[];
  gate?: GateMode;
  failurePolicy?: FailurePolicy;
  phases?: string;
  verbose?: boolean;
  /** Accept a config that enables no job (the upgrade then changes nothing). */
  allowEmpty?: boolean;
  /** `--skip-check NAME` (repeatable): failing preflight checks to go past. */
  skipCheck?: string[];
  /** `--skip-reason`: why (required with --skip-check; recorded in history). */
  skipReason?: string;
  /** `--by`: who decides (default user@host). */
  by?: string;
}

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** The registry: built-in jobs plus plugins (flags and KS_UPGRADE_PLUGINS). */
export async function jobRegistry(o: CommonOptions): Promise<JobRegistry> {
  registerBuiltinJobs(defaultRegistry);
  const wanted = [...pluginsFromEnv(), ...(o.plugin ?? [])].filter((p) => !loadedPlugins.has(p));
  for (const p of await loadPlugins(wanted, defaultRegistry)) loadedPlugins.add(p);
  return defaultRegistry;
}
const loadedPlugins = new Set<string>();

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * A kubeconfig context name as a cluster name (a DNS label): lowercased, every run of other
 * characters made one `-` (`kubernetes-admin@kubernetes` → `kubernetes-admin-kubernetes`), and a
 * hash of the whole name appended when it had to be cut to 63 characters or left nothing.
 */
export function clusterNameFromContext(context: string): string {
  const label = context
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (label !== '' && label.length <= 63) return label;
  const hash = createHash('sha256').update(context).digest('hex').slice(0, 8);
  const head = label.slice(0, 54).replace(/-+$/, '');
  return head === '' ? `context-${hash}` : `${head}-${hash}`;
}

/** The cluster a command works on: its logical name and where the worker finds it. */
export interface ClusterTarget {
  cluster: string;
  kube: KubeTargetInput;
  /** Where the name came from, for a note to the operator when it was not given. */
  source: 'flag' | 'context' | 'in-cluster' | 'fallback';
  /** The context the name came from. */
  context?: string;
}

/**
 * The logical cluster name and the kube target: `--cluster`, else (in-cluster) `host`, else the
 * kubeconfig context — `--context`, or the current context of the kubeconfig the worker will
 * read, which is then pinned in the target so that a later `kubectl config use-context` cannot
 * move a running upgrade to another cluster — else `host`. Whatever the name, the first run or
 * phase command binds it to the API server's identity (src/upgrade/cluster-identity.ts).
 */
export async function clusterTarget(o: CommonOptions): Promise<ClusterTarget> {
  if (o.cluster !== undefined && !DNS_LABEL.test(o.cluster)) {
    throw new ValidationError(`cluster name '${o.cluster}' is not a lowercase DNS label`, {
      hint: 'pass --cluster <name> (e.g. host, member-1): it names the workflow and the backup folder',
    });
  }
  if (o.context === '') {
    // Usually an unset variable (`--context "$CTX"`): the worker would use another context than named.
    throw new ValidationError('--context is empty', {
      hint: 'pass the name of a kubeconfig context, or leave --context out to use the current one',
    });
  }
  if (o.inCluster) {
    return {
      cluster: o.cluster ?? 'host',
      kube: { inCluster: true },
      source: o.cluster ? 'flag' : 'in-cluster',
    };
  }
  const file = o.kubeconfig ?? process.env.KUBECONFIG?.split(path.delimiter).find((f) => f !== '');
  const kubeconfig = file ? { kubeconfig: path.resolve(file) } : {};
  let context = o.context;
  if (context === undefined) {
    try {
      const { loadKubeConfig } = await import('../kube/connect.js');
      context = loadKubeConfig(kubeconfig).getCurrentContext() || undefined;
    } catch {
      // No usable kubeconfig: commands that need the cluster say so when they connect.
    }
  }
  const kube: KubeTargetInput = { ...kubeconfig, ...(context ? { context } : {}) };
  if (o.cluster !== undefined) return { cluster: o.cluster, kube, source: 'flag' };
  if (context === undefined) return { cluster: 'host', kube, source: 'fallback' };
  return { cluster: clusterNameFromContext(context), kube, source: 'context', context };
}

/** One line for stderr when the cluster name was derived rather than given. */
export function clusterNameNote(t: ClusterTarget): string | undefined {
  if (t.source !== 'context' || t.context === undefined) return undefined;
  return `cluster name: ${t.cluster} (from kubeconfig context '${t.context}'; --cluster sets another)\n`;
}

const PHASE_NAMES: readonly Phase[] = ['prepare-upgrade', 'pre-upgrade', 'post-upgrade', 'dynamic-upgrade'];

/** The workflow input from flags; paths are made absolute (the worker may run elsewhere). */
export function upgradeInput(
  o: CommonOptions,
  target: ClusterTarget,
  extra: Partial<UpgradeClusterInput> = {},
): UpgradeClusterInput {
  const phases = o.phases?.split(',').map((p) => p.trim()) as Phase[] | undefined;
  for (const p of phases ?? []) {
    if (!PHASE_NAMES.includes(p)) {
      throw new ValidationError(`--phases: '${p}' is not a phase`, {
        hint: `use a comma list of ${PHASE_NAMES.join(', ')}`,
      });
    }
  }
  return {
    cluster: target.cluster,
    kube: target.kube,
    configFiles: (o.config ?? []).map((f) => path.resolve(f)),
    ...(o.defaults === false ? { useDefaults: false } : {}),
    ...(o.gate ? { gate: o.gate } : {}),
    ...(o.failurePolicy ? { failurePolicy: o.failurePolicy } : {}),
    ...(phases ? { phases } : {}),
    ...skipChecksOf(o),
    ...extra,
  };
}

/** The flags of `ks-upgrade run` that shape its workflow input. */
export interface RunInputOptions extends CommonOptions {
  dryRun?: boolean;
  heartbeatTimeout?: string;
}

/**
 * The workflow input of `ks-upgrade run`, checked as the workflow checks it: bad flags end here
 * with a {@link ValidationError}, before a server starts or a workflow exists.
 */
export function runInput(o: RunInputOptions, target: ClusterTarget): UpgradeClusterInput {
  const input = upgradeInput(o, target, {
    ...(o.dryRun ? { dryRun: true } : {}),
    ...(o.heartbeatTimeout ? { tuning: { heartbeatTimeout: o.heartbeatTimeout } } : {}),
    // The workflow's planning step loads the config again from the input, so it carries this.
    ...(o.allowEmpty ? { allowEmpty: true } : {}),
  });
  assertValidInput(input);
  return input;
}

/** `--skip-check` / `--skip-reason` / `--by` as the input's skipChecks (who and why recorded). */
export function skipChecksOf(o: CommonOptions): Pick<UpgradeClusterInput, 'skipChecks'> {
  const names = o.skipCheck ?? [];
  if (names.length === 0) return {};
  const problems = validateSkipChecks(
    names.map((name) => ({ name, by: o.by ?? operatorIdentity(), reason: o.skipReason ?? '' })),
  );
  if (!o.skipReason?.trim()) {
    throw new ValidationError('--skip-check needs --skip-reason "<why>"', {
      hint: 'the reason is recorded with who skipped the check, in the workflow history and the report',
    });
  }
  if (problems.length > 0) {
    throw new ValidationError(`--skip-check: ${problems.join('; ')}`, {
      hint: `the checks are ${SKIPPABLE_CHECKS.join(', ')}`,
    });
  }
  const by = o.by ?? operatorIdentity();
  return { skipChecks: [...new Set(names)].map((name) => ({ name, by, reason: o.skipReason ?? '' })) };
}

/** `user@host`, recorded with operator decisions. */
export function operatorIdentity(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `unknown@${hostname()}`;
  }
}

/** A Temporal client: the service at --temporal-address / TEMPORAL_ADDRESS, or the embedded dev server. */
export interface TemporalTarget {
  client: Client;
  settings: TemporalSettings;
  /** Set in embedded mode. */
  embedded?: {
    server: DevServer;
    /** This command started the server (it was not running). */
    started: boolean;
    stateDir: string;
    /** The other commands using the server now. */
    otherUsers(): EmbeddedServerUser[];
    /** Releases the server without waiting, for a process that exits at once (see `EmbeddedServerLease`). */
    releaseNow(): void;
  };
  /** Closes the connection and, in embedded mode, releases the server (the last user stops it). */
  close(): Promise<void>;
}

/** What `users/<pid>` says of a `ks-upgrade run`: the command that runs the upgrade's worker. */
export const RUN_COMMAND = 'ks-upgrade run';

/**
 * The Temporal service of a command. `command` names it in the embedded server's list of users
 * (`status` tells from it whether a `run`, and so a worker, is attached).
 */
export async function temporalTarget(
  o: CommonOptions,
  io: Io,
  startIfNeeded = true,
  command = 'ks-upgrade',
): Promise<TemporalTarget> {
  const s = temporalSettings({
    ...(o.temporalAddress ? { address: o.temporalAddress } : {}),
    ...(o.namespace ? { namespace: o.namespace } : {}),
    ...(o.taskQueue ? { taskQueue: o.taskQueue } : {}),
  });
  if (s.address) {
    const settings: TemporalSettings = { ...s, address: s.address };
    const { client, connection } = await connectClient(settings);
    return { client, settings, close: () => connection.close() };
  }
  if (!startIfNeeded) {
    throw new ValidationError('no Temporal service: pass --temporal-address or set TEMPORAL_ADDRESS');
  }
  const stateDir = o.stateDir ?? defaultStateDir();
  const lease = await ensureEmbeddedServer(stateDir, defaultTemporalCliPath(), command);
  const { server, started } = lease;
  if (started) io.stderr.write(`started the embedded Temporal dev server (state: ${stateDir}/temporal.db)\n`);
  const settings: TemporalSettings = { ...s, address: server.address, namespace: 'default' };
  try {
    const { client, connection } = await connectClient(settings);
    return {
      client,
      settings,
      embedded: {
        server,
        started,
        stateDir,
        otherUsers: () => lease.otherUsers(),
        releaseNow: () => {
          lease.releaseNow();
        },
      },
      close: async () => {
        await connection.close();
        await lease.release();
      },
    };
  } catch (err) {
    await lease.release();
    throw err;
  }
}

/** Prints an error the way operators need it (what, then how to fix) and returns the exit code. */
export function reportError(err: unknown, io: Io): number {
  io.stderr.write(`ks-upgrade: ${describeError(err)}\n`);
  if (err instanceof ValidationError) return EXIT.usage;
  if (err instanceof KsUpgradeError) return EXIT.failed;
  if (process.env.KS_UPGRADE_DEBUG && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
  return EXIT.failed;
}
