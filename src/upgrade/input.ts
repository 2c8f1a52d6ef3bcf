// The input of the `upgradeCluster` workflow lives with the workflow (workflows/pure/input.ts): the
// workflow validates its own input with it, so it must stay a pure module written for the sandbox.
// Re-exported here for the library, the CLI and the activities.
export * from '../../workflows/pure/input.js';
