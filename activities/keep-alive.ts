// Heartbeats for an activity whose work can sit in one long call (a request the API server is slow
// to answer, up to the transport's 60 s timeout): the heartbeat timeout exists to notice a dead
// worker, and a live one busy with a slow call must not be taken for dead — Temporal would start a
// second attempt beside the first and report a bare "Heartbeat timeout" that names nothing.
import { Context } from '@temporalio/activity';

/** A heartbeat that also repeats its last details every third of the heartbeat timeout. */
export interface KeepAlive {
  heartbeat(details?: unknown): void;
  stop(): void;
}

/** Starts heartbeating on the current activity's behalf (nothing to do without a heartbeat timeout). */
export function keepAlive(ctx: Context = Context.current()): KeepAlive {
  let last: unknown;
  const timeout = ctx.info.heartbeatTimeoutMs;
  const timer = timeout
    ? setInterval(
        () => {
          ctx.heartbeat(last);
        },
        Math.max(100, Math.floor(timeout / 3)),
      )
    : undefined;
  timer?.unref();
  return {
    heartbeat: (details?: unknown) => {
      last = details;
      ctx.heartbeat(details);
    },
    stop: () => {
      clearInterval(timer);
    },
  };
}

/** Runs `fn` with a {@link keepAlive}, stopped when `fn` settles. */
export async function withKeepAlive<T>(fn: (alive: KeepAlive) => Promise<T>): Promise<T> {
  const alive = keepAlive();
  try {
    return await fn(alive);
  } finally {
    alive.stop();
  }
}
