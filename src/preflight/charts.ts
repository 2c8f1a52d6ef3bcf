// Charts for the preflight: where a chart is (a local .tgz, an HTTP URL, a Helm repository, the
// extensions museum, an OCI registry), fetching it bounded in size, and the images its values
// name — what an air-gapped registry must hold before `helm upgrade` runs.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { KsUpgradeError, ValidationError } from '../errors.js';
import { isRecord } from '../util/object.js';
import { readTar } from '../util/tar.js';
import { httpRequest, type HttpRequestOptions } from './http.js';
import { formatImageRef, parseImageRef, type RegistryClient } from './registry.js';

/** Where a chart comes from. */
export type ChartSource =
  | { kind: 'file'; path: string }
  | { kind: 'http'; url: string }
  | { kind: 'oci'; ref: string }
  | { kind: 'repo'; repo: string; name: string; version: string };

/** The largest chart archive read (the ks-core chart is about 100 KiB). */
export const MAX_CHART_BYTES = 20 << 20;

/**
 * A chart reference as written in the config: a `.tgz` path, an `http(s)://…/x.tgz` URL,
 * `oci://registry/path/name:version`, or a chart name with the Helm repository it is in (`repo`,
 * `version`: helm's `--repo` and `--version`).
 */
export function parseChartSource(
  chart: string,
  key: string,
  repo?: { repo?: string; version?: string },
): ChartSource {
  if (chart.trim() === '') {
    throw new ValidationError(`${key}: expected a chart reference`, {
      hint: 'a .tgz path, an https:// URL of a .tgz, oci://registry/path/chart:version, or a chart name with a repository',
    });
  }
  if (repo?.repo) {
    if (!repo.version) {
      throw new ValidationError(`${key}: a chart in a Helm repository needs its version`, {
        hint: `set the version next to ${key} (e.g. checks.coreChartVersion: 1.1.4)`,
      });
    }
    return { kind: 'repo', repo: repo.repo, name: chart, version: repo.version };
  }
  if (chart.startsWith('oci://')) {
    const ref = parseImageRef(chart.slice('oci://'.length));
    if (!ref.tag && !ref.digest) {
      throw new ValidationError(`${key}: ${chart} names no version`, {
        hint: `write ${chart}:<chart version>`,
      });
    }
    return { kind: 'oci', ref: chart.slice('oci://'.length) };
  }
  if (/^https?:\/\//.test(chart)) return { kind: 'http', url: chart };
  return { kind: 'file', path: path.resolve(chart) };
}

/**
 * Where an extension's chart is, given the configured source of extension charts: an OCI prefix
 * (`oci://registry/path` → `…/<name>:<version>`), or the base URL of a Helm repository or of an
 * extensions museum (`<base>/index.yaml`, else the museum's `<base>/charts/<name>-<version>.tgz`).
 */
export function extensionChartSource(base: string, name: string, version: string): ChartSource {
  if (base.startsWith('oci://'))
    return { kind: 'oci', ref: `${base.slice(6).replace(/\/+$/, '')}/${name}:${version}` };
  return { kind: 'repo', repo: base, name, version };
}

/** One line naming the source (no credentials: URLs with user info are stripped). */
export function describeChartSource(s: ChartSource): string {
  const clean = (u: string): string => u.replace(/\/\/[^@/]*@/, '//');
  switch (s.kind) {
    case 'file':
      return s.path;
    case 'http':
      return clean(s.url);
    case 'oci':
      return `oci://${s.ref}`;
    case 'repo':
      return `${s.name}-${s.version} from ${clean(s.repo)}`;
  }
}

/** The chart is not where its source says, or cannot be read. */
export class ChartUnavailableError extends KsUpgradeError {}

const HELM_CHART_LAYER = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';

/** Fetches a chart archive. */
export async function fetchChart(
  source: ChartSource,
  o: { registry: RegistryClient; http?: HttpRequestOptions },
): Promise<Buffer> {
  const get = async (url: string): Promise<{ status: number; body: Buffer }> =>
    httpRequest(url, { timeoutMs: 30_000, ...o.http, maxBytes: MAX_CHART_BYTES });
  const where = describeChartSource(source);
  switch (source.kind) {
    case 'file':
      try {
        return await readFile(source.path);
      } catch (err) {
        throw new ChartUnavailableError(
          `chart ${where} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        );
      }
    case 'http': {
      const res = await get(source.url);
      if (res.status !== 200) throw new ChartUnavailableError(`chart ${where}: HTTP ${res.status}`);
      return res.body;
    }
    case 'oci': {
      const ref = parseImageRef(source.ref);
      const { json } = await o.registry
        .getManifest(ref, 'application/vnd.oci.image.manifest.v1+json')
        .catch((err: unknown) => {
          throw new ChartUnavailableError(
            `chart ${where}: ${err instanceof Error ? err.message : String(err)}`,
          );
        });
      const layers = (isRecord(json) && Array.isArray(json.layers) ? json.layers : []) as {
        mediaType?: string;
        digest?: string;
      }[];
      const layer = layers.find((l) => l.mediaType === HELM_CHART_LAYER);
      if (!layer?.digest)
        throw new ChartUnavailableError(`${where} is not a Helm chart (no ${HELM_CHART_LAYER} layer)`);
      return o.registry.getBlob(ref, layer.digest, MAX_CHART_BYTES);
    }
    case 'repo': {
      const base = source.repo.replace(/\/+$/, '');
      const index = await get(`${base}/index.yaml`);
      if (index.status === 200) {
        const entries = (
          yaml.load(index.body.toString('utf8')) as { entries?: Record<string, unknown[]> } | null
        )?.entries;
        const entry = (entries?.[source.name] ?? []).find(
          (e): e is { version: string; urls?: string[] } =>
            isRecord(e) && String(e.version) === source.version,
        );
        const url = entry?.urls?.[0];
        if (!url) {
          const versions = (entries?.[source.name] ?? []).map((e) => (isRecord(e) ? String(e.version) : '?'));
          throw new ChartUnavailableError(
            `chart ${where}: the repository index has ${versions.length > 0 ? `versions ${versions.slice(0, 8).join(', ')}` : `no chart ${source.name}`}`,
          );
        }
        const res = await get(new URL(url, `${base}/`).toString());
        if (res.status !== 200) throw new ChartUnavailableError(`chart ${where}: ${url}: HTTP ${res.status}`);
        return res.body;
      }
      // An extensions museum serves its charts at a fixed path (the original's museumChartUrl).
      const res = await get(`${base}/charts/${source.name}-${source.version}.tgz`);
      if (res.status !== 200)
        throw new ChartUnavailableError(`chart ${where}: HTTP ${res.status} (no index.yaml either)`);
      return res.body;
    }
  }
}

/** What a chart says about itself and the images its values name. */
export interface ChartImages {
  name: string;
  version: string;
  appVersion?: string;
  /** The Kubernetes versions the chart declares it supports (Chart.yaml `kubeVersion`). */
  kubeVersion?: string;
  /** Canonical references (`registry/repository:tag`), sorted, without duplicates. */
  images: string[];
}

interface ChartFiles {
  chartYaml: Record<string, unknown>;
  values: Record<string, unknown>;
  subcharts: Map<string, ChartFiles>;
}

/** Splits a chart archive into its Chart.yaml, values.yaml and sub-charts (dirs or nested .tgz). */
function chartFiles(archive: Uint8Array): ChartFiles {
  const entries = readTar(archive);
  const root = entries[0]?.path.split('/')[0] ?? '';
  return chartAt(
    entries.map((e) => ({ path: e.path.slice(root.length + 1), data: e.data })),
    '',
  );
}

function chartAt(entries: { path: string; data: Buffer }[], prefix: string): ChartFiles {
  const file = (name: string): Record<string, unknown> => {
    const e = entries.find((x) => x.path === `${prefix}${name}`);
    const parsed = e ? yaml.load(e.data.toString('utf8')) : undefined;
    return isRecord(parsed) ? parsed : {};
  };
  const subcharts = new Map<string, ChartFiles>();
  const under = `${prefix}charts/`;
  for (const e of entries) {
    if (!e.path.startsWith(under)) continue;
    const rest = e.path.slice(under.length);
    if (/^[^/]+\.tgz$/.test(rest)) {
      const sub = chartFiles(e.data);
      const name =
        typeof sub.chartYaml.name === 'string' ? sub.chartYaml.name : rest.replace(/-[\d.]+.*\.tgz$/, '');
      subcharts.set(name, sub);
    } else if (/^[^/]+\/Chart\.yaml$/.test(rest)) {
      const dir = rest.split('/')[0] ?? '';
      subcharts.set(dir, chartAt(entries, `${under}${dir}/`));
    }
  }
  return { chartYaml: file('Chart.yaml'), values: file('values.yaml'), subcharts };
}

const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;

/**
 * The images of a chart: every `image` map (`{registry, repository, tag, digest}`, the Bitnami and
 * KubeSphere convention) or `image: repo:tag` string in its values and in the values of its enabled
 * sub-charts. Per-image `registry`/`tag` win over `global.imageRegistry`/`global.tag`, which win
 * over Docker Hub / the chart's appVersion — what the charts' `common.images.image` helper renders.
 * Sections switched off (`enabled: false`) and sub-charts whose `condition` is false are skipped:
 * an air-gapped registry need not hold images that will never run. `overrides` are values merged
 * over the chart's (e.g. `global.imageRegistry` of an air-gapped mirror).
 */
export function chartImages(archive: Uint8Array, overrides: Record<string, unknown> = {}): ChartImages {
  const files = chartFiles(archive);
  const images = new Set<string>();
  collectChart(files, overrides, undefined, images);
  const c = files.chartYaml;
  return {
    name: str(c.name) ?? '',
    version: str(c.version) ?? '',
    ...(str(c.appVersion) ? { appVersion: str(c.appVersion) } : {}),
    ...(str(c.kubeVersion) ? { kubeVersion: str(c.kubeVersion) } : {}),
    images: [...images].sort(),
  };
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isRecord(b) && isRecord(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function getPathValue(values: Record<string, unknown>, dotted: string): unknown {
  let cur: unknown = values;
  for (const k of dotted.split('.')) cur = isRecord(cur) ? cur[k] : undefined;
  return cur;
}

function collectChart(
  files: ChartFiles,
  overrides: Record<string, unknown>,
  parentGlobal: Record<string, unknown> | undefined,
  out: Set<string>,
): void {
  let values = deepMerge(files.values, overrides);
  if (parentGlobal) values = deepMerge(values, { global: parentGlobal });
  const global = isRecord(values.global) ? values.global : {};
  const appVersion = str(files.chartYaml.appVersion);
  const deps = Array.isArray(files.chartYaml.dependencies) ? files.chartYaml.dependencies : [];
  const subKeys = new Set<string>();
  for (const dep of deps) {
    if (!isRecord(dep) || typeof dep.name !== 'string') continue;
    const key = typeof dep.alias === 'string' ? dep.alias : dep.name;
    subKeys.add(key);
    const condition = typeof dep.condition === 'string' ? dep.condition.split(',')[0]?.trim() : undefined;
    if (condition && getPathValue(values, condition) === false) continue;
    const sub = files.subcharts.get(dep.name);
    if (!sub) continue;
    collectChart(sub, isRecord(values[key]) ? values[key] : {}, global, out);
  }
  walk(values, global, appVersion, out, subKeys, true);
}

function walk(
  node: unknown,
  global: Record<string, unknown>,
  appVersion: string | undefined,
  out: Set<string>,
  skipKeys: Set<string>,
  top: boolean,
): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, global, appVersion, out, skipKeys, false);
    return;
  }
  if (!isRecord(node) || node.enabled === false) return;
  for (const [key, value] of Object.entries(node)) {
    if (top && (key === 'global' || skipKeys.has(key))) continue;
    if (key === 'image' && typeof value === 'string' && value.includes('/')) {
      addImage(out, value, global);
      continue;
    }
    if (isRecord(value) && typeof value.repository === 'string' && value.repository !== '') {
      const registry = str(value.registry) ?? str(global.imageRegistry) ?? 'docker.io';
      const tag = str(value.tag) ?? str(global.tag) ?? appVersion;
      const digest = str(value.digest);
      addImage(
        out,
        `${registry}/${value.repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`,
        global,
      );
      continue;
    }
    walk(value, global, appVersion, out, skipKeys, false);
  }
}

function addImage(out: Set<string>, ref: string, global: Record<string, unknown>): void {
  try {
    const parsed = parseImageRef(ref);
    // A bare `image: repo:tag` string follows global.imageRegistry when it names no registry.
    const mirror = str(global.imageRegistry);
    if (mirror && !/^[^/]*[.:][^/]*\//.test(ref) && !ref.startsWith('localhost/')) parsed.registry = mirror;
    out.add(formatImageRef(parsed));
  } catch {
    // A template expression or another value that is not an image: nothing to check.
  }
}
