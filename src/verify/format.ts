// The verification report's text and markdown live with the workflow, which renders them
// (workflows/lib/verification-report.ts); re-exported for the CLI and the library.
export * from '../../workflows/lib/verification-report.js';
