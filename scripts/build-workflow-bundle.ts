// `npm run build`: writes dist/workflow-bundle.js so production workers skip bundling at start.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { PREBUILT_BUNDLE_PATH, WORKFLOWS_PATH } from '../src/temporal/bundle.js';

const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH });
await mkdir(path.dirname(PREBUILT_BUNDLE_PATH), { recursive: true });
await writeFile(PREBUILT_BUNDLE_PATH, code);
console.log(`wrote ${PREBUILT_BUNDLE_PATH} (${Math.round(code.length / 1024)} KiB)`);
