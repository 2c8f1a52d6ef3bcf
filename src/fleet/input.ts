// The fleet input lives with the workflow code that validates it (workflows/pure: pure, replay-safe).
export * from '../../workflows/pure/fleet-input.js';
