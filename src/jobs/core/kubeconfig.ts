// The kubeconfig prepare-upgrade writes into the host Cluster object: the cluster's in-cluster API
// address, its CA and the token of the `kubesphere` ServiceAccount, so that ks-core v4 can reach
// its own cluster through the Cluster object.
import * as yaml from 'js-yaml';
import { ConfigMapResource, SecretResource, ServiceResource, type Secret } from '../../api/core.js';
import type { ResourceClient } from '../../kube/client.js';
import { KubeSphereStateError } from '../../kubesphere/index.js';
import {
  HOST_KUBECONFIG_NAMES,
  KUBESPHERE_SERVICE_ACCOUNT,
  KUBESPHERE_SYSTEM,
  SERVICE_ACCOUNT_NAME_ANNOTATION,
} from './constants.js';

/** Used when the cluster has no `default/kubernetes` Service (never seen; kube-apiserver creates it). */
const FALLBACK_SERVER = 'https://kubernetes.default.svc:443';

/**
 * The API address pods of the target cluster use: `https://<clusterIP>:<port>` of Service
 * `default/kubernetes` — exactly what the original read from the pod's KUBERNETES_SERVICE_HOST/PORT.
 * Reading it from the cluster rather than from our own environment matters: the worker may run in
 * another cluster (fleet upgrades) or outside any.
 */
export async function inClusterServer(kube: ResourceClient): Promise<{ server: string; fallback: boolean }> {
  const svc = await kube.tryGet(ServiceResource, 'kubernetes', 'default');
  const ip = (svc?.spec as { clusterIP?: string } | undefined)?.clusterIP;
  const ports = svc?.spec?.ports ?? [];
  const port = (ports.find((p) => p.name === 'https') ?? ports[0])?.port;
  if (!ip || ip === 'None' || port === undefined) return { server: FALLBACK_SERVER, fallback: true };
  return { server: `https://${ip.includes(':') ? `[${ip}]` : ip}:${port}`, fallback: false };
}

/** The first Secret of the `kubesphere` ServiceAccount with a token, as the original looked it up. */
async function serviceAccountSecret(kube: ResourceClient): Promise<Secret> {
  const secrets = (await kube.listAll(SecretResource, { namespace: KUBESPHERE_SYSTEM })).filter(
    (s) => s.metadata.annotations?.[SERVICE_ACCOUNT_NAME_ANNOTATION] === KUBESPHERE_SERVICE_ACCOUNT,
  );
  if (secrets.length === 0) {
    throw new KubeSphereStateError('failed to get kubesphere sa token secret', {
      hint:
        `create a token Secret for the ServiceAccount: a Secret in ${KUBESPHERE_SYSTEM} of type kubernetes.io/service-account-token ` +
        `annotated ${SERVICE_ACCOUNT_NAME_ANNOTATION}: ${KUBESPHERE_SERVICE_ACCOUNT}; Kubernetes fills in the token`,
    });
  }
  const withToken = secrets.find((s) => (s.data?.token ?? '') !== '');
  if (!withToken) {
    throw new KubeSphereStateError('failed to get kubesphere sa bearer token from secret', {
      hint: `the Secret(s) ${secrets.map((s) => s.metadata.name ?? '').join(', ')} in ${KUBESPHERE_SYSTEM} have no data.token yet; wait for the token controller or re-create the Secret`,
    });
  }
  return withToken;
}

/** Base64 of the cluster CA (PEM): the token Secret's `ca.crt`, else ConfigMap `kube-root-ca.crt`. */
async function clusterCaData(kube: ResourceClient, secret: Secret): Promise<string> {
  const fromSecret = secret.data?.['ca.crt'];
  if (fromSecret) return fromSecret;
  const rootCa = await kube.tryGet(ConfigMapResource, 'kube-root-ca.crt', KUBESPHERE_SYSTEM);
  const pem = rootCa?.data?.['ca.crt'];
  if (pem) return Buffer.from(pem, 'utf8').toString('base64');
  throw new KubeSphereStateError('failed to find the cluster CA for the host kubeconfig', {
    hint: `neither the kubesphere token Secret (${secret.metadata.name ?? ''}) nor ConfigMap ${KUBESPHERE_SYSTEM}/kube-root-ca.crt has ca.crt`,
  });
}

/** What {@link buildHostKubeconfig} returns. `text` holds a credential: never log it. */
export interface HostKubeconfig {
  /** The kubeconfig YAML. */
  text: string;
  server: string;
  /** The server is the DNS fallback, not read from the cluster. */
  fallback: boolean;
  /** The Secret the token came from (for logs). */
  secretName: string;
}

/**
 * Builds the host kubeconfig: cluster `kubernetes`, user `kubernetes-admin` (bearer token of the
 * `kubesphere` ServiceAccount), context `kubernetes-admin@kubernetes`, set as current. The output is
 * deterministic (fixed key order, no timestamps), so a re-run compares equal and writes nothing.
 */
export async function buildHostKubeconfig(kube: ResourceClient): Promise<HostKubeconfig> {
  const secret = await serviceAccountSecret(kube);
  const token = Buffer.from(secret.data?.token ?? '', 'base64').toString('utf8');
  const caData = await clusterCaData(kube, secret);
  const { server, fallback } = await inClusterServer(kube);
  const n = HOST_KUBECONFIG_NAMES;
  // Key order as client-go's clientcmd.Write produces it (alphabetical).
  const config = {
    apiVersion: 'v1',
    clusters: [{ cluster: { 'certificate-authority-data': caData, server }, name: n.cluster }],
    contexts: [{ context: { cluster: n.cluster, user: n.user }, name: n.context }],
    'current-context': n.context,
    kind: 'Config',
    preferences: {},
    users: [{ name: n.user, user: { token } }],
  };
  return {
    text: yaml.dump(config, { lineWidth: -1, noRefs: true }),
    server,
    fallback,
    secretName: secret.metadata.name ?? '',
  };
}
