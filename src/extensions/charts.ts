// Extension charts (reference §3.5–§3.7): where a chart comes from (the chart ConfigMap first, then
// the extensions museum), the CRDs inside it, and copying it to every cluster.
import https from 'node:https';
import * as yaml from 'js-yaml';
import { CustomResourceDefinitionResource, type CustomResourceDefinition } from '../api/core.js';
import type { Cluster } from '../api/shared.js';
import type { ExtensionRef } from '../config/types.js';
import { KsUpgradeError } from '../errors.js';
import type { ResourceClient } from '../kube/client.js';
import { waitForCrdEstablished } from '../kube/crd.js';
import { clientForCluster } from '../kubesphere/clusters.js';
import { readTar } from '../util/tar.js';
import { isRecord } from '../util/object.js';
import type { WaitReporter } from '../util/wait.js';
import { readChartFromConfigMap, writeChartConfigMap } from './index.js';

/** The museum URL of an extension's chart, as the original builds it. */
export function museumChartUrl(name: string, version: string): string {
  return `https://extensions-museum.kubesphere-system.svc/charts/${name}-${version}.tgz`;
}

export interface ChartSourceOptions {
  /** Override the museum URL (tests, or a museum reachable under another name). */
  museumUrl?: string;
  /**
   * Accept the museum's certificate without verification. The original always did (its museum
   * serves a self-signed certificate); ks-upgrade verifies unless told otherwise.
   */
  insecureSkipTLSVerify?: boolean;
  timeoutMs?: number;
}

function download(url: string, o: ChartSourceOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      { rejectUnauthorized: !o.insecureSkipTLSVerify, timeout: o.timeoutMs ?? 10_000 },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`failed to fetch ${url}: HTTP ${res.statusCode ?? '?'}`));
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve(Buffer.concat(chunks));
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timed out fetching ${url}`)));
    req.on('error', reject);
  });
}

/**
 * An extension's chart archive: from the chart ConfigMap when present (members, and the host after
 * its chart sync), otherwise from the extensions museum.
 */
export async function fetchExtensionChart(
  client: ResourceClient,
  ref: Pick<ExtensionRef, 'name' | 'version'>,
  options: ChartSourceOptions = {},
): Promise<Buffer> {
  try {
    return await readChartFromConfigMap(client, ref.name, ref.version);
  } catch (cmErr) {
    const url = options.museumUrl ?? museumChartUrl(ref.name, ref.version);
    try {
      return await download(url, options);
    } catch (err) {
      throw new KsUpgradeError(
        `chart ${ref.name}-${ref.version} is neither in its ConfigMap (${cmErr instanceof Error ? cmErr.message : ''}) nor downloadable: ${err instanceof Error ? err.message : String(err)}`,
        {
          hint: 'upgrade the host first (it copies charts to every cluster); a worker outside the cluster cannot reach the museum service',
        },
      );
    }
  }
}

/** The CustomResourceDefinitions under any `crds/` directory of a chart or its sub-charts. */
export function chartCrds(archive: Uint8Array): CustomResourceDefinition[] {
  const crds: CustomResourceDefinition[] = [];
  for (const entry of readTar(archive)) {
    if (!/(^|\/)crds\/[^/]+\.(ya?ml|json)$/.test(entry.path)) continue;
    for (const doc of yaml.loadAll(entry.data.toString('utf8'))) {
      if (
        isRecord(doc) &&
        doc.kind === 'CustomResourceDefinition' &&
        doc.apiVersion === 'apiextensions.k8s.io/v1'
      ) {
        crds.push(doc as unknown as CustomResourceDefinition);
      }
    }
  }
  return crds;
}

/**
 * Server-side applies the CRDs of an extension's chart (field manager ks-upgrade; `force` takes
 * fields over from other managers) and waits until each is Established.
 */
export async function applyExtensionCrds(
  client: ResourceClient,
  ref: Pick<ExtensionRef, 'name' | 'version'>,
  options: ChartSourceOptions & {
    force?: boolean;
    skip?: (crd: CustomResourceDefinition) => boolean;
    /** Where the waits for Established log and heartbeat (a job passes its context). */
    reporter?: WaitReporter;
  } = {},
): Promise<string[]> {
  const applied: string[] = [];
  for (const crd of chartCrds(await fetchExtensionChart(client, ref, options))) {
    if (options.skip?.(crd)) continue;
    await client.apply(CustomResourceDefinitionResource, crd, { force: options.force ?? false });
    await waitForCrdEstablished(client, crd.metadata.name ?? '', { reporter: options.reporter ?? {} });
    applied.push(crd.metadata.name ?? '');
  }
  return applied;
}

/**
 * Copies the chart to the chart ConfigMap of every cluster (host included), so members can read it
 * later. A failure on one cluster is reported, not swallowed (the original ignored them).
 */
export async function syncExtensionChart(
  local: ResourceClient,
  ref: Pick<ExtensionRef, 'name' | 'version'>,
  clusters: Cluster[],
  options: ChartSourceOptions = {},
): Promise<Record<string, 'created' | 'updated' | 'unchanged'>> {
  const chart = await fetchExtensionChart(local, ref, options);
  const result: Record<string, 'created' | 'updated' | 'unchanged'> = {};
  const failures: string[] = [];
  for (const cluster of clusters.length > 0 ? clusters : [undefined]) {
    const name = cluster?.metadata.name ?? 'host';
    try {
      const client = cluster ? await clientForCluster(local, cluster) : local;
      result[name] = await writeChartConfigMap(client, ref.name, ref.version, chart);
    } catch (err) {
      failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (failures.length > 0) {
    throw new KsUpgradeError(`copying chart ${ref.name}-${ref.version} failed on ${failures.join('; ')}`, {
      hint: 'check that the host reaches these clusters with their kubeconfigs, then retry the step',
    });
  }
  return result;
}
