/**
 * The jobs of the original Go tool, by config name. A config may name any of them (the sample
 * config.yaml lists all); one that is enabled must also be registered in this build.
 */
export const ORIGINAL_JOB_NAMES: readonly string[] = [
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
