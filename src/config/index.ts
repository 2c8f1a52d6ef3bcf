// Public API of the configuration module: load and validate config files, durations, redaction.
export { loadConfig, loadConfigFromText } from './load.js';
export type { ConfigSource, LoadConfigOptions, LoadedConfig } from './load.js';
export { ConfigError, formatProblem } from './errors.js';
export type { ConfigProblem } from './errors.js';
export { parseDuration, formatDuration, DURATION_PATTERN } from './duration.js';
export { redactConfig, configSecrets } from './secrets.js';
export { CONFIG_SCHEMA } from './schema.js';
export type { JsonSchema } from './schema.js';
export { CONFIG_DEFAULTS, REDACTED } from './defaults.js';
export type * from './types.js';
