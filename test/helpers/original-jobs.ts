// The original tool's 20 jobs and the priorities of its repository config.yaml (reference §1.6):
// the expected values of the ordering, config and sample-config tests.

/** Default priority of every original job. */
export const ORIGINAL_PRIORITIES: Readonly<Record<string, number>> = {
  core: 10000,
  iam: 999,
  devops: 800,
  vector: 101,
  application: 100,
  kubeedge: 100,
  kubefed: 100,
  network: 100,
  opensearch: 100,
  'storage-utils': 100,
  tower: 100,
  'whizard-events': 100,
  'whizard-logging': 100,
  'whizard-monitoring': 100,
  'whizard-notification': 100,
  'whizard-telemetry': 100,
  gateway: 90,
  servicemesh: 90,
  'metrics-server': 80,
  'whizard-alerting': 10,
};

/** The run order the reference documents when every job is enabled (hand-written, not derived). */
export const ORIGINAL_ORDER: readonly string[] = [
  'core',
  'iam',
  'devops',
  'vector',
  'application',
  'kubeedge',
  'kubefed',
  'network',
  'opensearch',
  'storage-utils',
  'tower',
  'whizard-events',
  'whizard-logging',
  'whizard-monitoring',
  'whizard-notification',
  'whizard-telemetry',
  'gateway',
  'servicemesh',
  'metrics-server',
  'whizard-alerting',
];

/** The registered names the config tests pass as `knownJobs`. */
export const KNOWN_JOBS: readonly string[] = ORIGINAL_ORDER;
