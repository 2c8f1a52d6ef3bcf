import type { JobConfig } from '../config/types.js';
import type { ResourceClient } from '../kube/client.js';
import type { ResourceStore } from '../store/index.js';
import type { ClusterInfo, JobContext, JobProgress, Logger, Phase } from './types.js';

export interface JobContextParams {
  job: string;
  phase: Phase;
  cluster: ClusterInfo;
  kube: ResourceClient;
  /** The unscoped store; the context gets `store.scope(cluster.name, job)`. */
  store: ResourceStore;
  config: JobConfig;
  logger: Logger;
  heartbeat?: (progress?: JobProgress) => void;
  signal?: AbortSignal;
}

/** Builds the context a job phase runs with. */
export function createJobContext(p: JobContextParams): JobContext {
  const signal = p.signal ?? new AbortController().signal;
  const kube = p.signal ? p.kube.withSignal(p.signal) : p.kube;
  return {
    job: p.job,
    phase: p.phase,
    cluster: p.cluster,
    kube,
    v3: kube,
    v4: kube,
    store: p.store.scope(p.cluster.name, p.job),
    logger: p.logger,
    options: structuredClone(p.config.dynamicOptions),
    extensionRef: structuredClone(p.config.extensionRef),
    config: p.config,
    heartbeat: p.heartbeat ?? (() => undefined),
    signal,
  };
}
