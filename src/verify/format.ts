// The verification report's text and markdown live with the workflow, which renders them
// (workflows/pure/verification-report.ts); re-exported for the CLI and the library.
export * from '../../workflows/pure/verification-report.js';
