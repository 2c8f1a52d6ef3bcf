// The current activity's heartbeats, repeated every third of its heartbeat timeout while it runs
// (src/util/keep-alive.ts): a slow call must not read as a dead worker — Temporal would report a
// bare "Heartbeat timeout" that names nothing.
import { Context } from '@temporalio/activity';
import { keepAlive, type KeepAlive } from '../src/util/keep-alive.js';

/** Runs `fn` with the activity's heartbeats kept alive, stopped when `fn` settles. */
export async function withKeepAlive<T>(fn: (alive: KeepAlive<unknown>) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  const timeout = ctx.info.heartbeatTimeoutMs;
  const send = (details?: unknown): void => {
    ctx.heartbeat(details);
  };
  // Without a heartbeat timeout there is nothing to keep alive: heartbeats pass straight through.
  const alive = timeout
    ? keepAlive(send, Math.max(100, Math.floor(timeout / 3)))
    : { heartbeat: send, stop: () => undefined };
  try {
    return await fn(alive);
  } finally {
    alive.stop();
  }
}
