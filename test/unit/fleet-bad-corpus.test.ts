// Runs every case of test/fixtures/bad-fleet and compares the whole error, every line, with the
// case's .expected file: each bad entry of a fleet file is named by file, line and key, with the
// fix, before anything starts. UPDATE_EXPECTED=1 writes the .expected files (review the diff).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/config/index.js';
import { loadFleetFile } from '../../src/fleet/load.js';

const CORPUS = fileURLToPath(new URL('../fixtures/bad-fleet/', import.meta.url));
const update = process.env.UPDATE_EXPECTED === '1';
// Fixed "now" for the window checks: 2025-06-01, a Sunday.
const NOW = Date.parse('2025-06-01T00:00:00Z');

async function messageOf(file: string): Promise<string> {
  try {
    await loadFleetFile(file, { now: NOW });
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return '(loaded without error)';
}

describe('bad-fleet corpus', () => {
  before(() => {
    process.chdir(CORPUS);
    delete process.env.KUBECONFIG;
  });
  const cases = readdirSync(CORPUS)
    .filter((f) => /^\d\d-[a-z0-9-]+\.yaml$/.test(f))
    .sort()
    .map((f) => f.replace(/\.yaml$/, ''));
  cases.push('99-missing-file');

  it('has at least 30 cases, each with an .expected file', () => {
    assert.ok(cases.length >= 30, `only ${cases.length} cases`);
    if (update) return;
    for (const c of cases) assert.ok(existsSync(join(CORPUS, `${c}.expected`)), `${c}.expected missing`);
  });

  for (const c of cases) {
    it(c, async () => {
      const actual = await messageOf(`${c}.yaml`);
      const expectedFile = join(CORPUS, `${c}.expected`);
      if (update) {
        writeFileSync(expectedFile, `${actual}\n`);
        return;
      }
      assert.deepEqual(actual.split('\n'), readFileSync(expectedFile, 'utf8').replace(/\n$/, '').split('\n'));
    });
  }

  it('the examples in docs/examples load without a problem', async () => {
    const dir = fileURLToPath(new URL('../../docs/examples/', import.meta.url));
    const examples = readdirSync(dir).filter((f) => f.startsWith('fleet') && f.endsWith('.yaml'));
    assert.ok(examples.length >= 2, 'fleet examples exist');
    for (const f of examples) {
      // The examples name a kubeconfig of a real deployment, absent here: contexts are not checked.
      const input = await loadFleetFile(join(dir, f), { now: NOW });
      assert.equal(input.waves[0]?.clusters.length, 1, `${f}: the host runs alone first`);
    }
  });
});
