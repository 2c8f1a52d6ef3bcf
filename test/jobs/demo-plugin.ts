// The demo jobs as a plugin module, loaded by the CLI tests with --plugin / KS_UPGRADE_PLUGINS.
import { DEMO_JOBS, demoJobFactory } from './demo.js';

export const jobs = DEMO_JOBS.map((name) => demoJobFactory(name));
