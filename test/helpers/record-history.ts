// Records the history of a representative upgrade (gate, a failed step, an operator retry, all
// phases) for the replay test (test/e2e/replay.test.ts). After a deliberate, versioned workflow
// change, refresh the committed fixture with: KS_RECORD_HISTORY=1 npm test -- test/e2e/replay.test.ts
// CommonJS module: its namespace comes as the default export under ESM.
import proto from '@temporalio/proto';
import { ConfigMapResource } from '../../src/api/core.js';
import { resolveSoon } from '../../src/cli/operate.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { coreUpgradedSignal } from '../../workflows/messages.js';
import { demoRegistry } from '../jobs/demo.js';
import { devClusterConnection } from './kube.js';
import { FAST_RETRY, demoSetup, startWorker, temporalClients, waitForProgress } from './upgrade.js';

const History = proto.temporal.api.history.v1.History;
type IHistory = proto.temporal.api.history.v1.IHistory;

/** Runs the upgrade; returns its history. */
export async function recordRepresentativeHistory(): Promise<IHistory> {
  const conn = await devClusterConnection();
  const { client, connection, native } = await temporalClients();
  const { worker, run, taskQueue } = await startWorker(native, demoRegistry());
  try {
    const s = await demoSetup(conn.client, { jobSettings: FAST_RETRY });
    await conn.client.create(ConfigMapResource, {
      metadata: { name: 'fail-beta-post-upgrade', namespace: s.namespace },
    });
    const { handle } = await startUpgrade(
      client,
      {
        ...s.input,
        gate: 'signal',
        phases: ['prepare-upgrade', 'pre-upgrade', 'post-upgrade', 'dynamic-upgrade'],
      },
      taskQueue,
    );
    await waitForProgress(handle, (p) => p.status === 'AwaitingCoreUpgrade');
    await handle.signal(coreUpgradedSignal, { by: 'recorder' });
    await waitForProgress(handle, (p) => p.status === 'AwaitingOperator');
    await conn.client.delete(ConfigMapResource, 'fail-beta-post-upgrade', s.namespace);
    await resolveSoon(handle, { action: 'retry', reason: 'fixed', by: 'recorder' });
    await handle.result();
    return await handle.fetchHistory();
  } finally {
    worker.shutdown();
    await run;
    conn.close();
    await connection.close();
    await native.close();
  }
}

/**
 * A history as JSON through @temporalio/proto's own codec (longs and bytes as strings). The SDK's
 * historyToJSON/historyFromJSON fail here ("type must be a Type") because npm installs two copies
 * of protobufjs 8 side by side; this stays within one.
 */
export function historyToJson(history: IHistory): string {
  return JSON.stringify(
    History.toObject(History.fromObject(history), { longs: String, bytes: String, enums: Number }),
  );
}

/** The inverse of {@link historyToJson}. */
export function historyFromJson(json: string): IHistory {
  return History.fromObject(JSON.parse(json) as Record<string, unknown>);
}

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const DURATION = /^(\d+)(?:\.(\d{1,9}))?s$/;

/**
 * A history as `temporal workflow show --output json` writes it (proto3 JSON: timestamps and
 * durations as strings), for histories captured from a live server. The SDK's historyFromJSON would
 * do this but fails on the two protobufjs copies (see {@link historyToJson}).
 */
export function historyFromCliJson(json: string): IHistory {
  // By field name, so that a payload's base64 text is never taken for a time ("123s").
  const fix = (v: unknown, key = ''): unknown => {
    if (Array.isArray(v)) return v.map((x) => fix(x, key));
    if (v !== null && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fix(x, k)]));
    if (typeof v !== 'string') return v;
    if (/Time$/.test(key) && TIMESTAMP.test(v)) {
      const ms = Date.parse(v);
      const frac = /\.(\d+)Z$/.exec(v)?.[1] ?? '';
      return { seconds: String(Math.floor(ms / 1000)), nanos: Number(frac.padEnd(9, '0').slice(0, 9)) };
    }
    const d = /(Timeout|Interval|Backoff|Duration|Delay)$/.test(key) ? DURATION.exec(v) : null;
    if (d) return { seconds: d[1], nanos: Number((d[2] ?? '').padEnd(9, '0')) };
    return v;
  };
  return History.fromObject(fix(JSON.parse(json)) as Record<string, unknown>);
}

type JsonEvent = Record<string, unknown> & { eventId: string; eventType: number | string };

/**
 * The history a worker makes when a query let it apply a workflow task's events before the task
 * itself (SDK 1.24 core): each update accepted in a workflow task of its own is moved into the task
 * before it, as if it had arrived while that task was pending. Event ids and every reference to one
 * (`…EventId`) are renumbered. Input and output in the form of {@link historyToJson}.
 */
export function withUpdatesInPreviousTask(json: string): { json: string; moved: number } {
  const { events } = JSON.parse(json) as { events: JsonEvent[] };
  const type = (e: JsonEvent | undefined): number => Number(e?.eventType);
  // EventType numbers of temporal.api.enums.v1.EventType.
  const [SCHEDULED, STARTED, COMPLETED, ACCEPTED] = [5, 6, 7, 41];
  const drop = new Map<string, string>();
  const resequence = new Map<string, string>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as JsonEvent;
    if (type(e) === ACCEPTED && type(events[i - 1]) === COMPLETED && type(events[i - 2]) === STARTED) {
      const own = events[i - 3] as JsonEvent;
      const previous = events
        .slice(0, i - 3)
        .reverse()
        .find((x) => type(x) === SCHEDULED);
      const from = previous ? events.indexOf(previous) : -1;
      const task = events.slice(from, from + 3);
      if (type(own) === SCHEDULED && previous && type(task[1]) === STARTED && type(task[2]) === COMPLETED) {
        // References to the dropped task (e.g. workflowTaskCompletedEventId) now mean the earlier one.
        events.slice(i - 3, i).forEach((x, k) => drop.set(x.eventId, (task[k] as JsonEvent).eventId));
        resequence.set(e.eventId, previous.eventId);
      }
    }
  }
  const kept = events.filter((e) => !drop.has(e.eventId));
  const ids = new Map(kept.map((e, i) => [e.eventId, String(i + 1)]));
  for (const [gone, instead] of drop) ids.set(gone, ids.get(instead) ?? instead);
  const renumber = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(renumber);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [
        k,
        /EventId$/.test(k) && typeof x === 'string' ? (ids.get(x) ?? x) : renumber(x),
      ]),
    );
  };
  const out = kept.map((e) => {
    const accepted = e.workflowExecutionUpdateAcceptedEventAttributes as Record<string, unknown> | undefined;
    const to = resequence.get(e.eventId);
    const moved =
      accepted && to
        ? {
            ...e,
            workflowExecutionUpdateAcceptedEventAttributes: {
              ...accepted,
              acceptedRequestSequencingEventId: to,
            },
          }
        : e;
    return { ...(renumber(moved) as JsonEvent), eventId: ids.get(e.eventId) ?? e.eventId };
  });
  return { json: JSON.stringify({ events: out }), moved: resequence.size };
}
