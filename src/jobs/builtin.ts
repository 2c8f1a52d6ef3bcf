// The built-in jobs, registered explicitly in one place (no import side effects).
import { applicationJobFactory } from './application/index.js';
import { coreJobFactory } from './core/index.js';
import { devopsJobFactory } from './devops/index.js';
import { gatewayJobFactory } from './gateway/index.js';
import { iamJobFactory } from './iam/index.js';
import { kubeedgeJobFactory } from './kubeedge/index.js';
import { kubefedJobFactory } from './kubefed/index.js';
import { metricsServerJobFactory } from './metrics-server/index.js';
import { networkJobFactory } from './network/index.js';
import { opensearchJobFactory } from './opensearch/index.js';
import { servicemeshJobFactory } from './servicemesh/index.js';
import { storageUtilsJobFactory } from './storage-utils/index.js';
import { towerJobFactory } from './tower/index.js';
import { vectorJobFactory } from './vector/index.js';
import { whizardAlertingJobFactory } from './whizard-alerting/index.js';
import { whizardEventsJobFactory } from './whizard-events/index.js';
import { whizardLoggingJobFactory } from './whizard-logging/index.js';
import { whizardMonitoringJobFactory } from './whizard-monitoring/index.js';
import { whizardNotificationJobFactory } from './whizard-notification/index.js';
import { whizardTelemetryJobFactory } from './whizard-telemetry/index.js';
import type { JobFactory } from './types.js';
import { defaultRegistry, type JobRegistry } from './registry.js';

/** Factories of the jobs that ship with ks-upgrade (the original's ~20 jobs). */
export const BUILTIN_JOB_FACTORIES: readonly JobFactory[] = [
  coreJobFactory,
  iamJobFactory,
  applicationJobFactory,
  devopsJobFactory,
  gatewayJobFactory,
  networkJobFactory,
  opensearchJobFactory,
  metricsServerJobFactory,
  servicemeshJobFactory,
  storageUtilsJobFactory,
  kubeedgeJobFactory,
  kubefedJobFactory,
  towerJobFactory,
  vectorJobFactory,
  whizardAlertingJobFactory,
  whizardEventsJobFactory,
  whizardLoggingJobFactory,
  whizardMonitoringJobFactory,
  whizardNotificationJobFactory,
  whizardTelemetryJobFactory,
];

let registered = false;

/** Registers the built-in jobs in `registry` (idempotent for the default registry). */
export function registerBuiltinJobs(registry: JobRegistry = defaultRegistry): void {
  if (registry === defaultRegistry) {
    if (registered) return;
    registered = true;
  }
  for (const f of BUILTIN_JOB_FACTORIES) registry.register(f);
}
