export {
  GO_KEY_RULES,
  CHART_INDEX_KEY,
  CONTENT_TYPES,
  goKeyRule,
  type GoFormat,
  type GoKeyRule,
  type GoStoreFacts,
} from './layout.js';
export { decodeGoValue, GoFormatError, type DecodedGoValue } from './formats.js';
export {
  LocalGoStore,
  S3GoStore,
  MAX_GO_OBJECT_BYTES,
  type GoS3Settings,
  type GoStoreEntry,
  type GoStoreSource,
} from './source.js';
export {
  importGoStore,
  importSummary,
  type ImportItem,
  type ImportOptions,
  type ImportOutcome,
  type ImportReport,
} from './import.js';
export { goToolObject, goFactsFrom, goKeyName } from './detect.js';
