// Runs every case of test/fixtures/bad-config (see its README.md) and compares the whole
// ConfigError message, every line, with the case's .expected file. With UPDATE_EXPECTED=1 it
// writes the .expected files instead; review that diff line by line before committing it.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { BUILTIN_JOB_FACTORIES } from '../../src/jobs/builtin.js';
import { KNOWN_JOBS } from '../helpers/original-jobs.js';

const CORPUS = fileURLToPath(new URL('../fixtures/bad-config/', import.meta.url));
const update = process.env.UPDATE_EXPECTED === '1';

interface Case {
  name: string;
  /** Paths relative to the corpus directory, in merge order. */
  files: string[];
}

function discover(): Case[] {
  const cases: Case[] = [];
  for (const entry of readdirSync(CORPUS).sort()) {
    const match = /^(\d\d-[a-z0-9-]+)(\.yaml|\.json)?$/.exec(entry);
    if (match?.[1] === undefined) continue;
    const name = match[1];
    if (match[2] !== undefined) {
      cases.push({ name, files: [entry] });
      continue;
    }
    if (!statSync(join(CORPUS, entry)).isDirectory()) continue;
    const list = join(CORPUS, entry, 'files.txt');
    const files = existsSync(list)
      ? readFileSync(list, 'utf8')
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => line !== '')
      : readdirSync(join(CORPUS, entry))
          .filter((f) => /\.(yaml|json)$/.test(f))
          .sort();
    cases.push({ name, files: files.map((f) => `${entry}/${f}`) });
  }
  return cases;
}

// What `ks-upgrade run` asks of a config (without --allow-empty), so that every case shows the
// message an operator would get.
const UPGRADE_CHECKS = {
  knownJobs: KNOWN_JOBS,
  requireEnabledJob: true,
  jobsNeedingEncryption: BUILTIN_JOB_FACTORIES.filter((f) => f.requiresEncryption).map((f) => f.name),
};

async function messageOf(c: Case): Promise<string> {
  try {
    await loadConfig(c.files, UPGRADE_CHECKS);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return '(loaded without error)';
}

describe('bad-config corpus', () => {
  // File names in the messages are the paths as given, relative to the corpus directory.
  before(() => {
    process.chdir(CORPUS);
  });

  const cases = discover();

  it('has at least 30 cases, each with an .expected file', () => {
    assert.ok(cases.length >= 30, `only ${cases.length} cases`);
    if (update) return;
    for (const c of cases)
      assert.ok(existsSync(join(CORPUS, `${c.name}.expected`)), `${c.name}.expected missing`);
  });

  for (const c of cases) {
    it(c.name, async () => {
      const actual = await messageOf(c);
      const expectedFile = join(CORPUS, `${c.name}.expected`);
      if (update) {
        writeFileSync(expectedFile, `${actual}\n`);
        return;
      }
      const expected = readFileSync(expectedFile, 'utf8').replace(/\n$/, '');
      assert.deepEqual(actual.split('\n'), expected.split('\n'));
    });
  }
});
