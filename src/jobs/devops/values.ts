// The DevOps extension's values, computed from a cluster's v3 backups (reference §4.4 post-upgrade):
// pure functions, no cluster access. The original's shapes are kept (`agent.apiserver`,
// `agent.jenkins.Master.smtp.EMAIL_SMTP_HOST`, …) with its bugs fixed:
//  - every section may be absent (no ArgoCD release, sections missing from its values, no
//    devops-apiserver Deployment): absent input gives absent output, never a crash;
//  - the user's per-cluster overrides are merged on top of the computed ones (the original decoded
//    them into a nil target and always failed);
//  - the Jenkins admin password, SMTP password and Sonar token are returned separately, never as
//    values: they go into a Secret the values only name (docs/jobs/devops.md, "Credentials").
import * as yaml from 'js-yaml';
import type {
  Container,
  Deployment,
  PersistentVolume,
  PersistentVolumeClaim,
  Secret,
} from '../../api/core.js';
import { ValidationError } from '../../errors.js';
import { getPath, isRecord } from '../../util/object.js';
import {
  APISERVER_WORKLOAD,
  CONTROLLER_WORKLOAD,
  CREDENTIALS_SECRET,
  CREDENTIAL_KEYS,
  JENKINS_PVC,
  JENKINS_WORKLOAD,
  LEGACY_JENKINS_PVC,
} from './constants.js';

type Values = Record<string, unknown>;

export interface ResourceValues {
  cpu?: string;
  memory?: string;
}
export interface Resources {
  requests?: ResourceValues;
  limits?: ResourceValues;
}
export interface Workload {
  replicas?: number;
  image?: { registry?: string; pullSecrets?: unknown[] };
  resources?: Resources;
}

/** Jenkins credentials of one cluster, by Secret key (see {@link CREDENTIAL_KEYS}). */
export type JenkinsCredentials = Partial<
  Record<(typeof CREDENTIAL_KEYS)[keyof typeof CREDENTIAL_KEYS], string>
>;

/** What a cluster's v3 DevOps looked like, read back from its backups. */
export interface ClusterBackups {
  /** Deployments of kubesphere-devops-system. */
  deployments: Deployment[];
  /** User values of the `devops` release. */
  systemValues: Values;
  /** User values of the ArgoCD release, undefined when there was no ArgoCD. */
  argocdValues: Values | undefined;
  /** The Jenkins PV, and the PVCs of kubesphere-devops-system. */
  jenkinsPv: PersistentVolume | undefined;
  pvcs: PersistentVolumeClaim[];
  /** Secret kubesphere-devops-system/devops-jenkins (decoded by the caller's client: base64 data). */
  jenkinsSecret: Secret | undefined;
}

/** One cluster's result: the override values, the credentials, and the values of the extension itself. */
export interface ClusterValues {
  override: Values;
  credentials: JenkinsCredentials;
  /** `extension.apiserver` from this cluster's devops-apiserver (used for the host). */
  apiserver: Workload | undefined;
}

/** `{requests, limits}` × `{cpu, memory}` of a container, as the API server wrote them. */
export function resourcesOf(container: Container | undefined): Resources | undefined {
  const pick = (r: Record<string, string> | undefined): ResourceValues | undefined => {
    if (!r) return undefined;
    const v: ResourceValues = {};
    if (r.cpu !== undefined) v.cpu = r.cpu;
    if (r.memory !== undefined) v.memory = r.memory;
    return Object.keys(v).length > 0 ? v : undefined;
  };
  const requests = pick(container?.resources?.requests);
  const limits = pick(container?.resources?.limits);
  if (!requests && !limits) return undefined;
  return { ...(requests ? { requests } : {}), ...(limits ? { limits } : {}) };
}

/** `{replicas, resources}` of a Deployment (first container), the original's Workload.FromDeployment. */
export function workloadOf(deployment: Deployment): Workload {
  const w: Workload = {};
  if (deployment.spec?.replicas !== undefined) w.replicas = deployment.spec.replicas;
  const resources = resourcesOf(deployment.spec?.template?.spec?.containers?.[0]);
  if (resources) w.resources = resources;
  return w;
}

const ARGOCD_SECTIONS = [
  'dex',
  'controller',
  'applicationSet',
  'redis',
  'notifications',
  'repoServer',
  'server',
] as const;

/** Minimum dex limits of the v4 extension (dex fails to start below them). */
const DEX_MIN_MEMORY_MI = 1024;
const DEX_MIN_CPU_M = 500;

/** A quantity from YAML values: `500m`, `1Gi`, or a plain number of cores/bytes. */
function quantity(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function workloadFromValues(section: unknown): Workload | undefined {
  if (!isRecord(section)) return undefined;
  const w: Workload = {};
  if (typeof section.replicas === 'number') w.replicas = section.replicas;
  if (isRecord(section.image)) {
    const image: Workload['image'] = {};
    if (typeof section.image.registry === 'string' && section.image.registry !== '')
      image.registry = section.image.registry;
    if (Array.isArray(section.image.pullSecrets) && section.image.pullSecrets.length > 0)
      image.pullSecrets = section.image.pullSecrets as unknown[];
    // An image block without registry or pull secrets says nothing: dropped (the original did this
    // for dex, applicationSet and redis only, and crashed when one of them was absent).
    if (Object.keys(image).length > 0) w.image = image;
  }
  if (isRecord(section.resources)) {
    const r: Resources = {};
    for (const kind of ['requests', 'limits'] as const) {
      const src = section.resources[kind];
      if (!isRecord(src)) continue;
      const v: ResourceValues = {};
      const cpu = quantity(src.cpu);
      const memory = quantity(src.memory);
      if (cpu !== undefined) v.cpu = cpu;
      if (memory !== undefined) v.memory = memory;
      if (Object.keys(v).length > 0) r[kind] = v;
    }
    if (Object.keys(r).length > 0) w.resources = r;
  }
  return w;
}

/** Raises `value` (e.g. `256Mi`) to `min` when it is in `unit` and below it; other units stay. */
function atLeast(value: string | undefined, unit: string, min: number): string {
  if (value === undefined) return `${min}${unit}`;
  const m = new RegExp(`^(\\d+)${unit}$`).exec(value);
  if (m?.[1] !== undefined && Number(m[1]) < min) return `${min}${unit}`;
  return value;
}

/**
 * `agent.argocd` from the ArgoCD release values: each section's replicas, image registry/pull
 * secrets and resources; dex limits raised to 1024Mi / 500m (the original's rule — set when
 * absent, raised when lower in Mi / m units). Sections absent from the values stay absent, except
 * dex, whose minimum limits are always set.
 */
export function argocdOverride(values: Values): Values {
  const out: Values = {};
  for (const name of ARGOCD_SECTIONS) {
    const w = workloadFromValues(values[name]);
    if (w && Object.keys(w).length > 0) out[name] = w;
  }
  const dex: Workload = (out.dex as Workload | undefined) ?? {};
  const limits = dex.resources?.limits;
  dex.resources = {
    ...dex.resources,
    limits: {
      ...limits,
      memory: atLeast(limits?.memory, 'Mi', DEX_MIN_MEMORY_MI),
      cpu: atLeast(limits?.cpu, 'm', DEX_MIN_CPU_M),
    },
  };
  out.dex = dex;
  return out;
}

/** The Jenkins PVC of a cluster: `devops-jenkins`, or `ks-jenkins` before KubeSphere 3.3. */
export function jenkinsPvcOf(pvcs: readonly PersistentVolumeClaim[]): PersistentVolumeClaim | undefined {
  return (
    pvcs.find((p) => p.metadata.name === JENKINS_PVC) ??
    pvcs.find((p) => p.metadata.name === LEGACY_JENKINS_PVC)
  );
}

function decodeSecretValue(secret: Secret | undefined, key: string): string | undefined {
  const data = secret?.data?.[key];
  if (data === undefined || data === '') return undefined;
  return Buffer.from(data, 'base64').toString('utf8');
}

/** Thrown when a cluster's backups lack what the override needs. */
export class DevOpsBackupError extends ValidationError {}

/**
 * `agent.jenkins` of one cluster, and its credentials: persistence from the Jenkins PV's claim,
 * Master resources, SMTP and SonarQube settings from the old Deployment's environment, service
 * type from the old values. Passwords and tokens are returned apart from the values.
 */
export function jenkinsOverride(
  cluster: string,
  b: ClusterBackups,
): { jenkins: Values; credentials: JenkinsCredentials } {
  const deployment = b.deployments.find((d) => d.metadata.name === JENKINS_WORKLOAD);
  const container = deployment?.spec?.template?.spec?.containers?.[0];
  if (!container) {
    throw new DevOpsBackupError(
      `failed to setup devops-jenkins master: cluster ${cluster} has no ${JENKINS_WORKLOAD} Deployment in its backup`,
      {
        hint: `re-run pre-upgrade on the host while DevOps v3 still runs on ${cluster}, or leave ${cluster} out of jobs.devops.extensionRef.clusterScheduling.placement.clusters`,
      },
    );
  }
  const claim = b.jenkinsPv?.spec?.claimRef?.name ?? jenkinsPvcOf(b.pvcs)?.metadata.name;
  const env = new Map<string, string>();
  for (const e of container.env ?? []) if (e.value !== undefined) env.set(e.name, e.value);

  const master: Values = {};
  const resources = resourcesOf(container);
  if (resources) master.resources = resources;
  const serviceType = getPath(b.systemValues, ['jenkins', 'Master', 'ServiceType']);
  if (typeof serviceType === 'string' && serviceType !== '') master.ServiceType = serviceType;

  const smtp: Values = {};
  for (const name of ['EMAIL_SMTP_HOST', 'EMAIL_SMTP_PORT', 'EMAIL_FROM_NAME', 'EMAIL_FROM_ADDR'] as const) {
    const v = env.get(name);
    if (v) smtp[name] = v;
  }
  if (env.get('EMAIL_USE_SSL')?.toLowerCase() === 'true') smtp.EMAIL_USE_SSL = true;
  if (Object.keys(smtp).length > 0) master.smtp = smtp;
  const sonarUrl = env.get('SONAR_SERVER_URL');
  if (sonarUrl) master.sonarqube = { serverUrl: sonarUrl };

  const credentials: JenkinsCredentials = {};
  const adminPassword = decodeSecretValue(b.jenkinsSecret, 'jenkins-admin-password');
  if (adminPassword) credentials[CREDENTIAL_KEYS.adminPassword] = adminPassword;
  const smtpPassword = env.get('EMAIL_FROM_PASS');
  if (smtpPassword) credentials[CREDENTIAL_KEYS.smtpPassword] = smtpPassword;
  const sonarToken = env.get('SONAR_AUTH_TOKEN');
  if (sonarToken) credentials[CREDENTIAL_KEYS.sonarToken] = sonarToken;
  const ref = credentialsReference(credentials);
  if (ref) master.credentialsSecret = ref;

  const jenkins: Values = {};
  if (claim) jenkins.persistence = { existingClaim: claim };
  jenkins.Master = master;
  return { jenkins, credentials };
}

/**
 * The values' pointer to the credentials Secret: its name and, per credential present, the key
 * holding it. The values never carry the credentials themselves.
 */
export function credentialsReference(credentials: JenkinsCredentials): Values | undefined {
  const ref: Values = {};
  if (credentials[CREDENTIAL_KEYS.adminPassword] !== undefined)
    ref.adminPasswordKey = CREDENTIAL_KEYS.adminPassword;
  if (credentials[CREDENTIAL_KEYS.smtpPassword] !== undefined)
    ref.smtpPasswordKey = CREDENTIAL_KEYS.smtpPassword;
  if (credentials[CREDENTIAL_KEYS.sonarToken] !== undefined) ref.sonarTokenKey = CREDENTIAL_KEYS.sonarToken;
  return Object.keys(ref).length > 0 ? { name: CREDENTIALS_SECRET, ...ref } : undefined;
}

/** Everything the extension gets for one cluster (before the user's overrides). */
export function clusterValues(cluster: string, b: ClusterBackups): ClusterValues {
  const agent: Values = {};
  let apiserver: Workload | undefined;
  const apiDeployment = b.deployments.find((d) => d.metadata.name === APISERVER_WORKLOAD);
  if (apiDeployment) {
    apiserver = workloadOf(apiDeployment);
    agent.apiserver = apiserver;
  }
  const controller = b.deployments.find((d) => d.metadata.name === CONTROLLER_WORKLOAD);
  if (controller) agent.controller = workloadOf(controller);
  if (b.argocdValues) agent.argocd = argocdOverride(b.argocdValues);
  const { jenkins, credentials } = jenkinsOverride(cluster, b);
  agent.jenkins = jenkins;
  return { override: { agent }, credentials, apiserver };
}

/**
 * Deep merge for values: maps merge key by key, anything else in `over` replaces what `base` has
 * (lists included), as Helm merges values. Neither input is changed.
 */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isRecord(b) && isRecord(v) ? mergeValues(b, v) : v;
  }
  return out;
}

/** Parses YAML text from the job's config that must be a mapping (empty text: `{}`). */
export function parseValuesText(text: string | undefined, where: string): Values {
  if (text === undefined || text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = yaml.load(text);
  } catch (err) {
    throw new ValidationError(`${where} is not valid YAML: ${(err as Error).message}`, {
      hint: `fix ${where} in the config file`,
    });
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isRecord(parsed)) {
    throw new ValidationError(`${where} must be a YAML mapping of values`, {
      hint: `fix ${where} in the config file`,
    });
  }
  return parsed;
}

export function valuesYaml(values: Values): string {
  return yaml.dump(values, { lineWidth: -1, noRefs: true });
}

/**
 * The per-cluster overrides of the InstallPlan: for each computed cluster its values with the
 * user's override for that cluster merged on top (the user wins); user overrides for other
 * clusters pass through unchanged.
 */
export function mergeOverrides(
  userOverrides: Record<string, string> | undefined,
  computed: ReadonlyMap<string, Values>,
): Record<string, string> {
  const out: Record<string, string> = { ...userOverrides };
  for (const [cluster, values] of computed) {
    const user = parseValuesText(
      userOverrides?.[cluster],
      `jobs.devops.extensionRef.clusterScheduling.overrides.${cluster}`,
    );
    out[cluster] = valuesYaml(mergeValues(values, user));
  }
  return out;
}

/**
 * The extension's own values (`extensionRef.config`) with `extension.apiserver.replicas` and
 * `.resources` taken from the host's v3 devops-apiserver where the user set none. The text is
 * rewritten only when something was added (a rewrite drops the YAML comments).
 */
export function extensionConfig(
  configText: string | undefined,
  hostApiserver: Workload | undefined,
): string | undefined {
  if (!hostApiserver) return configText;
  const values = parseValuesText(configText, 'jobs.devops.extensionRef.config');
  for (const [path, v] of [
    ['extension', values.extension],
    ['extension.apiserver', getPath(values, ['extension', 'apiserver'])],
  ] as const) {
    if (v !== undefined && v !== null && !isRecord(v)) {
      throw new ValidationError(`jobs.devops.extensionRef.config: ${path} must be a mapping`, {
        hint: 'fix jobs.devops.extensionRef.config in the config file',
      });
    }
  }
  const ext = isRecord(values.extension) ? { ...values.extension } : {};
  const api = isRecord(ext.apiserver) ? { ...ext.apiserver } : {};
  let added = false;
  if (api.replicas === undefined && hostApiserver.replicas !== undefined) {
    api.replicas = hostApiserver.replicas;
    added = true;
  }
  if (api.resources === undefined && hostApiserver.resources !== undefined) {
    api.resources = hostApiserver.resources;
    added = true;
  }
  if (!added) return configText;
  return valuesYaml({ ...values, extension: { ...ext, apiserver: api } });
}
