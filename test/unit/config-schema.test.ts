import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { CONFIG_SCHEMA, type JsonSchema } from '../../src/config/index.js';
import { CONFIG_SCHEMA_PATH, renderConfigSchema } from '../../scripts/gen-config-schema.js';

/** Every subschema with its JSON pointer. */
function* walk(schema: JsonSchema, pointer = '#'): Generator<[string, JsonSchema]> {
  yield [pointer, schema];
  for (const [key, sub] of Object.entries(schema.properties ?? {}))
    yield* walk(sub, `${pointer}/properties/${key}`);
  for (const [key, sub] of Object.entries(schema.$defs ?? {})) yield* walk(sub, `${pointer}/$defs/${key}`);
  if (typeof schema.additionalProperties === 'object') {
    yield* walk(schema.additionalProperties, `${pointer}/additionalProperties`);
  }
  if (schema.items !== undefined) yield* walk(schema.items, `${pointer}/items`);
}

describe('config.schema.json', () => {
  it('is generated from src/config/schema.ts (run `npx tsx scripts/gen-config-schema.ts` when this fails)', async () => {
    assert.equal(await readFile(CONFIG_SCHEMA_PATH, 'utf8'), await renderConfigSchema());
  });

  it('describes every setting and is closed wherever it lists properties', () => {
    for (const [pointer, schema] of walk(CONFIG_SCHEMA)) {
      // A bare $ref (jobs.<name>) is described by its target.
      if (/\/properties\/[^/]+$/.test(pointer) && schema.$ref === undefined) {
        assert.ok(schema.description !== undefined, `${pointer} has no description`);
      }
      if (schema.properties !== undefined) {
        assert.equal(schema.additionalProperties, false, `${pointer} accepts unknown keys`);
      }
    }
  });
});
