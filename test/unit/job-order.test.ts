// Job ordering and planning: the original's rule (priority desc, then name asc in byte order),
// registration errors, and the phase runner's enabled/not-implemented/rollback handling.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobConfig, UpgradeConfig } from '../../src/config/types.js';
import {
  DuplicateJobError,
  JobPhaseError,
  JobRegistry,
  instantiateJobs,
  orderJobs,
  planJobs,
  runJobPhase,
  runPhase,
  type JobContext,
  type JobProgress,
  type UpgradeJob,
} from '../../src/jobs/index.js';
import { ORIGINAL_ORDER, ORIGINAL_PRIORITIES } from '../helpers/original-jobs.js';

function jobConfig(priority: number, enabled = true): JobConfig {
  return { enabled, priority, dynamicOptions: {} };
}

function config(jobs: Record<string, JobConfig>): UpgradeConfig {
  return {
    storage: { local: { path: '/tmp/unused' } },
    validator: {
      ksVersion: { enabled: false },
      extensionsMuseum: {
        enabled: false,
        namespace: 'kubesphere-system',
        name: 'extensions-museum',
        syncInterval: 0,
        watchTimeout: 300_000,
      },
    },
    jobs,
    upgrade: { gate: 'none' },
  };
}

function recordingJob(log: string[], name: string, extra: Partial<UpgradeJob> = {}): UpgradeJob {
  return {
    preUpgrade: () => Promise.resolve(void log.push(`${name}:pre`)),
    postUpgrade: () => Promise.resolve(void log.push(`${name}:post`)),
    rollback: () => Promise.resolve(void log.push(`${name}:rollback`)),
    ...extra,
  };
}

function fakeContext(job: string, phase: JobContext['phase']): JobContext {
  const noop = (): void => undefined;
  return {
    job,
    phase,
    cluster: { name: 'host' },
    logger: { debug: noop, info: noop, warn: noop, error: noop },
    options: {},
    extensionRef: undefined,
    config: jobConfig(0),
    heartbeat: noop,
    signal: new AbortController().signal,
  } as unknown as JobContext;
}

describe('job ordering', () => {
  it('orders the 20 original jobs exactly as the original tool does', () => {
    const shuffled = Object.entries(ORIGINAL_PRIORITIES)
      .map(([name, priority]) => ({ name, priority }))
      .reverse();
    assert.deepEqual(
      orderJobs(shuffled).map((j) => j.name),
      ORIGINAL_ORDER,
    );
  });

  it('breaks ties by byte order, not locale order', () => {
    const jobs = ['b', 'B', 'a-b', 'a', 'ab'].map((name) => ({ name, priority: 1 }));
    assert.deepEqual(
      orderJobs(jobs).map((j) => j.name),
      ['B', 'a', 'a-b', 'ab', 'b'],
    );
  });

  it('plans every registered job, with the reason it will or will not run', () => {
    const registry = new JobRegistry();
    for (const name of ['core', 'iam', 'devops', 'gateway']) {
      registry.register({ name, create: () => recordingJob([], name) });
    }
    const plan = planJobs(
      config({ core: jobConfig(10000), iam: jobConfig(999), devops: jobConfig(800, false) }),
      registry,
    );
    assert.deepEqual(
      plan.map((p) => [p.name, p.enabled, p.reason]),
      [
        ['core', true, 'enabled, priority 10000'],
        ['iam', true, 'enabled, priority 999'],
        ['devops', false, 'disabled in config (jobs.devops.enabled: false)'],
        ['gateway', false, 'not configured (no jobs.gateway entry)'],
      ],
    );
  });

  it('refuses a second factory with the same name', () => {
    const registry = new JobRegistry();
    registry.register({ name: 'core', create: () => recordingJob([], 'core') });
    assert.throws(() => {
      registry.register({ name: 'core', create: () => recordingJob([], 'core') });
    }, DuplicateJobError);
    assert.throws(() => {
      registry.register({ name: 'Bad_Name', create: () => recordingJob([], 'x') });
    }, /DNS label/);
  });

  it('gives each job a private copy of its options and extensionRef', () => {
    const registry = new JobRegistry();
    const seen: unknown[] = [];
    registry.register({
      name: 'devops',
      create: (options, ref) => {
        seen.push(options, ref);
        (options as { mutated?: boolean }).mutated = true;
        return recordingJob([], 'devops');
      },
    });
    const cfg = config({
      devops: {
        ...jobConfig(800),
        dynamicOptions: { rerun: 'false' },
        extensionRef: { name: 'devops', version: '1.1.2' },
      },
    });
    instantiateJobs(cfg, registry);
    assert.deepEqual(seen, [
      { rerun: 'false', mutated: true },
      { name: 'devops', version: '1.1.2' },
    ]);
    assert.deepEqual(cfg.jobs.devops?.dynamicOptions, { rerun: 'false' }, 'the config itself is untouched');
  });
});

describe('runPhase', () => {
  const registry = new JobRegistry();
  const log: string[] = [];
  registry.register({ name: 'core', create: () => recordingJob(log, 'core') });
  registry.register({
    name: 'iam',
    create: () => recordingJob(log, 'iam', { isEnabled: () => Promise.resolve(false) }),
  });
  registry.register({ name: 'devops', create: () => recordingJob(log, 'devops', { rollback: undefined }) });
  registry.register({
    name: 'network',
    create: () =>
      recordingJob(log, 'network', {
        postUpgrade: () => Promise.reject(new Error('boom')),
      }),
  });
  const jobs = instantiateJobs(
    config({ core: jobConfig(10000), iam: jobConfig(999), devops: jobConfig(800), network: jobConfig(100) }),
    registry,
  );

  it('runs enabled jobs in order and skips those whose isEnabled says no', async () => {
    log.length = 0;
    const results = await runPhase('pre-upgrade', jobs, (j, phase) => fakeContext(j.name, phase));
    assert.deepEqual(log, ['core:pre', 'devops:pre', 'network:pre']);
    assert.deepEqual(
      results.map((r) => [r.name, r.outcome]),
      [
        ['core', 'succeeded'],
        ['iam', 'skipped'],
        ['devops', 'succeeded'],
        ['network', 'succeeded'],
      ],
    );
  });

  it('does not consult isEnabled in rollback, runs rollback in reverse order, skips jobs without one', async () => {
    log.length = 0;
    const results = await runPhase('rollback', jobs, (j, phase) => fakeContext(j.name, phase));
    assert.deepEqual(log, ['network:rollback', 'iam:rollback', 'core:rollback']);
    assert.equal(results.find((r) => r.name === 'devops')?.outcome, 'not-implemented');
  });

  it('stops at the first failing job with a JobPhaseError naming job and phase', async () => {
    log.length = 0;
    await assert.rejects(
      runPhase('post-upgrade', jobs, (j, phase) => fakeContext(j.name, phase)),
      (err: unknown) => {
        assert.ok(err instanceof JobPhaseError);
        assert.equal(err.job, 'network');
        assert.equal(err.phase, 'post-upgrade');
        assert.match(err.message, /\[Job\] network post-upgrade failed: boom/);
        return true;
      },
    );
    assert.deepEqual(log, ['core:post', 'devops:post']);
  });
});

describe('runJobPhase keeps the phase alive', () => {
  it('heartbeats on its own while the job is silent, repeating the latest progress the job reported', async () => {
    const beats: (JobProgress | undefined)[] = [];
    const ctx = {
      ...fakeContext('quiet', 'pre-upgrade'),
      heartbeat: (p?: JobProgress) => void beats.push(p),
    };
    const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    let beatsWhileSilent = 0;
    const job = recordingJob([], 'quiet', {
      preUpgrade: async (c: JobContext) => {
        await pause(200);
        beatsWhileSilent = beats.length;
        c.heartbeat({ step: 'list pods', done: 1, total: 3 });
        const reported = beats.length;
        await pause(200);
        // The keep-alive beats after the report carry the job's progress.
        assert.ok(beats.length > reported + 1, `no keep-alive beats after the report: ${beats.length}`);
      },
    });
    assert.equal((await runJobPhase(job, ctx, { keepAliveMs: 20 })).outcome, 'succeeded');
    assert.ok(
      beatsWhileSilent >= 2,
      `the runner sent ${beatsWhileSilent} heartbeats while the job was silent`,
    );
    assert.ok(
      beats.slice(0, beatsWhileSilent).every((b) => b === undefined),
      'no progress invented',
    );
    assert.deepEqual(beats.at(-1), { step: 'list pods', done: 1, total: 3 });
    // Stopped with the phase: no beat after it returned.
    const after = beats.length;
    await pause(100);
    assert.equal(beats.length, after);
  });
});
