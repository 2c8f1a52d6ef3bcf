// The workflow bundle's entry point: every workflow type the worker serves.
export { upgradeCluster } from './upgrade.js';
export { upgradeFleet } from './fleet.js';
