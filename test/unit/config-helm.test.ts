// `upgrade.gate: helm` and `upgrade.helm.*`: defaults, and each mistake reported with file, line,
// key and fix before anything runs. Plus the values gate helm generates from them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfigFromText, type LoadedConfig } from '../../src/config/index.js';
import type { ConfigProblem } from '../../src/config/errors.js';
import { coreValues, setPath } from '../../src/helm/core-upgrade.js';
import { validateUpgradeInput } from '../../src/upgrade/input.js';

function load(...texts: string[]): LoadedConfig {
  return loadConfigFromText(texts.map((text, i) => ({ name: `file${i + 1}.yaml`, text })));
}

function problems(...texts: string[]): readonly ConfigProblem[] {
  try {
    load(...texts);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

describe('config: upgrade.helm', () => {
  it('fills the defaults when the section is present, and leaves configs without it unchanged', () => {
    assert.equal(load('upgrade:\n  gate: detect\n').config.upgrade.helm, undefined);
    const { config } = load(
      'upgrade:\n  gate: helm\n  helm:\n    chart: oci://registry.local/kubesphere/ks-core\n    version: 1.1.4\n',
    );
    assert.equal(config.upgrade.gate, 'helm');
    assert.deepEqual(config.upgrade.helm, {
      chart: 'oci://registry.local/kubesphere/ks-core',
      version: '1.1.4',
      values: [],
      set: {},
      timeout: 30 * 60_000,
      plainHttp: false,
    });
  });

  it('reads every key', () => {
    const { config } = load(
      [
        'upgrade:',
        '  gate: helm',
        '  helm:',
        '    chart: ks-core',
        '    repo: https://charts.kubesphere.io/main',
        '    version: "1.1.4"',
        '    values: [/etc/ks/ks-core-values.yaml, /etc/ks/site.yaml]',
        '    set: { global.imageRegistry: registry.local, ha.enabled: true, extension.nodeSelector: { a: b } }',
        '    timeout: 45m',
        '    binary: /usr/local/bin/helm',
        '    plainHttp: true',
      ].join('\n'),
    );
    assert.deepEqual(config.upgrade.helm, {
      chart: 'ks-core',
      repo: 'https://charts.kubesphere.io/main',
      version: '1.1.4',
      values: ['/etc/ks/ks-core-values.yaml', '/etc/ks/site.yaml'],
      set: {
        'global.imageRegistry': 'registry.local',
        'ha.enabled': true,
        'extension.nodeSelector': { a: 'b' },
      },
      timeout: 45 * 60_000,
      binary: '/usr/local/bin/helm',
      plainHttp: true,
    });
  });

  it('gate helm without a chart is an error at the gate line, in whichever file set it', () => {
    const found = problems('storage:\n  local:\n    path: /tmp/x\n', 'upgrade:\n  gate: helm\n');
    assert.equal(found.length, 1);
    assert.deepEqual([found[0]?.file, found[0]?.line, found[0]?.path], ['file2.yaml', 2, 'upgrade.gate']);
    assert.match(found[0]?.hint ?? '', /set upgrade\.helm\.chart/);
  });

  it('a repository or OCI chart must pin its version; a repository chart is a name', () => {
    const oci = problems('upgrade:\n  helm:\n    chart: oci://r.local/ks/ks-core\n');
    assert.deepEqual(
      oci.map((p) => [p.line, p.path]),
      [[3, 'upgrade.helm.chart']],
    );
    assert.match(oci[0]?.message ?? '', /needs upgrade\.helm\.version/);
    const repo = problems(
      'upgrade:\n  helm:\n    chart: ./ks-core-1.1.4.tgz\n    repo: https://charts.example\n',
    );
    assert.deepEqual(repo.map((p) => p.path).sort(), ['upgrade.helm.chart', 'upgrade.helm.repo']);
  });

  it('wrong types, unknown keys, a zero timeout and a set key that is not a dotted path', () => {
    const found = problems(
      [
        'upgrade:',
        '  helm:',
        '    chart: ./ks-core.tgz',
        '    values: ks-core-values.yaml',
        '    timeout: 0',
        '    plainHTTP: true',
        '    set:',
        '      "global..tag": v4.1.3',
      ].join('\n'),
    );
    assert.deepEqual(
      found.map((p) => [p.line, p.path]),
      [
        [4, 'upgrade.helm.values'],
        [5, 'upgrade.helm.timeout'],
        [6, 'upgrade.helm.plainHTTP'],
        [8, 'upgrade.helm.set["global..tag"]'],
      ],
    );
    assert.match(found[2]?.hint ?? '', /plainHttp/, 'the typo gets a suggestion');
  });

  it('a chart or repository URL with credentials is refused (they would be on the command line)', () => {
    const found = problems(
      'upgrade:\n  helm:\n    chart: ks-core\n    repo: https://bob:s3cret@charts.example\n    version: 1.1.4\n',
    );
    assert.deepEqual(
      found.map((p) => [p.line, p.path]),
      [[4, 'upgrade.helm.repo']],
    );
    assert.ok(!found[0]?.message.includes('s3cret'), 'the message does not repeat the password');
  });

  it('workflow input accepts gate helm', () => {
    assert.deepEqual(validateUpgradeInput({ cluster: 'host', gate: 'helm' }), []);
  });
});

describe('gate helm values', () => {
  it('the mapped values, then upgrade.helm.set, then the chart hooks off', () => {
    const values = coreValues(
      { multicluster: { role: 'member' }, ha: { enabled: true } },
      { 'global.imageRegistry': 'registry.local', 'ha.enabled': false, 'upgrade.enabled': true },
    );
    assert.deepEqual(values, {
      multicluster: { role: 'member' },
      ha: { enabled: false },
      global: { imageRegistry: 'registry.local' },
      upgrade: { enabled: false },
    });
  });

  it('setPath replaces a scalar on the way by a mapping', () => {
    const o: Record<string, unknown> = { a: 'x' };
    setPath(o, 'a.b.c', 1);
    assert.deepEqual(o, { a: { b: { c: 1 } } });
  });
});
