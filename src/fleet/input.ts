// The fleet input lives with the workflow code that validates it (workflows/lib: pure, replay-safe).
export * from '../../workflows/lib/fleet-input.js';
