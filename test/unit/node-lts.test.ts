// The supported Node LTS: deploy/dev/install-node installs the pinned Node 24 (from the npm
// registry, into the tool cache), the image is built on the same major, and on it the AWS SDK
// prints no deprecation warning, which it prints on Node 20 (the demo's warning of issue 14).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers/env.js';

const exec = promisify(execFile);

async function pinnedVersion(): Promise<string> {
  const lib = await readFile(path.join(repoRoot, 'deploy/dev/lib.sh'), 'utf8');
  const v = /^NODE_VERSION=(\d+\.\d+\.\d+)$/m.exec(lib)?.[1];
  assert.ok(v, 'deploy/dev/lib.sh pins NODE_VERSION');
  return v;
}

/** Stderr of a fresh S3 client's construction (where the SDK checks the Node version). */
async function s3ClientStderr(node: string): Promise<string> {
  const { stderr } = await exec(
    node,
    [
      '--input-type=module',
      '-e',
      "import { S3Client } from '@aws-sdk/client-s3'; new S3Client({ region: 'x' });",
    ],
    { cwd: repoRoot, env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '' } },
  );
  return stderr;
}

describe('Node LTS', () => {
  it('install-node gives the pinned Node 24, the Dockerfile builds on its major', async () => {
    const version = await pinnedVersion();
    assert.match(version, /^24\./);
    const { stdout } = await exec('bash', [path.join(repoRoot, 'deploy/dev/install-node')], {
      timeout: 300_000,
    });
    const bin = stdout.trim();
    const got = await exec(path.join(bin, 'node'), ['--version']);
    assert.equal(got.stdout.trim(), `v${version}`);
    const dockerfile = await readFile(path.join(repoRoot, 'deploy/Dockerfile'), 'utf8');
    const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(froms, [
      `node:${version.split('.')[0]}-bookworm-slim`,
      `node:${version.split('.')[0]}-bookworm-slim`,
    ]);
  });

  it('the AWS SDK warns on Node < 22 only: none on the pinned Node', async () => {
    const { stdout } = await exec('bash', [path.join(repoRoot, 'deploy/dev/install-node')]);
    assert.doesNotMatch(
      await s3ClientStderr(path.join(stdout.trim(), 'node')),
      /NodeVersionSupportWarning|DeprecationWarning/,
    );
    // The control: the same code on an older Node warns, so the check above can fail.
    if (Number(process.versions.node.split('.')[0]) < 22) {
      assert.match(await s3ClientStderr(process.execPath), /NodeVersionSupportWarning/);
    }
  });
});
