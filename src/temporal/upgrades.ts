// The upgrade workflows of one cluster that are running, as Temporal knows them: what the
// preflight's concurrent-upgrade check compares with.
import type { Client } from '@temporalio/client';
import type { ConcurrentUpgrades } from '../preflight/index.js';
import { describeError } from '../errors.js';

/**
 * Running `upgradeCluster` workflows of `cluster` (by the UpgradeCluster search attribute, so an
 * upgrade started under another workflow ID is found too). A failed lookup is reported, not thrown.
 */
export async function runningUpgrades(
  client: Client,
  cluster: string,
  source: string,
  self?: { workflowId: string; runId?: string },
): Promise<ConcurrentUpgrades> {
  const base = { source, ...(self ? { self } : {}) };
  try {
    const running: ConcurrentUpgrades['running'] = [];
    // The cluster name is a DNS label (validated input): safe inside the quoted query value.
    const query = `WorkflowType = 'upgradeCluster' AND ExecutionStatus = 'Running' AND UpgradeCluster = '${cluster}'`;
    for await (const w of client.workflow.list({ query, pageSize: 20 })) {
      running.push({ workflowId: w.workflowId, runId: w.runId, startTime: w.startTime.toISOString() });
      if (running.length >= 20) break;
    }
    return { ...base, running };
  } catch (err) {
    return { ...base, running: [], error: describeError(err) };
  }
}
