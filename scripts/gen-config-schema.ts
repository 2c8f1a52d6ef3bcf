// Writes config.schema.json from src/config/schema.ts, the schema the loader validates with, so
// editors and ks-upgrade agree on what a valid config.yaml is.
//
//   npx tsx scripts/gen-config-schema.ts           # regenerate
//   npx tsx scripts/gen-config-schema.ts --check   # exit 1 when the committed file is stale
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { CONFIG_SCHEMA } from '../src/config/schema.js';

/** Absolute path of the committed schema file. */
export const CONFIG_SCHEMA_PATH = fileURLToPath(new URL('../config.schema.json', import.meta.url));

/** The file's expected content, formatted as `prettier --check .` wants it. */
export async function renderConfigSchema(): Promise<string> {
  const options = (await prettier.resolveConfig(CONFIG_SCHEMA_PATH)) ?? {};
  return prettier.format(JSON.stringify(CONFIG_SCHEMA, null, 2), {
    ...options,
    filepath: CONFIG_SCHEMA_PATH,
  });
}

async function main(): Promise<void> {
  const expected = await renderConfigSchema();
  if (process.argv.includes('--check')) {
    const actual = await readFile(CONFIG_SCHEMA_PATH, 'utf8').catch(() => '');
    if (actual !== expected) {
      console.error('config.schema.json is stale: run `npx tsx scripts/gen-config-schema.ts`');
      process.exitCode = 1;
    }
    return;
  }
  await writeFile(CONFIG_SCHEMA_PATH, expected);
  console.log(`wrote ${CONFIG_SCHEMA_PATH}`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
