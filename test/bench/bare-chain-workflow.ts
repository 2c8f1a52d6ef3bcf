// The benchmark's baseline for the platform's own cost per activity (test/bench/orchestration.ts):
// nothing but n no-op activities, one after another.
import { proxyActivities } from '@temporalio/workflow';

const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '1 minute' });

/** Runs `n` no-op activities in sequence. */
export async function bareChain(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await noop();
}
