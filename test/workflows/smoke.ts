// A minimal workflow for the Temporal smoke test: one activity call, its result returned.
import { proxyActivities } from '@temporalio/workflow';

export interface SmokeActivities {
  greet(name: string): Promise<string>;
}

const { greet } = proxyActivities<SmokeActivities>({ startToCloseTimeout: '30s' });

export async function smokeWorkflow(name: string): Promise<string> {
  return `workflow saw: ${await greet(name)}`;
}
