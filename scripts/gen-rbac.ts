// Writes deploy/kubernetes/rbac.yaml: `ks-upgrade rbac` for the built-in default config (jobs core
// and iam), bound to the worker's service account ks-upgrade/ks-upgrade. A unit test fails when the
// committed file drifts from the access table.
//
//   npx tsx scripts/gen-rbac.ts           # regenerate
//   npx tsx scripts/gen-rbac.ts --check   # exit 1 when the committed file is stale
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { registerBuiltinJobs } from '../src/jobs/builtin.js';
import { JobRegistry } from '../src/jobs/registry.js';
import { loadJobsConfig, rbacManifests } from '../src/rbac/index.js';
import { BUILTIN_CONFIG_PATH } from '../src/upgrade/plan.js';

/** Absolute path of the committed manifest. */
export const RBAC_MANIFEST_PATH = fileURLToPath(new URL('../deploy/kubernetes/rbac.yaml', import.meta.url));

/** The manifest's expected content, formatted as `prettier --check .` wants it. */
export async function renderRbacManifest(): Promise<string> {
  const registry = new JobRegistry();
  registerBuiltinJobs(registry);
  const config = await loadJobsConfig([BUILTIN_CONFIG_PATH], registry);
  const text = rbacManifests(config, registry, {
    serviceAccount: { namespace: 'ks-upgrade', name: 'ks-upgrade' },
  });
  const options = (await prettier.resolveConfig(RBAC_MANIFEST_PATH)) ?? {};
  return prettier.format(text, { ...options, filepath: RBAC_MANIFEST_PATH });
}

async function main(): Promise<void> {
  const expected = await renderRbacManifest();
  if (process.argv.includes('--check')) {
    const actual = await readFile(RBAC_MANIFEST_PATH, 'utf8').catch(() => '');
    if (actual !== expected) {
      console.error('deploy/kubernetes/rbac.yaml is stale: run `npx tsx scripts/gen-rbac.ts`');
      process.exitCode = 1;
    }
    return;
  }
  await writeFile(RBAC_MANIFEST_PATH, expected);
  console.log(`wrote ${RBAC_MANIFEST_PATH}`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
