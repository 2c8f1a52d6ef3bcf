// `ks-upgrade fleet schedule create|list|describe|delete|trigger`: the fleet on a Temporal
// Schedule — the maintenance window as Temporal keeps it: a cron or calendar spec in a time zone,
// overlap skip (one fleet run at a time), a catch-up window for when the service was down,
// pause-on-failure, a note. Schedules need a Temporal service that keeps running, with workers.
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type CalendarSpec,
  type ScheduleSpec,
} from '@temporalio/client';
import { ValidationError } from '../errors.js';
import { fleetWorkflowId } from '../fleet/input.js';
import { loadFleetFile } from '../fleet/load.js';
import { isTimeZone } from '../fleet/window.js';
import { UpgradeFleetKey } from '../../workflows/search-attributes.js';
import { EXIT, temporalTarget, type CommonOptions, type Io } from './common.js';

export interface ScheduleCreateOptions extends CommonOptions {
  file?: string;
  id?: string;
  cron?: string[];
  calendar?: string[];
  timeZone?: string;
  catchupWindow?: string;
  pauseOnFailure?: boolean;
  note?: string;
  paused?: boolean;
}

function needService(o: CommonOptions): void {
  if (!(o.temporalAddress ?? process.env.TEMPORAL_ADDRESS)) {
    throw new ValidationError('schedules need a Temporal service that keeps running, with workers', {
      hint: 'pass --temporal-address (or set TEMPORAL_ADDRESS); the embedded server stops with the command',
    });
  }
}

function specOf(o: ScheduleCreateOptions): ScheduleSpec {
  const calendars = (o.calendar ?? []).map((text): CalendarSpec => {
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
      return v;
    } catch (err) {
      throw new ValidationError(`--calendar ${text}: ${err instanceof Error ? err.message : String(err)}`, {
        hint: 'give a JSON object such as \'{"dayOfWeek":"SATURDAY","hour":1}\'',
      });
    }
  });
  if (calendars.length === 0 && (o.cron ?? []).length === 0) {
    throw new ValidationError('the schedule needs a spec', {
      hint: 'pass --cron "0 1 * * 6" or --calendar \'{"dayOfWeek":"SATURDAY","hour":1}\' (repeatable)',
    });
  }
  if (o.timeZone && !isTimeZone(o.timeZone)) {
    throw new ValidationError(`--time-zone: unknown time zone '${o.timeZone}'`, {
      hint: 'use an IANA name such as Europe/Berlin',
    });
  }
  return {
    ...(calendars.length ? { calendars } : {}),
    ...(o.cron?.length ? { cronExpressions: o.cron } : {}),
    ...(o.timeZone ? { timezone: o.timeZone } : {}),
  };
}

export async function scheduleCreateCommand(o: ScheduleCreateOptions, io: Io): Promise<number> {
  needService(o);
  if (!o.file)
    throw new ValidationError('--file is required', { hint: 'pass the fleet file: -f fleet.yaml' });
  const input = await loadFleetFile(o.file, o.kubeconfig ? { kubeconfig: o.kubeconfig } : {});
  const spec = specOf(o);
  const target = await temporalTarget(o, io, false);
  try {
    const scheduleId = o.id ?? fleetWorkflowId(input.fleet);
    const handle = await target.client.schedule.create({
      scheduleId,
      spec,
      action: {
        type: 'startWorkflow',
        workflowType: 'upgradeFleet',
        // Temporal appends the scheduled time: each run is ks-upgrade-fleet-<fleet>-<time>.
        workflowId: fleetWorkflowId(input.fleet),
        taskQueue: target.settings.taskQueue,
        args: [input],
        typedSearchAttributes: [{ key: UpgradeFleetKey, value: input.fleet }],
        staticSummary: `Scheduled upgrade of the KubeSphere fleet ${input.fleet}`,
      },
      policies: {
        // One fleet run at a time: a run still in its window is never doubled by the next trigger.
        overlap: ScheduleOverlapPolicy.SKIP,
        catchupWindow: o.catchupWindow ?? '1h',
        pauseOnFailure: Boolean(o.pauseOnFailure),
      },
      typedSearchAttributes: [{ key: UpgradeFleetKey, value: input.fleet }],
      memo: { fleetFile: input.source ?? o.file },
      state: { ...(o.note ? { note: o.note } : {}), paused: Boolean(o.paused) },
    });
    const d = await handle.describe();
    io.stdout.write(
      `schedule ${scheduleId} created for fleet ${input.fleet}; next runs: ${
        d.info.nextActionTimes
          .slice(0, 3)
          .map((t) => t.toISOString())
          .join(', ') || '(none)'
      }\n`,
    );
    return EXIT.ok;
  } finally {
    await target.close();
  }
}

export async function scheduleCommand(
  verb: 'list' | 'describe' | 'delete' | 'trigger',
  id: string,
  o: CommonOptions,
  io: Io,
): Promise<number> {
  needService(o);
  const target = await temporalTarget(o, io, false);
  try {
    if (verb === 'list') {
      for await (const s of target.client.schedule.list()) {
        if (s.action?.type !== 'startWorkflow' || s.action.workflowType !== 'upgradeFleet') continue;
        io.stdout.write(
          `${s.scheduleId.padEnd(40)} ${s.state.paused ? 'paused ' : 'active '} next ${s.info.nextActionTimes[0]?.toISOString() ?? '-'}  last ${s.info.recentActions.at(-1)?.action.workflow.workflowId ?? '-'}${s.state.note ? `  (${s.state.note})` : ''}\n`,
        );
      }
      return EXIT.ok;
    }
    const handle = target.client.schedule.getHandle(id);
    try {
      if (verb === 'delete') {
        await handle.delete();
        io.stdout.write(`schedule ${id} deleted (a fleet run in progress goes on)\n`);
      } else if (verb === 'trigger') {
        await handle.trigger(ScheduleOverlapPolicy.SKIP);
        io.stdout.write(`schedule ${id} triggered (skipped if a fleet run is in progress)\n`);
      } else {
        const d = await handle.describe();
        const spec = d.spec;
        io.stdout.write(
          [
            `schedule ${id}: ${d.state.paused ? 'paused' : 'active'}${d.state.note ? ` — ${d.state.note}` : ''}`,
            `  spec: ${JSON.stringify({ calendars: spec.calendars, intervals: spec.intervals, timezone: spec.timezone })}`,
            `  policies: overlap ${d.policies.overlap}, catch-up window ${d.policies.catchupWindow / 1000}s, pause on failure ${d.policies.pauseOnFailure}`,
            `  fleet file: ${typeof d.memo?.fleetFile === 'string' ? d.memo.fleetFile : '?'}`,
            `  runs: ${d.info.numActionsTaken} taken, ${d.info.numActionsSkippedOverlap} skipped (overlap), ${d.info.numActionsMissedCatchupWindow} missed (catch-up window)`,
            ...d.info.recentActions.map(
              (a) => `  ran ${a.takenAt.toISOString()}: ${a.action.workflow.workflowId}`,
            ),
            ...d.info.runningActions.map((a) => `  running: ${a.workflow.workflowId}`),
            `  next: ${
              d.info.nextActionTimes
                .slice(0, 5)
                .map((t) => t.toISOString())
                .join(', ') || '-'
            }`,
          ].join('\n') + '\n',
        );
      }
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) {
        throw new ValidationError(`no schedule '${id}'`, { hint: 'see ks-upgrade fleet schedule list' });
      }
      throw err;
    }
    return EXIT.ok;
  } finally {
    await target.close();
  }
}
