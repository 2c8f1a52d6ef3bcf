// Uploaded chart archives: v3 keeps them in MinIO (bucket `app-store`, key `<workspace>/<version>`),
// v4 in its S3 storage (kubesphere.yaml `s3`, key `<version>`) or, without S3, in ConfigMaps
// `extension-openpitrix/<version>` (reference §4.3 s3Pre / s3After). The store carries them between
// the phases under the version name.
import {
  GetObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import * as yaml from 'js-yaml';
import { ConfigMapResource, SecretResource, ServiceResource } from '../../api/core.js';
import { ApplicationVersionResource } from '../../api/v4/index.js';
import { KsUpgradeError } from '../../errors.js';
import { KUBESPHERE_CONFIG, KUBESPHERE_NAMESPACE } from '../../kubesphere/index.js';
import { isRecord } from '../../util/object.js';
import { backupStatus, loadBackupRaw, recordAbsent } from '../patterns.js';
import type { JobContext } from '../types.js';
import { APPLICATION_NAMESPACE, CHART_BINARY_KEY, MINIO_NAME, V3, V4 } from './constants.js';
import type { HelmApplicationVersion } from './convert.js';

/** Where to reach an S3 API, and as whom. Never logged. */
export interface S3Target {
  endpoint: string;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** MinIO or the v4 S3 storage is unreachable or refuses us. */
export class ChartStorageError extends KsUpgradeError {}

function s3Client(t: S3Target): S3Client {
  return new S3Client({
    endpoint: t.endpoint,
    region: t.region,
    forcePathStyle: t.forcePathStyle,
    ...(t.credentials ? { credentials: t.credentials } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
  });
}

function storageError(what: string, t: S3Target, err: unknown): ChartStorageError {
  const detail = err instanceof S3ServiceException ? `${err.name}: ${err.message}` : (err as Error).message;
  return new ChartStorageError(`${what} at ${t.endpoint} (bucket ${t.bucket}) failed: ${detail}`, {
    cause: err,
    hint: 'check the endpoint (jobs.application.dynamicOptions.minioEndpoint for MinIO, kubesphere.yaml s3 for v4), the bucket and the credentials, then retry',
  });
}

/** The MinIO object key of a version's chart: `<workspace>/<version name>` (just the name without a workspace). */
export function minioKey(version: HelmApplicationVersion): string {
  const ws = version.metadata.labels?.[V3.workspace];
  const name = version.metadata.name ?? '';
  return ws ? `${ws}/${name}` : name;
}

/**
 * s3Pre: downloads every version's chart from the v3 MinIO into the store (once: a chart already
 * stored is not fetched again). No MinIO Service → nothing to do. The keys come from Secret
 * kubesphere-system/minio (`accesskey`, `secretkey`), never from the config. A chart missing in
 * MinIO is reported and skipped, as in the original; any other failure (unreachable, refused) stops
 * the step — the original turned those into warnings and silently lost every chart.
 */
export async function downloadCharts(
  ctx: JobContext,
  versions: readonly HelmApplicationVersion[],
  minio: { endpoint: string; bucket: string; region: string },
): Promise<{ stored: number; missing: string[] }> {
  if (!(await ctx.kube.tryGet(ServiceResource, MINIO_NAME, KUBESPHERE_NAMESPACE))) {
    ctx.logger.info(`Service ${KUBESPHERE_NAMESPACE}/${MINIO_NAME} not found: no uploaded charts to keep`);
    for (const v of versions) {
      await recordAbsent(
        ctx,
        v.metadata.name ?? '',
        `no MinIO (Service ${KUBESPHERE_NAMESPACE}/${MINIO_NAME} not found)`,
      );
    }
    return { stored: 0, missing: versions.map((v) => v.metadata.name ?? '') };
  }
  const secret = await ctx.kube.tryGet(SecretResource, MINIO_NAME, KUBESPHERE_NAMESPACE);
  const decode = (k: string) => Buffer.from(secret?.data?.[k] ?? '', 'base64').toString('utf8');
  if (!secret || !decode('accesskey') || !decode('secretkey')) {
    throw new ChartStorageError(
      `Secret ${KUBESPHERE_NAMESPACE}/${MINIO_NAME} with accesskey and secretkey not found`,
      {
        hint: 'the app store MinIO runs but its credentials Secret is missing or incomplete; restore it, then retry',
      },
    );
  }
  const target: S3Target = {
    ...minio,
    forcePathStyle: true,
    credentials: { accessKeyId: decode('accesskey'), secretAccessKey: decode('secretkey') },
  };
  const client = s3Client(target);
  const missing: string[] = [];
  let stored = 0;
  try {
    for (const [i, v] of versions.entries()) {
      const name = v.metadata.name ?? '';
      ctx.heartbeat({ step: 'download charts', done: i, total: versions.length, message: name });
      const status = await backupStatus(ctx, name);
      if (status !== 'missing') {
        if (status === 'taken') stored++;
        else missing.push(name);
        continue;
      }
      let bytes: Uint8Array;
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: target.bucket, Key: minioKey(v) }));
        bytes = (await res.Body?.transformToByteArray()) ?? new Uint8Array();
      } catch (err) {
        if (err instanceof NoSuchKey) {
          missing.push(name);
          ctx.logger.warn(
            `chart of ${name} not found in MinIO (${minioKey(v)}); this version will have no chart`,
          );
          await recordAbsent(ctx, name, `no chart in MinIO bucket ${target.bucket} at ${minioKey(v)}`);
          continue;
        }
        throw storageError(`downloading ${minioKey(v)}`, target, err);
      }
      await ctx.store.saveRawOnce(name, bytes, { contentType: 'application/gzip' });
      stored++;
    }
  } finally {
    client.destroy();
  }
  return { stored, missing };
}

/**
 * The `s3` section of the v4 kubesphere.yaml. Keys are matched case-insensitively, so both the v4
 * spelling (`accessKeyID`, `secretAccessKey`) and lower-case keys work — the original matched only
 * lower-case keys and never found the credentials. Undefined when no endpoint is set.
 */
export async function v4S3Target(ctx: JobContext): Promise<S3Target | undefined> {
  const cm = await ctx.kube.tryGet(ConfigMapResource, KUBESPHERE_CONFIG.name, KUBESPHERE_CONFIG.namespace);
  const parsed = yaml.load(cm?.data?.[KUBESPHERE_CONFIG.key] ?? '');
  const s3 = isRecord(parsed) && isRecord(parsed.s3) ? parsed.s3 : undefined;
  if (!s3) return undefined;
  const get = (name: string): unknown =>
    Object.entries(s3).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
  const text = (name: string): string => {
    const v = get(name);
    return typeof v === 'string' ? v : '';
  };
  const endpoint = text('endpoint');
  if (!endpoint) return undefined;
  const disableSSL = get('disableSSL') !== false; // KubeSphere's default: plain HTTP in-cluster
  const accessKeyId = text('accessKeyID');
  const secretAccessKey = text('secretAccessKey');
  const sessionToken = text('sessionToken');
  return {
    endpoint: /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint)
      ? endpoint
      : `${disableSSL ? 'http' : 'https'}://${endpoint}`,
    region: text('region') || 'us-east-1',
    bucket: text('bucket'),
    forcePathStyle: get('forcePathStyle') !== false,
    ...(accessKeyId && secretAccessKey
      ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } }
      : {}),
  };
}

/**
 * s3After: puts each uploaded version's stored chart where v4 reads it — the v4 S3 storage (key =
 * version name) when kubesphere.yaml configures one, else ConfigMap extension-openpitrix/<version>.
 * Only versions migrated from `backedUp` (the v3 version names) are handled. Versions whose chart
 * pre-upgrade recorded as absent (not in MinIO) are reported; a chart never fetched is an error.
 * (The original had the S3 condition inverted: it skipped the charts it had and uploaded empty
 * objects for the ones it had not.)
 */
export async function restoreCharts(
  ctx: JobContext,
  backedUp: ReadonlySet<string>,
): Promise<{ target: string; written: number; missing: string[] }> {
  const versions = (
    await ctx.kube.listIfServed(ApplicationVersionResource, {
      labelSelector: `${V4.repoName}=${V4.upload}`,
    })
  ).filter((v) => backedUp.has(v.metadata.name ?? ''));
  const s3 = await v4S3Target(ctx);
  const client = s3 ? s3Client(s3) : undefined;
  const missing: string[] = [];
  let written = 0;
  try {
    for (const [i, v] of versions.entries()) {
      const name = v.metadata.name ?? '';
      ctx.heartbeat({ step: 'restore charts', done: i, total: versions.length, message: name });
      const chart = await loadBackupRaw(ctx, name);
      if (!chart) {
        missing.push(name);
        continue;
      }
      if (s3 && client) {
        try {
          await client.send(
            new PutObjectCommand({
              Bucket: s3.bucket,
              Key: name,
              Body: chart,
              ContentDisposition: `attachment; filename="${name}"`,
            }),
          );
        } catch (err) {
          throw storageError(`uploading ${name}`, s3, err);
        }
      } else {
        await ctx.kube.createIfAbsent(ConfigMapResource, {
          metadata: { name, namespace: APPLICATION_NAMESPACE },
          binaryData: { [CHART_BINARY_KEY]: Buffer.from(chart).toString('base64') },
        });
      }
      written++;
    }
  } finally {
    client?.destroy();
  }
  if (missing.length > 0)
    ctx.logger.warn(`no chart stored for ${missing.length} uploaded versions: ${missing.join(', ')}`);
  return {
    target: s3 ? `s3 bucket ${s3.bucket}` : `ConfigMaps in ${APPLICATION_NAMESPACE}`,
    written,
    missing,
  };
}
