// Heartbeats that go on while the work sits in one long call (a big list, a request the API
// server is slow to answer): the heartbeat timeout exists to notice a dead worker, and a live one
// must not be taken for dead — Temporal would start a second attempt beside the first.

/** A heartbeat that also repeats its latest details on a timer. */
export interface KeepAlive<D> {
  /** Sends `details` now; the timer repeats the latest defined details. */
  heartbeat: (details?: D) => void;
  stop: () => void;
}

/** Calls `send` with the latest details every `intervalMs` until `stop` (the timer does not hold the process). */
export function keepAlive<D>(send: (details?: D) => void, intervalMs: number): KeepAlive<D> {
  let latest: D | undefined;
  const timer = setInterval(() => {
    send(latest);
  }, intervalMs);
  timer.unref();
  return {
    heartbeat: (details?: D) => {
      if (details !== undefined) latest = details;
      send(details);
    },
    stop: () => {
      clearInterval(timer);
    },
  };
}
