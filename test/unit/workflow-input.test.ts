// The workflow input contract: the published schema, its examples and the validator agree; bad
// input and credentials are rejected with messages that say what to change.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { INPUT_FIELDS, validateUpgradeInput } from '../../src/upgrade/input.js';
import { repoRoot } from '../helpers/env.js';

const schema = JSON.parse(readFileSync(path.join(repoRoot, 'docs/workflow-input.schema.json'), 'utf8')) as {
  properties: Record<string, unknown>;
};

describe('workflow input', () => {
  it('the published JSON Schema lists exactly the fields the validator accepts', () => {
    assert.deepEqual(Object.keys(schema.properties).sort(), [...INPUT_FIELDS].sort());
  });

  it('every example in docs/examples is valid', () => {
    const dir = path.join(repoRoot, 'docs/examples');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 4);
    for (const f of files) {
      assert.deepEqual(validateUpgradeInput(JSON.parse(readFileSync(path.join(dir, f), 'utf8'))), [], f);
    }
  });

  it('names every problem with its field and the fix', () => {
    assert.deepEqual(validateUpgradeInput([]), [
      'input: expected a JSON object like {"cluster":"host"}; see docs/workflow-input.md',
    ]);
    assert.deepEqual(
      validateUpgradeInput({
        cluster: 'Host_1',
        gate: 'later',
        phases: ['post-upgrade', 'pre-upgrade'],
        tuning: { gateTimeout: 30 },
        extra: 1,
      }),
      [
        'extra: unknown field; allowed: cluster, kube, configFiles, useDefaults, overrides, phases, gate, failurePolicy, dryRun, allowEmpty, tuning, skipChecks',
        'cluster: required, a lowercase DNS label such as "host" or "member-1"',
        'phases: must be in upgrade order without repeats (prepare-upgrade → pre-upgrade → post-upgrade → dynamic-upgrade)',
        'gate: must be one of signal, detect, helm, none',
        'tuning.gateTimeout: expected a duration such as "30s" or "2h"',
      ],
    );
    assert.deepEqual(validateUpgradeInput({ cluster: 'x', phases: ['rollback'] }), [
      "phases: 'rollback' is not a phase; use prepare-upgrade, pre-upgrade, post-upgrade, dynamic-upgrade (rollback runs through resolve/abort)",
    ]);
  });

  it('skipChecks: each names a check, who skips it and why', () => {
    assert.deepEqual(
      validateUpgradeInput({
        cluster: 'x',
        skipChecks: [
          { name: 'images', by: 'alice', reason: 'mirror synced after the check' },
          { name: 'verification', by: 'bob', reason: 'known' },
        ],
      }),
      [],
    );
    assert.deepEqual(
      validateUpgradeInput({ cluster: 'x', skipChecks: [{ name: 'imagez', by: '', extra: 1 }, 'access'] }),
      [
        'skipChecks[0].extra: unknown field; allowed: name, by, reason',
        'skipChecks[0].name: must be one of api-server, kubesphere-version, access, charts, images, store, concurrent-upgrade, verification',
        'skipChecks[0].by: required (who skips the check, and why)',
        'skipChecks[0].reason: required (who skips the check, and why)',
        'skipChecks[1]: expected {"name", "by", "reason"}',
      ],
    );
  });

  it('refuses credentials wherever they hide', () => {
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----';
    const kubeconfig = 'apiVersion: v1\nkind: Config\nclusters: []\nusers: []\n';
    const problems = validateUpgradeInput({
      cluster: 'host',
      kube: { kubeconfig },
      overrides: {
        jobs: { devops: { dynamicOptions: { sonarToken: 'abc', note: pem, key: 'AKIAABCDEFGHIJKLMNOP' } } },
      },
    });
    assert.deepEqual(problems, [
      'kube.kubeconfig: looks like a credential (key, certificate or kubeconfig content); workflow input is stored in history: reference a file on the worker instead',
      'overrides.jobs.devops.dynamicOptions.sonarToken: credentials are not accepted in workflow input (it is stored in history); put them in a config or credentials file on the worker, or in its environment',
      'overrides.jobs.devops.dynamicOptions.note: looks like a credential (key, certificate or kubeconfig content); workflow input is stored in history: reference a file on the worker instead',
      'overrides.jobs.devops.dynamicOptions.key: looks like a credential (key, certificate or kubeconfig content); workflow input is stored in history: reference a file on the worker instead',
      'kube.kubeconfig: must be the path of a kubeconfig file on the worker, not its content',
    ]);
    assert.deepEqual(
      validateUpgradeInput({
        cluster: 'host',
        overrides: { jobs: { devops: { dynamicOptions: { tokenEnabled: false } } } },
      }),
      [],
    );
  });
});
