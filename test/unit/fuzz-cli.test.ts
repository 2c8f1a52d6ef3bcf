// Property tests of the CLI's flag handling (docs/fuzzing.md): from the parsed options to the
// workflow input, without a cluster, a Temporal server or a worker. Kubeconfigs are fake files in
// a temporary folder; they are only read.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  clusterNameFromContext,
  clusterTarget,
  runInput,
  type ClusterTarget,
  type RunInputOptions,
} from '../../src/cli/common.js';
import { formatDuration, parseDuration } from '../../src/config/index.js';
import { ValidationError } from '../../src/errors.js';
import { SKIPPABLE_CHECKS, validateUpgradeInput } from '../../src/upgrade/input.js';
import {
  acceptOrReject,
  acceptOrRejectAsync,
  bounded,
  boundedAsync,
  fuzzParameters,
  oddKey,
  oddScalar,
  toYaml,
  trackUnhandledRejections,
  yamlNoise,
} from '../helpers/fuzz.js';

const unhandled = trackUnhandledRejections();
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PHASES = ['prepare-upgrade', 'pre-upgrade', 'post-upgrade', 'dynamic-upgrade'];

/** A flag value as commander hands it over: any string (or absent). */
const text = fc.oneof(
  fc.string({ maxLength: 20 }),
  oddScalar.map(String),
  fc.constantFrom(...PHASES, ...SKIPPABLE_CHECKS),
);

/** A Go duration as an operator writes it (`90s`, `1h30m`, `1.5h`), sometimes out of range. */
const goDuration = fc
  .array(
    fc.tuple(
      fc.oneof(fc.nat({ max: 120 }), fc.nat()),
      fc.option(fc.nat({ max: 999 })),
      fc.constantFrom('h', 'm', 's', 'ms', 'us', 'µs', 'ns'),
    ),
    {
      minLength: 1,
      maxLength: 3,
    },
  )
  .map((parts) => parts.map(([n, frac, unit]) => `${n}${frac === null ? '' : `.${frac}`}${unit}`).join(''));

/** Options as commander produces them from any command line (choices are not trusted here). */
const anyOptions: fc.Arbitrary<RunInputOptions> = fc.record(
  {
    config: fc.array(text, { maxLength: 3 }),
    defaults: fc.boolean(),
    phases: fc.oneof(
      text,
      fc.subarray(PHASES).map((p) => p.join(',')),
      fc.shuffledSubarray(PHASES).map((p) => p.join(' , ')),
    ),
    gate: text as fc.Arbitrary<never>,
    failurePolicy: text as fc.Arbitrary<never>,
    skipCheck: fc.array(text, { maxLength: 3 }),
    skipReason: text,
    by: text,
    allowEmpty: fc.boolean(),
    dryRun: fc.boolean(),
    heartbeatTimeout: fc.oneof(goDuration, text),
  },
  { requiredKeys: [] },
);

/** Options a correct command line gives: every value one the CLI documents. */
const validOptions: fc.Arbitrary<RunInputOptions> = fc
  .record(
    {
      config: fc.array(fc.stringMatching(/^[a-z0-9_./-]{1,20}$/), { maxLength: 3 }),
      defaults: fc.boolean(),
      phases: fc.subarray(PHASES, { minLength: 1 }).map((p) => p.join(',')),
      gate: fc.constantFrom('signal', 'detect', 'helm', 'none') as fc.Arbitrary<never>,
      failurePolicy: fc.constantFrom('ask', 'abort') as fc.Arbitrary<never>,
      allowEmpty: fc.boolean(),
      dryRun: fc.boolean(),
      heartbeatTimeout: fc.constantFrom('5s', '60s', '1m30s', '2h', '1.5m', '500ms'),
      checks: fc.record({
        skipCheck: fc.array(fc.constantFrom(...SKIPPABLE_CHECKS), { minLength: 1, maxLength: 3 }),
        skipReason: fc.stringMatching(/^[a-z][a-z ]{0,20}$/),
        by: fc.stringMatching(/^[a-z]{1,8}@[a-z]{1,8}$/),
      }),
    },
    { requiredKeys: [] },
  )
  .map(({ checks, ...o }) => ({ ...o, ...checks }));

const target: ClusterTarget = { cluster: 'host', kube: { context: 'host' }, source: 'flag' };

describe('fuzz: CLI flags → workflow input', () => {
  it('any flags give a valid workflow input or a ValidationError naming the flag or field', () => {
    fc.assert(
      fc.property(anyOptions, (o) => {
        const outcome = bounded('runInput', () => acceptOrReject(ValidationError, () => runInput(o, target)));
        if (outcome.ok) {
          assert.deepEqual(validateUpgradeInput(outcome.value), []);
          return;
        }
        const message = outcome.error.message;
        const names =
          /^--[a-z-]+/.test(message) ||
          /^invalid upgrade input:\n( {2}[A-Za-z[\].0-9_-]+: .*\n?)+$/.test(message);
        assert.ok(names, `the refusal names no flag or input field: ${message}`);
      }),
      fuzzParameters(300),
    );
  });

  it('valid flags are accepted, and the input says what the flags said (also after JSON)', () => {
    fc.assert(
      fc.property(validOptions, (o) => {
        const outcome = acceptOrReject(ValidationError, () => runInput(o, target));
        assert.ok(outcome.ok, `refused: ${outcome.ok ? '' : outcome.error.message}`);
        const input = outcome.value;
        assert.deepEqual(validateUpgradeInput(JSON.parse(JSON.stringify(input))), []);
        assert.deepEqual(
          input.configFiles,
          (o.config ?? []).map((f) => path.resolve(f)),
        );
        assert.deepEqual(input.phases, o.phases?.split(','));
        assert.equal(input.gate, o.gate);
        assert.equal(input.failurePolicy, o.failurePolicy);
        assert.equal(input.dryRun, o.dryRun === true ? true : undefined);
        assert.equal(input.useDefaults, o.defaults === false ? false : undefined);
        assert.equal(input.tuning?.heartbeatTimeout, o.heartbeatTimeout);
        assert.deepEqual(
          input.skipChecks?.map((s) => s.name),
          o.skipCheck ? [...new Set(o.skipCheck)] : undefined,
        );
      }),
      fuzzParameters(300),
    );
  });

  it('a duration the input accepts is a positive one the Go duration parser reads, and formats back', () => {
    fc.assert(
      fc.property(goDuration, (d) => {
        const accepted = validateUpgradeInput({ cluster: 'x', tuning: { heartbeatTimeout: d } }).length === 0;
        const parsed = acceptOrReject(ValidationError, () => parseDuration(d));
        // A timeout of zero (`0h`, `0.1ns`) is read by the parser but is no timeout: the input refuses it.
        const positive = parsed.ok && parsed.value > 0;
        assert.equal(
          accepted,
          positive,
          `${d}: input ${accepted ? 'accepts' : 'refuses'}, parser ${parsed.ok ? `reads ${parsed.value} ms` : 'refuses'}`,
        );
        if (parsed.ok && Number.isSafeInteger(Math.round(parsed.value * 1e6))) {
          assert.equal(parseDuration(formatDuration(parsed.value)), parsed.value);
        }
      }),
      fuzzParameters(300),
    );
  });

  it('any duration text is read or refused with a ValidationError that quotes it', () => {
    fc.assert(
      fc.property(fc.oneof(text, goDuration, fc.string({ unit: 'binary', maxLength: 12 })), (d) => {
        const outcome = bounded('parseDuration', () =>
          acceptOrReject(ValidationError, () => parseDuration(d)),
        );
        if (outcome.ok) assert.ok(Number.isFinite(outcome.value));
        else assert.ok(outcome.error.message.includes(JSON.stringify(d)), outcome.error.message);
      }),
      fuzzParameters(300),
    );
  });

  it('a kubeconfig context always becomes a DNS label, the same one each time', () => {
    fc.assert(
      fc.property(
        fc.oneof(oddKey, fc.string({ maxLength: 100 }), fc.string({ unit: 'binary', maxLength: 80 })),
        (context) => {
          const name = clusterNameFromContext(context);
          assert.match(name, DNS_LABEL);
          assert.equal(clusterNameFromContext(context), name);
        },
      ),
      fuzzParameters(300),
    );
  });

  describe('cluster target from fake kubeconfigs', () => {
    let dir: string;
    let n = 0;
    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'ks-fuzz-cli-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    const contextName = fc.oneof(
      oddKey,
      fc.string({ minLength: 1, maxLength: 70 }),
      fc.constantFrom('Admin@Kind', 'arn:aws:eks:eu-west-1:1:cluster/x'),
    );
    const kubeconfig = fc.oneof(
      // A well-formed kubeconfig with these contexts; current-context one of them, another or none.
      fc
        .tuple(
          fc.uniqueArray(contextName, { minLength: 1, maxLength: 3 }),
          fc.option(fc.oneof(fc.nat(), contextName)),
        )
        .map(([contexts, current]) =>
          toYaml({
            apiVersion: 'v1',
            kind: 'Config',
            clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
            users: [{ name: 'u', user: { token: 't' } }],
            contexts: contexts.map((name) => ({ name, context: { cluster: 'c', user: 'u' } })),
            ...(current === null
              ? {}
              : {
                  'current-context':
                    typeof current === 'number' ? contexts[current % contexts.length] : current,
                }),
          }),
        ),
      yamlNoise,
      fc.constant(''),
    );

    it('any kubeconfig and flags: a DNS-label cluster name or a ValidationError, and a valid input', async () => {
      await fc.assert(
        fc.asyncProperty(
          kubeconfig,
          fc.record(
            {
              cluster: fc.oneof(fc.stringMatching(DNS_LABEL), text),
              context: contextName,
              inCluster: fc.boolean(),
              missingFile: fc.boolean(),
            },
            { requiredKeys: [] },
          ),
          async (content, { missingFile, ...flags }) => {
            const file = path.join(dir, `kubeconfig-${n++}`);
            if (missingFile !== true) await writeFile(file, content);
            const o = { ...flags, kubeconfig: file };
            const outcome = await boundedAsync('clusterTarget', () =>
              acceptOrRejectAsync(ValidationError, () => clusterTarget(o)),
            );
            if (!outcome.ok) {
              const badName = flags.cluster !== undefined && !DNS_LABEL.test(flags.cluster);
              assert.ok(badName || flags.context === '', outcome.error.message);
              assert.match(outcome.error.message, badName ? /^cluster name '/ : /^--context is empty/);
              return;
            }
            const t = outcome.value;
            assert.match(t.cluster, DNS_LABEL);
            if (flags.cluster !== undefined) assert.equal(t.cluster, flags.cluster);
            if (flags.inCluster === true) assert.deepEqual(t.kube, { inCluster: true });
            else {
              assert.equal(t.kube.kubeconfig, path.resolve(file));
              if (flags.context !== undefined) assert.equal(t.kube.context, flags.context);
              if (t.source === 'context') assert.equal(t.cluster, clusterNameFromContext(t.context ?? ''));
            }
            // The target goes into the workflow input as it is: valid, or refused with its field named.
            const input = acceptOrReject(ValidationError, () => runInput({}, t));
            if (!input.ok) assert.match(input.error.message, /^invalid upgrade input:\n {2}kube\.context: /);
          },
        ),
        fuzzParameters(100),
      );
    });
  });

  it('regression: run --allow-empty gives a valid workflow input that carries allowEmpty', () => {
    assert.equal(runInput({ allowEmpty: true }, target).allowEmpty, true);
  });

  it('regression: a duration beyond 2^63 ns is refused before the workflow starts', () => {
    assert.deepEqual(validateUpgradeInput({ cluster: 'x', tuning: { heartbeatTimeout: '2562048.0h' } }), [
      'tuning.heartbeatTimeout: 2562048.0h is longer than a duration can be (about 292 years)',
    ]);
  });

  it('regression: an empty --context is refused, not turned into a cluster name', async () => {
    await assert.rejects(clusterTarget({ context: '', kubeconfig: '/nonexistent' }), /--context is empty/);
  });

  it('leaves no unhandled rejection', () => {
    unhandled.assertNone();
  });
});
