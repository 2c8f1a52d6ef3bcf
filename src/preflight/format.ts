// The preflight report's text and markdown live with the workflow, which renders them
// (workflows/pure/preflight-report.ts); re-exported for the CLI and the library.
export * from '../../workflows/pure/preflight-report.js';
