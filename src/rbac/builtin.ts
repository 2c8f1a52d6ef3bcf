// The access tables and leftover lists of the built-in jobs, keyed by job name. Each job keeps its
// own in `src/jobs/<job>/access.ts`, next to the code it describes; plugins declare theirs on their
// factory (`JobFactory.access`, `JobFactory.leftovers`).
import { APPLICATION_ACCESS } from '../jobs/application/access.js';
import { CORE_ACCESS, CORE_LEFTOVERS } from '../jobs/core/access.js';
import { DEVOPS_ACCESS } from '../jobs/devops/access.js';
import { GATEWAY_ACCESS } from '../jobs/gateway/access.js';
import { IAM_ACCESS, IAM_LEFTOVERS, IAM_MIGRATED_CRDS } from '../jobs/iam/access.js';
import { KUBEEDGE_ACCESS } from '../jobs/kubeedge/access.js';
import { KUBEFED_ACCESS } from '../jobs/kubefed/access.js';
import { METRICS_SERVER_ACCESS } from '../jobs/metrics-server/access.js';
import { NETWORK_ACCESS, NETWORK_LEFTOVERS } from '../jobs/network/access.js';
import { OPENSEARCH_ACCESS } from '../jobs/opensearch/access.js';
import { SERVICEMESH_ACCESS } from '../jobs/servicemesh/access.js';
import { STORAGE_UTILS_ACCESS, STORAGE_UTILS_LEFTOVERS } from '../jobs/storage-utils/access.js';
import { TOWER_ACCESS } from '../jobs/tower/access.js';
import { VECTOR_ACCESS, VECTOR_LEFTOVERS } from '../jobs/vector/access.js';
import { WHIZARD_ALERTING_ACCESS } from '../jobs/whizard-alerting/access.js';
import { WHIZARD_EVENTS_ACCESS } from '../jobs/whizard-events/access.js';
import { WHIZARD_LOGGING_ACCESS } from '../jobs/whizard-logging/access.js';
import { WHIZARD_MONITORING_ACCESS } from '../jobs/whizard-monitoring/access.js';
import {
  WHIZARD_NOTIFICATION_ACCESS,
  WHIZARD_NOTIFICATION_LEFTOVERS,
} from '../jobs/whizard-notification/access.js';
import { WHIZARD_TELEMETRY_ACCESS } from '../jobs/whizard-telemetry/access.js';
import type { Leftover } from '../verify/types.js';
import type { AccessRule } from './types.js';

/** Access rules of each built-in job. */
export const BUILTIN_ACCESS: Readonly<Record<string, readonly AccessRule[]>> = {
  application: APPLICATION_ACCESS,
  core: CORE_ACCESS,
  devops: DEVOPS_ACCESS,
  gateway: GATEWAY_ACCESS,
  iam: IAM_ACCESS,
  kubeedge: KUBEEDGE_ACCESS,
  kubefed: KUBEFED_ACCESS,
  'metrics-server': METRICS_SERVER_ACCESS,
  network: NETWORK_ACCESS,
  opensearch: OPENSEARCH_ACCESS,
  servicemesh: SERVICEMESH_ACCESS,
  'storage-utils': STORAGE_UTILS_ACCESS,
  tower: TOWER_ACCESS,
  vector: VECTOR_ACCESS,
  'whizard-alerting': WHIZARD_ALERTING_ACCESS,
  'whizard-events': WHIZARD_EVENTS_ACCESS,
  'whizard-logging': WHIZARD_LOGGING_ACCESS,
  'whizard-monitoring': WHIZARD_MONITORING_ACCESS,
  'whizard-notification': WHIZARD_NOTIFICATION_ACCESS,
  'whizard-telemetry': WHIZARD_TELEMETRY_ACCESS,
};

/** The v3 objects each built-in job removes for good (jobs without any are absent). */
export const BUILTIN_LEFTOVERS: Readonly<Record<string, readonly Leftover[]>> = {
  core: CORE_LEFTOVERS,
  iam: IAM_LEFTOVERS,
  network: NETWORK_LEFTOVERS,
  'storage-utils': STORAGE_UTILS_LEFTOVERS,
  vector: VECTOR_LEFTOVERS,
  'whizard-notification': WHIZARD_NOTIFICATION_LEFTOVERS,
};

/** CRDs a built-in job migrates to a new storage version (verification checks storedVersions). */
export const BUILTIN_STORAGE_MIGRATIONS: Readonly<Record<string, readonly string[]>> = {
  iam: IAM_MIGRATED_CRDS,
};
