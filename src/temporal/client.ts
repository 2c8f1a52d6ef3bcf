import {
  Client,
  Connection,
  WorkflowIdConflictPolicy,
  WorkflowNotFoundError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ValidationError } from '../errors.js';
import { upgradeWorkflowId, validateUpgradeInput, type UpgradeClusterInput } from '../upgrade/input.js';
import { UpgradeClusterKey, UpgradeStatusKey } from '../../workflows/search-attributes.js';
import type { upgradeCluster } from '../../workflows/upgrade.js';
import { connectionOptions, type TemporalSettings } from './connection.js';

/** A client connection from settings. */
export async function connectClient(
  settings: TemporalSettings,
): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect(connectionOptions(settings));
  return { client: new Client({ connection, namespace: settings.namespace }), connection };
}

/** Throws a {@link ValidationError} listing every problem of an upgrade's workflow input. */
export function assertValidInput(input: UpgradeClusterInput): void {
  const problems = validateUpgradeInput(input);
  if (problems.length > 0) {
    throw new ValidationError(`invalid upgrade input:\n  ${problems.join('\n  ')}`, {
      hint: 'see docs/workflow-input.md',
    });
  }
}

/**
 * Starts a cluster's upgrade, or attaches to the one already running under its workflow ID (a
 * second `ks-upgrade run` after a crash continues the same upgrade). A completed upgrade is
 * reported (`completed`) instead of being started again, unless `rerun`. The input is validated
 * here first, so an input with credentials never reaches workflow history.
 */
export async function startUpgrade(
  client: Client,
  input: UpgradeClusterInput,
  taskQueue: string,
  workflowId: string = upgradeWorkflowId(input.cluster),
  options: { rerun?: boolean } = {},
): Promise<{ handle: WorkflowHandle<typeof upgradeCluster>; attached: boolean; completed: boolean }> {
  assertValidInput(input);
  const existing = client.workflow.getHandle<typeof upgradeCluster>(workflowId);
  try {
    const status = (await existing.describe()).status.name;
    if (status === 'RUNNING') return { handle: existing, attached: true, completed: false };
    // An upgrade that succeeded is not repeated by accident; failed or aborted ones start afresh.
    if (status === 'COMPLETED' && !options.rerun)
      return { handle: existing, attached: false, completed: true };
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  // USE_EXISTING closes the race with another starter between the describe and the start.
  const handle = await client.workflow.start<typeof upgradeCluster>('upgradeCluster', {
    taskQueue,
    workflowId,
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    typedSearchAttributes: [
      { key: UpgradeClusterKey, value: input.cluster },
      { key: UpgradeStatusKey, value: 'Planning' },
    ],
    staticSummary: `Upgrade KubeSphere cluster ${input.cluster} to v4`,
  });
  return { handle, attached: false, completed: false };
}
