import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Addresses and test credentials of the dev servers, as written by `deploy/dev/up`. */
export interface DevEnv {
  stateDir: string;
  clusters: string[];
  kubeconfig: string;
  kubeContext: string;
  temporalAddress: string;
  temporalNamespace: string;
  temporalUiUrl: string;
  temporalCliPath: string;
  s3Endpoint: string;
  s3Bucket: string;
  s3Region: string;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
  /** The OCI registry (`host:port`, plain HTTP) and the pinned helm and crane binaries. */
  ociRegistry?: string;
  helmPath?: string;
  cranePath?: string;
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function envFilePath(): string {
  const state = process.env.KS_UPGRADE_DEV_STATE ?? path.join(repoRoot, '.dev');
  return path.join(state, 'env');
}

/** Parses the env file (KEY=value lines); comments and blank lines are skipped. */
export function parseEnvFile(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) vars.set(m[1], m[2]);
  }
  return vars;
}

let cached: DevEnv | undefined;

/**
 * The dev servers' env. Tests are meant to run through `npm test`, which starts the servers; run
 * alone, a test fails here with the command that fixes it rather than with a connection error.
 */
export function devEnv(): DevEnv {
  if (cached) return cached;
  const file = envFilePath();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`dev servers are not up (no ${file}); run \`npm run dev:up\` or use \`npm test\``);
  }
  const vars = parseEnvFile(text);
  const need = (key: string): string => {
    const v = vars.get(key);
    if (v === undefined || v === '') throw new Error(`${file} has no ${key}; re-run \`npm run dev:up\``);
    return v;
  };
  cached = {
    stateDir: need('KS_DEV_STATE'),
    clusters: need('KS_DEV_CLUSTERS').split(','),
    kubeconfig: need('KUBECONFIG'),
    kubeContext: need('KUBE_CONTEXT'),
    temporalAddress: need('TEMPORAL_ADDRESS'),
    temporalNamespace: need('TEMPORAL_NAMESPACE'),
    temporalUiUrl: need('TEMPORAL_UI_URL'),
    temporalCliPath: need('TEMPORAL_CLI_PATH'),
    s3Endpoint: need('S3_ENDPOINT'),
    s3Bucket: need('S3_BUCKET'),
    s3Region: need('S3_REGION'),
    s3AccessKeyId: need('AWS_ACCESS_KEY_ID'),
    s3SecretAccessKey: need('AWS_SECRET_ACCESS_KEY'),
  };
  for (const [field, key] of [
    ['ociRegistry', 'OCI_REGISTRY'],
    ['helmPath', 'HELM_PATH'],
    ['cranePath', 'CRANE_PATH'],
  ] as const) {
    const v = vars.get(key);
    if (v) cached[field] = v;
  }
  return cached;
}

/** The registry, helm and crane of the dev servers (an env file from before they existed: re-run up). */
export function helmTools(): { registry: string; helm: string; crane: string } {
  const env = devEnv();
  if (!env.ociRegistry || !env.helmPath || !env.cranePath) {
    throw new Error('the dev env has no OCI_REGISTRY/HELM_PATH/CRANE_PATH; run `npm run dev:up` again');
  }
  return { registry: env.ociRegistry, helm: env.helmPath, crane: env.cranePath };
}

/** A name unique to this test run, safe as a namespace, task queue, bucket prefix or workflow ID. */
export function uniqueName(prefix: string): string {
  const rand = Math.random().toString(36).slice(2, 8);
  return `${prefix}-${Date.now().toString(36)}-${rand}`.toLowerCase();
}
