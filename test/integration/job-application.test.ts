// The application job on a real API server and the dev S3 server (standing in for the v3 MinIO and
// the v4 S3 storage): backups (credentials encrypted) and uploaded charts, then the v4 app store —
// statuses set through the status sub-resource, colliding release names reported, charts uploaded
// to S3 (the original's inverted condition fixed, credentials read with v4's key spelling) or kept
// in ConfigMaps, and the openpitrix InstallPlan.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ConfigMapResource, SecretResource } from '../../src/api/core.js';
import { ClusterConfigurationResource } from '../../src/api/v3/index.js';
import {
  ApplicationReleaseResource,
  ApplicationResource,
  ApplicationVersionResource,
  CategoryResource,
  InstallPlanResource,
  RepoResource,
} from '../../src/api/v4/index.js';
import type { JobConfig } from '../../src/config/types.js';
import {
  ChartStorageError,
  MissingBackupError,
  RELEASE_PROBLEMS_KEY,
  ReleaseNameConflictError,
  applicationJobFactory,
  backupKey,
  chartShortName,
  chartVersionName,
  releaseSpecHash,
  toCategory,
  toRelease,
  toRepo,
  type ReleaseProblem,
} from '../../src/jobs/application/index.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runJobPhase,
  type Phase,
} from '../../src/jobs/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { KubeObject } from '../../src/kube/types.js';
import { PlaintextSecretError, createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { makeChart } from '../helpers/charts.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { devEnv, repoRoot, uniqueName } from '../helpers/env.js';
import { applyYamlFiles } from '../helpers/fixtures.js';
import { playCoreUpgrade } from '../helpers/kubesphere.js';
import { devS3Client } from '../helpers/s3.js';
import { configWithJobs } from '../helpers/jobs.js';

const V3 = path.join(repoRoot, 'test/fixtures/kubesphere-v3');

interface V2 extends KubeObject {
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

describe('application job (reference §4.3)', () => {
  let cluster: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;
  let s3: S3Client;
  const minioBucket = uniqueName('app-store');
  const v4Bucket = uniqueName('ks-apps');
  const charts = new Map<string, Buffer>();
  let kubesphereYaml = '';

  const config = (dynamicOptions: Record<string, unknown> = {}): JobConfig => ({
    enabled: true,
    priority: 100,
    extensionRef: { name: 'openpitrix', version: '2.0.1' },
    dynamicOptions: { minioEndpoint: devEnv().s3Endpoint, minioBucket, ...dynamicOptions },
  });
  /** Runs one phase of a job built from `jobConfig`, as the workflow's activity does. */
  const run = async (
    phase: Phase,
    options: { jobConfig?: JobConfig; cluster?: string; store?: ResourceStore } = {},
  ) => {
    const registry = new JobRegistry();
    registry.register(applicationJobFactory);
    const full = configWithJobs({ application: options.jobConfig ?? config() });
    const [job] = instantiateJobs(full, registry);
    assert.ok(job);
    return runJobPhase(
      job.job,
      createJobContext({
        job: 'application',
        phase,
        cluster: { name: options.cluster ?? 'host' },
        kube,
        store: options.store ?? store,
        config: job.config,
        logger: createMemoryLogger(),
      }),
    );
  };
  const scoped = () => store.scope('host', 'application');
  const setS3Config = async (s3Section: string | undefined): Promise<void> => {
    await kube.apply(ConfigMapResource, {
      metadata: { name: 'kubesphere-config', namespace: 'kubesphere-system' },
      data: { 'kubesphere.yaml': kubesphereYaml + (s3Section ?? '') },
    });
  };

  before(async () => {
    cluster = await startEphemeralCluster('application');
    kube = cluster.connection.client;
    await applyYamlFiles(kube, [
      `${V3}/crds/cluster.kubesphere.io.yaml`,
      `${V3}/crds/installer.kubesphere.io.yaml`,
      `${V3}/crds/tenant.kubesphere.io.yaml`,
      `${V3}/crds/application.kubesphere.io.yaml`,
      `${V3}/objects/core.yaml`,
      `${V3}/objects/application.yaml`,
    ]);
    await kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { openpitrix: { store: { enabled: true } } },
    });
    kubesphereYaml =
      (await kube.get(ConfigMapResource, 'kubesphere-config', 'kubesphere-system')).data?.[
        'kubesphere.yaml'
      ] ?? '';

    // The dev S3 server plays the v3 MinIO: the uploaded charts under <workspace>/<version>, and
    // Secret kubesphere-system/minio with its keys.
    const env = devEnv();
    s3 = devS3Client();
    for (const bucket of [minioBucket, v4Bucket]) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    for (const [key, name] of [
      ['demo-ws/appv-nginx-1', 'nginx'],
      ['system-workspace/appv-redis-1', 'redis'],
    ] as const) {
      const chart = await makeChart(name, { 'values.yaml': `name: ${name}\n` });
      charts.set(key.split('/')[1] ?? '', chart);
      await s3.send(new PutObjectCommand({ Bucket: minioBucket, Key: key, Body: chart }));
    }
    await kube.apply(SecretResource, {
      metadata: { name: 'minio', namespace: 'kubesphere-system' },
      data: {
        accesskey: Buffer.from(env.s3AccessKeyId).toString('base64'),
        secretkey: Buffer.from(env.s3SecretAccessKey).toString('base64'),
      },
    });
    store = await createResourceStore(
      {
        local: { path: await mkdtemp(path.join(tmpdir(), 'application-store-')) },
        encryption: { keyEnv: 'K' },
      },
      { K: randomBytes(32).toString('hex') },
    );
  });
  after(async () => {
    for (const bucket of [minioBucket, v4Bucket]) {
      const { Contents = [] } = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
      for (const o of Contents) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
      await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    }
    s3.destroy();
    await cluster.remove();
  });

  it('names releases and categories as v4 does', () => {
    assert.equal(chartShortName('redis'), 'redis');
    assert.equal(
      chartShortName('MySQL_Operator-Enterprise'),
      createHash('md5').update('mysql_operator-enterprise').digest('hex').slice(0, 10),
    );
    assert.equal(chartVersionName('17.3.7'), '17.3.7');
    assert.equal(
      chartVersionName('8.0.32+build.1'),
      createHash('sha1').update('8.0.32+build.1').digest('hex').slice(0, 12),
    );
    // Go's json.Marshal of ApplicationReleaseSpec, field order appID, appVersionID, values, appType.
    assert.equal(
      releaseSpecHash({ appID: 'a', appVersionID: 'b', appType: 'helm' }),
      createHash('md5').update('{"appID":"a","appVersionID":"b","appType":"helm"}').digest('hex'),
    );
    // The v3 HelmRelease JSON names: spec.appId / spec.appVerId (helmrelease_types.go, v3.4.1).
    assert.deepEqual(
      toRelease(
        {
          metadata: { name: 'rls-x', labels: { 'kubesphere.io/namespace': 'ns' } },
          spec: {
            name: 'x',
            chartName: 'nginx',
            chartVersion: '1.0.0',
            repoId: 'repo-helm',
            appId: 'app-1',
            appVerId: 'appv-1',
          },
        },
        'host',
      ).object.spec,
      { appID: 'app-1', appVersionID: 'appv-1', appType: 'helm' },
    );
    // The v4 RepoCredential has no S3 keys: only its own fields are copied.
    assert.deepEqual(
      toRepo({
        metadata: { name: 'repo-s3' },
        spec: { url: 's3://b', credential: { username: 'u', accessKeyID: 'AK', secretAccessKey: 'SK' } },
      }).object.spec,
      { url: 's3://b', credential: { username: 'u' }, syncPeriod: 0 },
    );
    assert.deepEqual(
      toCategory({ metadata: { name: 'ctg-x' }, spec: { name: 'X', description: 'documentation' } })?.object
        .spec,
      {
        icon: 'documentation',
      },
    );
  });

  it('refuses to keep repo credentials in plaintext', async () => {
    const plain = await createResourceStore({
      local: { path: await mkdtemp(path.join(tmpdir(), 'plain-')) },
    });
    await assert.rejects(run('pre-upgrade', { store: plain }), (err: Error) => {
      assert.ok(err.cause instanceof PlaintextSecretError, String(err));
      return true;
    });
  });

  it('stops when MinIO cannot be reached instead of losing every chart', async () => {
    await assert.rejects(
      run('pre-upgrade', {
        cluster: 'unreachable',
        jobConfig: config({ minioEndpoint: 'http://127.0.0.1:1' }),
      }),
      (err: Error) => {
        assert.ok(err.cause instanceof ChartStorageError, String(err));
        return true;
      },
    );
  });

  it('pre-upgrade backs up the v3 app store (credentials encrypted) and its uploaded charts, once', async () => {
    assert.equal((await run('pre-upgrade')).outcome, 'succeeded');
    const s = scoped();
    const keys = await s.list();
    for (const plural of [
      'helmcategories',
      'helmapplications',
      'helmapplicationversions',
      'helmrepos',
      'helmreleases',
    ])
      assert.ok(keys.includes(backupKey(plural)), plural);
    assert.equal((await s.stat(backupKey('helmrepos'))).sensitive, true);
    assert.equal((await s.stat(backupKey('helmreleases'))).sensitive, true);
    assert.equal((await s.stat(backupKey('helmcategories'))).sensitive, false);
    for (const [name, chart] of charts) assert.deepEqual(Buffer.from(await s.loadRaw(name)), chart, name);
    assert.ok(!keys.includes('appv-nginx-2'), 'its chart is not in MinIO');

    const before = new Map<string, string>();
    for (const k of keys) before.set(k, Buffer.from(await s.loadRaw(k)).toString('base64'));
    await run('pre-upgrade');
    for (const [k, v] of before) assert.equal(Buffer.from(await s.loadRaw(k)).toString('base64'), v, k);
  });

  it('post-upgrade without the backups of pre-upgrade stops and says so', async () => {
    await assert.rejects(run('post-upgrade', { cluster: 'fresh' }), (err: Error) => {
      assert.ok(err.cause instanceof MissingBackupError, String(err));
      assert.match(err.message, /pre-upgrade has not run/);
      return true;
    });
  });

  it('post-upgrade stops before creating releases whose names collide, and says which', async () => {
    await playCoreUpgrade(kube, [['openpitrix', '2.0.1']]);
    await setS3Config(
      `s3:\n  endpoint: ${devEnv().s3Endpoint}\n  region: us-east-1\n  disableSSL: true\n  forcePathStyle: true\n` +
        `  accessKeyID: ${devEnv().s3AccessKeyId}\n  secretAccessKey: ${devEnv().s3SecretAccessKey}\n  bucket: ${v4Bucket}\n`,
    );
    await assert.rejects(run('post-upgrade'), (err: Error) => {
      assert.ok(err.cause instanceof ReleaseNameConflictError, String(err));
      assert.match(err.message, /web: 2 v3 releases share this name/);
      return true;
    });
    assert.deepEqual(await kube.listAll(ApplicationReleaseResource), [], 'no release created');
    const problems = await scoped().load<ReleaseProblem[]>(RELEASE_PROBLEMS_KEY);
    assert.deepEqual(problems, [
      {
        name: 'web',
        releases: ['rls-web-demo (host/demo-project)', 'rls-web-dev (host/dev-project)'],
        reason:
          '2 v3 releases share this name (in different clusters or namespaces); v4 release names are cluster-wide',
      },
    ]);
  });

  it('post-upgrade with releaseNameConflicts: skip migrates everything else, with statuses', async () => {
    assert.equal(
      (await run('post-upgrade', { jobConfig: config({ releaseNameConflicts: 'skip' }) })).outcome,
      'succeeded',
    );

    const categories = (await kube.listAll(CategoryResource)) as V2[];
    assert.deepEqual(
      categories.map((c) => [
        c.metadata.name,
        c.spec?.icon,
        c.metadata.annotations?.['kubesphere.io/description'],
      ]),
      [
        ['ctg-database', 'database', undefined],
        ['ctg-tools', undefined, 'Build and CI tools, curated by the platform team.'],
      ],
    );

    const apps = (await kube.listAll(ApplicationResource)) as V2[];
    assert.deepEqual(
      apps.map((a) => a.metadata.name),
      ['app-nginx', 'app-redis'],
    );
    const [nginx, redis] = apps;
    assert.ok(nginx && redis);
    assert.equal(nginx.metadata.labels?.['application.kubesphere.io/app-category-name'], 'ctg-database');
    assert.equal(nginx.metadata.annotations?.['application.kubesphere.io/latest-app-version'], '1.2.3');
    assert.deepEqual(nginx.status, { state: 'active', updateTime: '2024-02-01T10:00:00Z' });
    assert.equal(redis.metadata.labels?.['kubesphere.io/workspace'], '', 'system-workspace apps are global');

    const versions = (await kube.listAll(ApplicationVersionResource)) as V2[];
    const v1 = versions.find((v) => v.metadata.name === 'appv-nginx-1');
    const v2 = versions.find((v) => v.metadata.name === 'appv-nginx-2');
    assert.ok(v1 && v2);
    assert.equal(v1.metadata.ownerReferences?.[0]?.uid, nginx.metadata.uid);
    assert.equal(v1.spec?.versionName, '1.2.3');
    assert.deepEqual(v1.status, { state: 'active', userName: 'alice', updated: '2024-02-01T09:00:00Z' });
    assert.ok(v2.status?.updated, 'falls back to the v3 creation time');
    assert.equal(v2.status.state, 'draft');

    const repo = (await kube.get(RepoResource, 'repo-bitnami')) as V2;
    assert.equal((repo.spec?.credential as { username?: string }).username, 'alice');
    assert.equal(repo.spec?.syncPeriod, 3600);
    // v4 requires spec.syncPeriod; a v3 repo without one (0, omitted by Go) gets 0, as v3 meant.
    assert.equal(((await kube.get(RepoResource, 'repo-public')) as V2).spec?.syncPeriod, 0);
    assert.equal(repo.metadata.labels?.['kubesphere.io/workspace'], 'demo-ws');

    const releases = (await kube.listAll(ApplicationReleaseResource)) as V2[];
    assert.deepEqual(
      releases.map((r) => r.metadata.name),
      ['blog', 'cache', 'mysql-prod'],
    );
    const [blog, cache, mysql] = releases;
    assert.ok(blog && cache && mysql);
    // A built-in repository release keeps its v3 IDs: HelmRelease spec.appId / spec.appVerId.
    assert.deepEqual(blog.spec, { appID: 'app-nginx', appVersionID: 'appv-nginx-2', appType: 'helm' });
    assert.equal(blog.metadata.labels?.['application.kubesphere.io/appversion-id'], 'appv-nginx-2');
    assert.equal(cache.metadata.labels?.['kubesphere.io/cluster'], 'member1');
    const cacheSpec = {
      appID: 'repo-bitnami-redis',
      appVersionID: 'repo-bitnami-redis-17.3.7',
      values: Buffer.from('auth:\n  password: fixture-release-values-password-do-not-leak\n').toString(
        'base64',
      ),
      appType: 'helm',
    };
    assert.deepEqual(cache.spec, cacheSpec);
    // The status the original lost: set through the status sub-resource.
    assert.deepEqual(cache.status, {
      state: 'failed',
      message: 'timed out waiting for the condition',
      lastUpdate: '2024-02-05T10:00:00Z',
      specHash: releaseSpecHash(cacheSpec),
    });
    assert.equal(mysql.metadata.labels?.['kubesphere.io/cluster'], 'host', 'from the cc hostClusterName');
    assert.equal(mysql.status?.state, 'active');
    assert.equal(
      mysql.spec?.appVersionID,
      `repo-bitnami-${chartShortName('MySQL_Operator-Enterprise')}-${chartVersionName('8.0.32+build.1')}`,
    );

    // Charts uploaded to the v4 S3 storage under the version name.
    for (const [name, chart] of charts) {
      const res = await s3.send(new GetObjectCommand({ Bucket: v4Bucket, Key: name }));
      assert.deepEqual(Buffer.from((await res.Body?.transformToByteArray()) ?? []), chart, name);
    }
    await assert.rejects(s3.send(new GetObjectCommand({ Bucket: v4Bucket, Key: 'appv-nginx-2' })));
    assert.ok(await kube.tryGet(InstallPlanResource, 'openpitrix'));
  });

  it('post-upgrade again writes nothing, and completes a release whose status write was lost', async () => {
    const snapshot = async () =>
      (
        await Promise.all(
          [
            CategoryResource,
            ApplicationResource,
            ApplicationVersionResource,
            RepoResource,
            ApplicationReleaseResource,
          ].map((rt) => kube.listAll(rt)),
        )
      )
        .flat()
        .map((o) => `${o.kind ?? ''}/${o.metadata.name ?? ''}@${o.metadata.resourceVersion ?? ''}`);
    const first = await snapshot();
    assert.equal(
      (await run('post-upgrade', { jobConfig: config({ releaseNameConflicts: 'skip' }) })).outcome,
      'succeeded',
    );
    assert.deepEqual(await snapshot(), first);

    // A run that crashed between creating `cache` and writing its status.
    const cache = (await kube.get(ApplicationReleaseResource, 'cache')) as V2;
    await kube.delete(ApplicationReleaseResource, 'cache', undefined, { clearFinalizers: true });
    const {
      resourceVersion: _rv,
      uid: _uid,
      creationTimestamp: _ct,
      managedFields: _mf,
      ...metadata
    } = cache.metadata;
    await kube.create(ApplicationReleaseResource, { metadata, spec: cache.spec } as V2);
    assert.equal(((await kube.get(ApplicationReleaseResource, 'cache')) as V2).status, undefined);
    await run('post-upgrade', { jobConfig: config({ releaseNameConflicts: 'skip' }) });
    assert.deepEqual(((await kube.get(ApplicationReleaseResource, 'cache')) as V2).status, cache.status);
  });

  it('without v4 S3 storage the charts go into ConfigMaps of extension-openpitrix', async () => {
    await setS3Config(undefined);
    await run('post-upgrade', { jobConfig: config({ releaseNameConflicts: 'skip' }) });
    for (const [name, chart] of charts) {
      const cm = await kube.get(ConfigMapResource, name, 'extension-openpitrix');
      assert.deepEqual(Buffer.from(cm.binaryData?.BinaryKey ?? '', 'base64'), chart, name);
    }
    assert.equal(await kube.tryGet(ConfigMapResource, 'appv-nginx-2', 'extension-openpitrix'), undefined);
  });

  it('is skipped where the app store is off, and checks its options', async () => {
    await kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { openpitrix: { store: { enabled: false } } },
    });
    assert.equal((await run('pre-upgrade')).outcome, 'skipped');
    assert.throws(
      () =>
        applicationJobFactory.create(
          { minioEndpoint: 'minio:9000' },
          { name: 'openpitrix', version: '2.0.1' },
        ),
      /http\(s\) URL/,
    );
    assert.throws(
      () =>
        applicationJobFactory.create(
          { releaseNameConflicts: 'rename' },
          { name: 'openpitrix', version: '2.0.1' },
        ),
      /fail or skip/,
    );
    assert.throws(() => applicationJobFactory.create({}, undefined), /needs name and version/);
  });
});
