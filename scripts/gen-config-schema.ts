// Writes config.schema.json from src/config/schema.ts and docs/fleet.schema.json from
// src/fleet/schema.ts — the schemas the loaders validate with — so editors and ks-upgrade agree on
// what a valid config.yaml and fleet file are.
//
//   npx tsx scripts/gen-config-schema.ts           # regenerate
//   npx tsx scripts/gen-config-schema.ts --check   # exit 1 when the committed file is stale
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { CONFIG_SCHEMA, type JsonSchema } from '../src/config/schema.js';
import { FLEET_SCHEMA } from '../src/fleet/schema.js';

/** Absolute path of the committed schema file. */
export const CONFIG_SCHEMA_PATH = fileURLToPath(new URL('../config.schema.json', import.meta.url));
export const FLEET_SCHEMA_PATH = fileURLToPath(new URL('../docs/fleet.schema.json', import.meta.url));

async function render(schema: JsonSchema, file: string): Promise<string> {
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(JSON.stringify(schema, null, 2), { ...options, filepath: file });
}

/** The file's expected content, formatted as `prettier --check .` wants it. */
export function renderConfigSchema(): Promise<string> {
  return render(CONFIG_SCHEMA, CONFIG_SCHEMA_PATH);
}

/** docs/fleet.schema.json's expected content. */
export function renderFleetSchema(): Promise<string> {
  return render(FLEET_SCHEMA, FLEET_SCHEMA_PATH);
}

async function main(): Promise<void> {
  for (const [file, expected] of [
    [CONFIG_SCHEMA_PATH, await renderConfigSchema()],
    [FLEET_SCHEMA_PATH, await renderFleetSchema()],
  ] as const) {
    if (process.argv.includes('--check')) {
      const actual = await readFile(file, 'utf8').catch(() => '');
      if (actual !== expected) {
        console.error(`${file} is stale: run \`npx tsx scripts/gen-config-schema.ts\``);
        process.exitCode = 1;
      }
      continue;
    }
    await writeFile(file, expected);
    console.log(`wrote ${file}`);
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
