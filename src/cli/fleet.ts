// `ks-upgrade fleet plan|run|status|approve|pause|resume|resolve|cancel`. The fleet file is
// validated before anything starts; on the embedded default `run` hosts the worker itself.
import {
  WorkflowIdConflictPolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ValidationError } from '../errors.js';
import { clusterUpgradeInput, fleetWorkflowId, type FleetInput } from '../fleet/input.js';
import { loadFleetFile } from '../fleet/load.js';
import { describeOccurrence, nextOccurrence } from '../fleet/window.js';
import { closeSharedConnections } from '../kube/connect.js';
import { createUpgradeWorker, installRuntime } from '../temporal/worker.js';
import { buildUpgradePlan, loadUpgradeConfig } from '../upgrade/plan.js';
import {
  approveWaveUpdate,
  cancelFleetUpdate,
  fleetProgressQuery,
  pauseUpdate,
  resolveClusterUpdate,
  resumeUpdate,
  type FleetProgress,
  type FleetResult,
} from '../../workflows/fleet/messages.js';
import { UpgradeFleetKey, UpgradeStatusKey } from '../../workflows/search-attributes.js';
import {
  EXIT,
  jobRegistry,
  operatorIdentity,
  temporalTarget,
  type CommonOptions,
  type Io,
  type TemporalTarget,
} from './common.js';
import { renderFleet, exitCodeOf } from './fleet-status.js';

export interface FleetOptions extends CommonOptions {
  file?: string;
  reason?: string;
  by?: string;
}

export interface FleetRunOptions extends FleetOptions {
  detach?: boolean;
  uiUrl?: string;
}

export interface FleetStatusOptions extends CommonOptions {
  json?: boolean;
  watch?: boolean;
  interval?: string;
}

async function loadFleet(o: FleetOptions): Promise<FleetInput> {
  if (!o.file)
    throw new ValidationError('--file is required', { hint: 'pass the fleet file: -f fleet.yaml' });
  return loadFleetFile(o.file, o.kubeconfig ? { kubeconfig: o.kubeconfig } : {});
}

/** Each cluster's plan from its config files, as far as they are readable here. */
async function clusterPlans(
  input: FleetInput,
  o: CommonOptions,
): Promise<Map<string, { jobs: string[]; gate: string } | { error: string }>> {
  const registry = await jobRegistry(o);
  const plans = new Map<string, { jobs: string[]; gate: string } | { error: string }>();
  for (const c of input.clusters) {
    const ci = clusterUpgradeInput(input, c);
    try {
      const plan = buildUpgradePlan(c.name, await loadUpgradeConfig(ci, registry), registry);
      plans.set(c.name, { jobs: plan.jobs.filter((j) => j.enabled).map((j) => j.name), gate: plan.gate });
    } catch (err) {
      plans.set(c.name, { error: err instanceof Error ? err.message : String(err) });
    }
  }
  return plans;
}

export async function fleetPlanCommand(o: FleetOptions & { json?: boolean }, io: Io): Promise<number> {
  const input = await loadFleet(o);
  const plans = await clusterPlans(input, o);
  if (o.json) {
    io.stdout.write(`${JSON.stringify({ input, plans: Object.fromEntries(plans) }, null, 2)}\n`);
    return EXIT.ok;
  }
  const budget =
    'count' in input.failureBudget ? `${input.failureBudget.count}` : `${input.failureBudget.percent}%`;
  const out: string[] = [
    `Fleet ${input.fleet} (${o.file ?? ''}): ${input.clusters.length} clusters in ${input.waves.length} waves, ` +
      `at most ${input.maxConcurrency} at once, failure budget ${budget}. Nothing is changed by this plan.`,
    '',
  ];
  const now = Date.now();
  for (const [name, w] of Object.entries(input.windows ?? {})) {
    const next = nextOccurrence(w, now);
    out.push(
      `window ${name}: ${w.days?.join(',') ?? 'every day'} ${w.start}–${w.end} ${w.timeZone}; ` +
        (next
          ? `${now >= next.opensAt ? 'open now' : 'next'}: ${describeOccurrence(next, w.timeZone)}`
          : 'never opens again'),
    );
  }
  if (input.windows) out.push('');
  let order = 0;
  input.waves.forEach((wave, i) => {
    out.push(
      `wave ${i + 1}: ${wave.name}${wave.approval ? '  (waits for: ks-upgrade fleet approve ' + input.fleet + ' ' + wave.name + ')' : ''}`,
    );
    for (const name of wave.clusters) {
      const c = input.clusters.find((x) => x.name === name);
      if (!c) continue;
      const plan = plans.get(name);
      const reach = c.taskQueue ? `worker on ${c.taskQueue}` : `context ${c.context ?? '(current)'}`;
      const window = c.window ?? input.window;
      out.push(
        `  ${String(++order).padStart(3)}. ${name.padEnd(24)} ${c.role.padEnd(6)} ${reach}${window ? `, window ${window}` : ''}`,
      );
      if (plan && 'jobs' in plan)
        out.push(`       jobs: ${plan.jobs.join(', ') || '(none enabled)'}; gate ${plan.gate}`);
      else if (plan) out.push(`       jobs: not planned here: ${plan.error.split('\n')[0] ?? ''}`);
      out.push(
        `       then: wave gate (ks-core v4, ks-apiserver rollout, InstallPlans, no v3 leftovers)` +
          (c.role === 'member' ? ', Schedulable mark removed on the host' : '') +
          (c.gateways === undefined || c.gateways === 'auto'
            ? ', its backed-up gateways one by one'
            : c.gateways.length
              ? `, gateways ${c.gateways.join(', ')} one by one`
              : ''),
      );
    }
  });
  io.stdout.write(`${out.join('\n')}\n`);
  return EXIT.ok;
}

/** The fleet's workflow: `ks-upgrade-fleet-<name>`, or the newest run a Schedule started. */
export async function findFleet(client: Client, name: string): Promise<WorkflowHandle> {
  const direct = client.workflow.getHandle(fleetWorkflowId(name));
  try {
    if ((await direct.describe()).status.name === 'RUNNING') return direct;
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  let newest: { id: string; start: number; running: boolean } | undefined;
  for await (const w of client.workflow.list({
    query: `WorkflowType = 'upgradeFleet' AND UpgradeFleet = '${name.replace(/'/g, '')}'`,
  })) {
    const running = w.status.name === 'RUNNING';
    const start = w.startTime.getTime();
    if (!newest || (running && !newest.running) || (running === newest.running && start > newest.start)) {
      newest = { id: w.workflowId, start, running };
    }
  }
  if (newest) return client.workflow.getHandle(newest.id);
  try {
    await direct.describe();
    return direct;
  } catch {
    throw new ValidationError(`no fleet '${name}' (workflow ${fleetWorkflowId(name)})`, {
      hint: 'check the name, and that --temporal-address / --state-dir point where the fleet runs',
    });
  }
}

const QUERY_TIMEOUT_MS = 15_000;

/** The fleet's progress, or — closed — its outcome; a query no worker answers fails clearly. */
async function fleetView(
  handle: WorkflowHandle,
): Promise<{ progress?: FleetProgress; closed?: { status: string; result?: FleetResult; error?: string } }> {
  const d = await handle.describe();
  const queried = Promise.race([
    handle.query(fleetProgressQuery).then((p) => ({ p })),
    new Promise<{ p?: undefined }>((r) =>
      setTimeout(() => {
        r({});
      }, QUERY_TIMEOUT_MS),
    ),
  ]).catch(() => ({ p: undefined }));
  if (d.status.name === 'RUNNING') {
    const { p } = await queried;
    if (!p) {
      throw new ValidationError(
        `fleet ${handle.workflowId} does not answer: no worker serves its task queue`,
        {
          hint: `start a worker (ks-upgrade worker --task-queue ${d.taskQueue}), or run \`ks-upgrade fleet run -f …\` again: it resumes the fleet`,
        },
      );
    }
    return { progress: p };
  }
  const closed: { status: string; result?: FleetResult; error?: string } = { status: d.status.name };
  await handle.result().then(
    (r: unknown) => (closed.result = r as FleetResult),
    (err: unknown) => {
      const cause = (err as { cause?: { message?: string } }).cause;
      closed.error = cause?.message ?? (err instanceof Error ? err.message : String(err));
    },
  );
  const { p } = await Promise.race([
    queried,
    new Promise<{ p?: undefined }>((r) =>
      setTimeout(() => {
        r({});
      }, 3000),
    ),
  ]);
  return { ...(p ? { progress: p } : {}), closed };
}

async function printView(handle: WorkflowHandle, io: Io, json: boolean, live: boolean): Promise<number> {
  const view = await fleetView(handle);
  if (json) {
    io.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
  } else {
    io.stdout.write(renderFleet(view, handle.workflowId, { clear: live && Boolean(io.stdout.isTTY) }));
  }
  return exitCodeOf(view);
}

/** Re-renders until the fleet closes; returns the exit code of the last view. */
async function watchFleet(
  handle: WorkflowHandle,
  io: Io,
  intervalMs: number,
  json: boolean,
): Promise<number> {
  let last = '';
  for (;;) {
    const view = await fleetView(handle);
    const text = json
      ? `${JSON.stringify(view)}\n`
      : renderFleet(view, handle.workflowId, { clear: Boolean(io.stdout.isTTY) });
    if (text !== last) io.stdout.write(text);
    last = text;
    if (view.closed) return exitCodeOf(view);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function fleetStatusCommand(name: string, o: FleetStatusOptions, io: Io): Promise<number> {
  const target = await temporalTarget(o, io);
  try {
    const handle = await findFleet(target.client, name);
    if (o.watch)
      return await watchFleet(handle, io, Math.max(0.5, Number(o.interval ?? 2)) * 1000, Boolean(o.json));
    return await printView(handle, io, Boolean(o.json), false);
  } finally {
    await target.close();
  }
}

export async function fleetUpdateCommand(
  name: string,
  verb: 'approve' | 'pause' | 'resume' | 'cancel' | 'resolve',
  o: FleetOptions,
  io: Io,
  extra: { wave?: string; cluster?: string; decision?: string } = {},
): Promise<number> {
  if (!o.reason?.trim())
    throw new ValidationError('--reason is required', { hint: 'say why: it is recorded with the decision' });
  if (verb === 'resolve' && !['retry', 'skip', 'fail'].includes(extra.decision ?? '')) {
    throw new ValidationError(`unknown decision '${extra.decision ?? ''}'`, {
      hint: 'use retry, skip or fail',
    });
  }
  const note = { reason: o.reason, by: o.by ?? operatorIdentity() };
  const target = await temporalTarget(o, io);
  try {
    const handle = await findFleet(target.client, name);
    // An update that meets the fleet just as it continues as new is retried on the new run.
    for (let attempt = 1; ; attempt++) {
      try {
        switch (verb) {
          case 'approve':
            await handle.executeUpdate(approveWaveUpdate, { args: [{ ...note, wave: extra.wave ?? '' }] });
            break;
          case 'pause':
            await handle.executeUpdate(pauseUpdate, { args: [note] });
            break;
          case 'resume':
            await handle.executeUpdate(resumeUpdate, { args: [note] });
            break;
          case 'cancel':
            await handle.executeUpdate(cancelFleetUpdate, { args: [note] });
            break;
          case 'resolve':
            await handle.executeUpdate(resolveClusterUpdate, {
              args: [
                {
                  ...note,
                  cluster: extra.cluster ?? '',
                  action: extra.decision as 'retry' | 'skip' | 'fail',
                },
              ],
            });
            break;
        }
        break;
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) {
          const why = err.cause instanceof Error ? err.cause.message : err.message;
          io.stderr.write(`ks-upgrade: the fleet refused '${verb}': ${why}\n`);
          return EXIT.usage;
        }
        if (!/completed|not found|continued/i.test(err instanceof Error ? err.message : '')) throw err;
        const state = (await handle.describe()).status.name;
        if (state !== 'RUNNING') {
          throw new ValidationError(`fleet ${name} has already ended (${state}): nothing to ${verb}`, {
            hint: `see ks-upgrade fleet status ${name}`,
          });
        }
        if (attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    io.stdout.write(
      `${verb}${extra.wave ? ` ${extra.wave}` : ''}${extra.cluster ? ` ${extra.cluster} ${extra.decision ?? ''}` : ''} sent to fleet ${name} (${note.by}: ${note.reason})\n`,
    );
    return EXIT.ok;
  } finally {
    await target.close();
  }
}

/** Starts the fleet, or attaches to the one running under its workflow ID. */
export async function startFleet(
  client: Client,
  input: FleetInput,
  taskQueue: string,
): Promise<{ handle: WorkflowHandle; attached: boolean }> {
  const workflowId = fleetWorkflowId(input.fleet);
  const existing = client.workflow.getHandle(workflowId);
  const attached = await existing.describe().then(
    (d) => d.status.name === 'RUNNING',
    () => false,
  );
  const handle = await client.workflow.start('upgradeFleet', {
    taskQueue,
    workflowId,
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    typedSearchAttributes: [
      { key: UpgradeFleetKey, value: input.fleet },
      { key: UpgradeStatusKey, value: 'Running' },
    ],
    staticSummary: `Upgrade the KubeSphere fleet ${input.fleet}: host first, then ${input.waves.length - 1} waves`,
  });
  return { handle, attached };
}

export async function fleetRunCommand(o: FleetRunOptions, io: Io): Promise<number> {
  const input = await loadFleet(o);
  const registry = await jobRegistry(o);
  const remote = Boolean(o.temporalAddress ?? process.env.TEMPORAL_ADDRESS);
  // Each cluster's config is checked here too, before anything starts — all of them on the embedded
  // default (the worker is this process), the ones readable here with a remote service.
  const problems: string[] = [];
  for (const [name, plan] of await clusterPlans(input, o)) {
    if (!('error' in plan)) continue;
    if (remote && /file not found/.test(plan.error)) continue;
    problems.push(`cluster ${name}: ${plan.error}`);
  }
  if (problems.length > 0) {
    throw new ValidationError(`the fleet's cluster configs have problems:\n${problems.join('\n')}`, {
      hint: 'fix each config file named above, then run again',
    });
  }
  if (o.detach && !remote) {
    throw new ValidationError('--detach needs a Temporal service with its own workers', {
      hint: 'pass --temporal-address (the embedded default runs its worker inside this process)',
    });
  }
  const target: TemporalTarget = await temporalTarget(o, io);
  let native: NativeConnection | undefined;
  let worker: Awaited<ReturnType<typeof createUpgradeWorker>> | undefined;
  let workerRun: Promise<void> | undefined;
  try {
    if (target.embedded) {
      installRuntime({ logLevel: o.verbose ? 'INFO' : 'ERROR' });
      native = await NativeConnection.connect({ address: target.settings.address });
      worker = await createUpgradeWorker({
        connection: native,
        namespace: target.settings.namespace,
        taskQueue: target.settings.taskQueue,
        registry,
      });
      workerRun = worker.run();
      for (const c of input.clusters.filter((x) => x.taskQueue)) {
        io.stderr.write(
          `cluster ${c.name} runs on task queue ${c.taskQueue ?? ''}: start its worker with ` +
            `ks-upgrade worker --cluster ${c.name} --temporal-address ${target.settings.address}\n`,
        );
      }
    }
    const { handle, attached } = await startFleet(target.client, input, target.settings.taskQueue);
    const ui = o.uiUrl ?? target.embedded?.server.uiUrl ?? process.env.TEMPORAL_UI_URL;
    io.stdout.write(
      `${attached ? 'attached to the running' : 'started the'} fleet ${input.fleet} (workflow ${handle.workflowId})\n` +
        (ui
          ? `Temporal UI: ${ui}/namespaces/${target.settings.namespace}/workflows/${handle.workflowId}\n`
          : '') +
        `status: ks-upgrade fleet status ${input.fleet} --watch\n`,
    );
    if (o.detach) return EXIT.ok;
    const watching = watchFleet(handle, io, 2000, false);
    // The worker stops on Ctrl-C (the runtime's signal handling): the fleet waits, durable, for the next run.
    return await (workerRun
      ? Promise.race([
          watching,
          workerRun.then(() => {
            io.stderr.write('\ninterrupted: run the same command again to resume the fleet\n');
            return EXIT.interrupted;
          }),
        ])
      : watching);
  } finally {
    if (worker && worker.getState() === 'RUNNING') worker.shutdown();
    await workerRun?.catch(() => undefined);
    await native?.close();
    await target.close();
    await closeSharedConnections();
  }
}
