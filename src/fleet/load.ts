// Reads a fleet file (YAML) into the input of the upgradeFleet workflow. Every problem — a syntax
// error, a wrong type, a duplicate cluster, no host or two, a wave naming an unknown cluster or a
// cluster twice, an unknown kube context, a budget or concurrency out of range, a window that never
// opens — is reported at once, each with file, line and key, before anything starts. Reuses the
// config loader's located tree, schema interpreter and problem collector.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { parseDuration } from '../config/duration.js';
import { ConfigError } from '../config/errors.js';
import { parseSource } from '../config/parse.js';
import { ProblemCollector } from '../config/problems.js';
import { closestMatch } from '../config/suggest.js';
import {
  childMap,
  joinPath,
  toPlain,
  type ConfigNode,
  type ListNode,
  type MapNode,
  type Origin,
} from '../config/tree.js';
import { validateAgainstSchema } from '../config/validate.js';
import { isRecord } from '../util/object.js';
import { validateUpgradeInput } from '../upgrade/input.js';
import {
  MAX_CONCURRENCY,
  clusterUpgradeInput,
  validateFleetInput,
  type FailureBudget,
  type FleetCluster,
  type FleetClusterSettings,
  type FleetInput,
  type FleetTuning,
  type FleetWave,
  type MaintenanceWindow,
} from './input.js';
import { FLEET_SCHEMA } from './schema.js';
import { isTimeZone, nextOccurrence, parseClock } from './window.js';

export interface LoadFleetOptions {
  /**
   * The kubeconfig the contexts are checked against when the fleet names none (`defaults.kubeconfig`):
   * the CLI's --kubeconfig, else the first file of KUBECONFIG.
   */
  kubeconfig?: string;
  /** "Now" for the windows check (tests). */
  now?: number;
}

/** Contexts of the kubeconfig files the fleet refers to, read on this machine. */
export interface KnownContexts {
  /** kubeconfig path → its context names; absent when the file cannot be read here. */
  files: Map<string, string[]>;
  /** kubeconfig path → the path as the operator wrote it (for messages). */
  shown?: Map<string, string>;
  /** The kubeconfig used for clusters that name none. */
  fallback?: string;
}

const HINTS: Readonly<Record<string, string>> = {
  'fleet:pattern': 'use a lowercase DNS label such as "production" (letters, digits and "-")',
  'clusters.name:pattern': 'use a lowercase DNS label such as "member-1" (letters, digits and "-")',
  'fleet:required': 'add "fleet: <name>" at the top (it names the workflow ks-upgrade-fleet-<name>)',
  'clusters:required': 'add "clusters:" with the host and its members',
  'rollout.batchSize:required': 'add "batchSize: <n>" (members per wave after the canary)',
  'clusters.role:required': 'add "role: host" or "role: member"',
  'clusters.name:required': 'add "name: <cluster>"',
};
const SCHEMA_FILE = 'docs/fleet.schema.json';

const SOURCE_KIND = {
  topLevel: 'fleet settings (fleet, clusters, waves, …)',
  secondDocumentHint:
    'one fleet per file: remove this "---" and what follows, or move it into a file of its own',
  firstKey: 'fleet',
};

function items(node: ConfigNode | undefined): ConfigNode[] {
  return node?.kind === 'list' ? node.items : [];
}

function scalar(node: ConfigNode | undefined): string | number | boolean | null | undefined {
  return node?.kind === 'scalar' ? node.value : undefined;
}

function text(node: ConfigNode | undefined): string | undefined {
  const v = scalar(node);
  return typeof v === 'string' ? v : undefined;
}

/** Parses `path` relative to the fleet file's directory (the worker is expected to see the same path). */
function resolveFrom(file: string, p: string): string {
  return path.isAbsolute(p) ? p : path.resolve(path.dirname(path.resolve(file)), p);
}

/** Context names of a kubeconfig file (no credentials are read into memory beyond the parse). */
export async function readContexts(file: string): Promise<string[] | undefined> {
  try {
    const doc = yaml.load(await readFile(file, 'utf8'));
    if (!isRecord(doc) || !Array.isArray(doc.contexts)) return [];
    return doc.contexts.flatMap((c: unknown) => (isRecord(c) && typeof c.name === 'string' ? [c.name] : []));
  } catch {
    return undefined;
  }
}

/** Reads and validates a fleet file. Throws a {@link ConfigError} listing every problem. */
export async function loadFleetFile(file: string, options: LoadFleetOptions = {}): Promise<FleetInput> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([
      {
        file,
        line: 0,
        path: '',
        message: code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(err)})`,
        hint: 'check the path given with --file',
      },
    ]);
  }
  // The kubeconfig files the clusters use, read here to check their contexts exist.
  const parsed = parseSource(file, 0, source, SOURCE_KIND);
  const wanted = new Map<string, string>();
  const fallback =
    text(childMap(parsed.root ?? undefined, 'defaults')?.entries.get('kubeconfig')) ??
    options.kubeconfig ??
    process.env.KUBECONFIG?.split(path.delimiter)[0];
  if (fallback) wanted.set(resolveFrom(file, fallback), fallback);
  for (const c of items(parsed.root?.entries.get('clusters'))) {
    const own = c.kind === 'map' ? text(c.entries.get('kubeconfig')) : undefined;
    if (own) wanted.set(resolveFrom(file, own), own);
  }
  const files = new Map<string, string[]>();
  for (const f of wanted.keys()) {
    const names = await readContexts(f);
    if (names) files.set(f, names);
  }
  return loadFleetText(file, source, {
    contexts: { files, shown: wanted, ...(fallback ? { fallback: resolveFrom(file, fallback) } : {}) },
    ...(options.now !== undefined ? { now: options.now } : {}),
  });
}

/** {@link loadFleetFile} for a text in memory; `contexts` is what the kubeconfig files hold. */
export function loadFleetText(
  file: string,
  source: string,
  options: { contexts?: KnownContexts; now?: number } = {},
): FleetInput {
  const problems = new ProblemCollector();
  const parsed = parseSource(file, 0, source, SOURCE_KIND);
  for (const p of parsed.problems) problems.add(p, 0);
  const root = parsed.root;
  if (root === null) {
    if (problems.size === 0) {
      problems.add(
        {
          file,
          line: 1,
          path: '',
          message: 'the file is empty',
          hint: 'start with "fleet: <name>" and "clusters:"',
        },
        0,
      );
    }
    throw new ConfigError(problems.sorted());
  }
  validateAgainstSchema(root, FLEET_SCHEMA, problems, { hints: HINTS, schemaFile: SCHEMA_FILE });
  // The fleet's own rules run even when the schema found problems: every problem in one pass.
  const input = checkFleet(file, root, problems, options);
  if (problems.size > 0 || !input) throw new ConfigError(problems.sorted());
  // The loader's checks cover the workflow's own; anything left would be a loader bug.
  const left = validateFleetInput(input);
  if (left.length > 0) {
    throw new ConfigError(
      left.map((l) => ({ file, line: 0, path: '', message: l, hint: 'see docs/fleet.md' })),
    );
  }
  return input;
}

interface Ctx {
  file: string;
  problems: ProblemCollector;
  at: (node: ConfigNode, path: string, message: string, hint: string) => void;
}

function settingsOf(file: string, node: MapNode | undefined): FleetClusterSettings {
  if (!node) return {};
  const plain = toPlain(node) as Record<string, unknown>;
  const s: FleetClusterSettings = {};
  if (Array.isArray(plain.configFiles))
    s.configFiles = (plain.configFiles as string[]).map((f) => resolveFrom(file, f));
  if (typeof plain.useDefaults === 'boolean') s.useDefaults = plain.useDefaults;
  if (typeof plain.kubeconfig === 'string') s.kubeconfig = resolveFrom(file, plain.kubeconfig);
  if (isRecord(plain.overrides)) s.overrides = plain.overrides;
  if (Array.isArray(plain.phases)) s.phases = plain.phases as FleetClusterSettings['phases'];
  if (typeof plain.gate === 'string') s.gate = plain.gate as FleetClusterSettings['gate'];
  if (typeof plain.failurePolicy === 'string')
    s.failurePolicy = plain.failurePolicy as FleetClusterSettings['failurePolicy'];
  if (isRecord(plain.tuning)) s.tuning = plain.tuning;
  if (Array.isArray(plain.skipChecks)) s.skipChecks = plain.skipChecks as FleetClusterSettings['skipChecks'];
  return s;
}

function checkFleet(
  file: string,
  root: MapNode,
  problems: ProblemCollector,
  options: { contexts?: KnownContexts; now?: number },
): FleetInput | undefined {
  const ctx: Ctx = {
    file,
    problems,
    at: (node, p, message, hint) => {
      problems.at(node.at, p, message, hint);
    },
  };
  const now = options.now ?? Date.now();
  const fleet = text(root.entries.get('fleet')) ?? '';
  const defaultsNode = childMap(root, 'defaults');
  const defaults = settingsOf(file, defaultsNode);
  const windows = checkWindows(ctx, childMap(root, 'windows'), now);
  const windowNames = [...windows.keys()];
  const checkWindowRef = (node: ConfigNode | undefined, p: string): string | undefined => {
    const name = text(node);
    if (!node || name === undefined) return undefined;
    if (!windows.has(name)) {
      const guess = closestMatch(name, windowNames);
      ctx.at(
        node,
        p,
        `no window '${name}' in windows`,
        guess
          ? `did you mean '${guess}'?`
          : windowNames.length
            ? `use one of: ${windowNames.join(', ')}`
            : 'define it under "windows:" (timeZone, days, start, end)',
      );
    }
    return name;
  };
  const fleetWindow = checkWindowRef(root.entries.get('window'), 'window');

  // ---- clusters
  const clustersNode: ListNode =
    root.entries.get('clusters')?.kind === 'list'
      ? (root.entries.get('clusters') as ListNode)
      : { kind: 'list', at: root.at, items: [] };
  const clusters: FleetCluster[] = [];
  const firstAt = new Map<string, Origin>();
  const hosts: { name: string; node: ConfigNode }[] = [];
  clustersNode.items.forEach((item, i) => {
    if (item.kind !== 'map') return;
    const p = `clusters[${i}]`;
    const nameNode = item.entries.get('name');
    const name = text(nameNode) ?? '';
    const seen = firstAt.get(name);
    if (seen && nameNode) {
      ctx.at(
        nameNode,
        joinPath(p, 'name'),
        `duplicate cluster '${name}' (first at line ${seen.line})`,
        'give every cluster a name of its own',
      );
      return;
    }
    if (nameNode) firstAt.set(name, nameNode.at);
    const role = text(item.entries.get('role')) as FleetCluster['role'];
    const roleNode = item.entries.get('role');
    if (role === 'host' && roleNode) hosts.push({ name, node: roleNode });
    const c: FleetCluster = { name, role, ...settingsOf(file, item) };
    const plain = toPlain(item) as Record<string, unknown>;
    for (const key of ['kubesphereName', 'context', 'taskQueue'] as const) {
      if (typeof plain[key] === 'string') c[key] = plain[key];
    }
    if (isRecord(plain.labels)) c.labels = plain.labels as Record<string, string>;
    const w = checkWindowRef(item.entries.get('window'), joinPath(p, 'window'));
    if (w) c.window = w;
    const gwNode = item.entries.get('gateways');
    if (gwNode?.kind === 'list') c.gateways = plain.gateways as string[];
    else if (gwNode) {
      const v = text(gwNode);
      if (v === 'none') c.gateways = [];
      else if (v !== 'auto') {
        ctx.at(
          gwNode,
          joinPath(p, 'gateways'),
          `"${String(v)}" is not allowed`,
          'write "auto", "none", or a list of gateway names',
        );
      }
    }
    checkAccess(ctx, item, p, c, defaults, options.contexts, file);
    clusters.push(c);
  });
  if (hosts.length === 0 && root.entries.get('clusters')?.kind === 'list') {
    ctx.at(
      clustersNode,
      'clusters',
      'no cluster has role "host"',
      'mark the KubeSphere host cluster with "role: host" (it is upgraded first)',
    );
  }
  for (const extra of hosts.slice(1)) {
    ctx.at(
      extra.node,
      `clusters[${clusters.findIndex((c) => c.name === extra.name)}].role`,
      `a second host '${extra.name}' (the host is '${hosts[0]?.name ?? ''}', line ${hosts[0]?.node.at.line ?? 0})`,
      'a fleet has exactly one host: make the others "role: member", or put each host in a fleet of its own',
    );
  }
  const host = hosts[0]?.name;
  const members = clusters.filter((c) => c.role === 'member').map((c) => c.name);

  // ---- waves
  const waves = checkWaves(ctx, root, clusters, host, members);

  // ---- limits
  let maxConcurrency = 1;
  const mcNode = root.entries.get('maxConcurrency');
  const mc = scalar(mcNode);
  if (typeof mc === 'number' && mcNode) {
    if (mc > MAX_CONCURRENCY) {
      ctx.at(
        mcNode,
        'maxConcurrency',
        `${mc} is out of range (1 to ${MAX_CONCURRENCY})`,
        `use at most ${MAX_CONCURRENCY}: more clusters in flight than workers can serve only queue up`,
      );
    }
    maxConcurrency = mc;
  }
  const failureBudget = checkBudget(ctx, root.entries.get('failureBudget'), clusters.length);
  const tuning = checkTuning(ctx, childMap(root, 'tuning'));

  if (problems.size > 0) return undefined;
  const input: FleetInput = {
    fleet,
    source: path.resolve(file),
    ...(Object.keys(defaults).length ? { defaults } : {}),
    clusters,
    waves,
    maxConcurrency,
    failureBudget,
    ...(windows.size ? { windows: Object.fromEntries(windows) } : {}),
    ...(fleetWindow ? { window: fleetWindow } : {}),
    ...(Object.keys(tuning).length ? { tuning } : {}),
  };
  // Each cluster's upgrade input must pass the workflow's own check (no credentials, valid phases).
  clustersNode.items.forEach((item, i) => {
    const c = clusters.find(
      (x) => x.name === text(item.kind === 'map' ? item.entries.get('name') : undefined),
    );
    if (!c) return;
    for (const problem of validateUpgradeInput(clusterUpgradeInput(input, c))) {
      const [where = '', ...rest] = problem.split(': ');
      const what = rest.join(': ');
      const [message = what, hint = 'see docs/workflow-input.md'] = what.split(/;\s*/, 2);
      const located = locate(item, where) ?? locate(defaultsNode, where);
      const base =
        located && locate(item, where) ? `clusters[${i}]` : located ? 'defaults' : `clusters[${i}]`;
      ctx.at(located ?? item, located ? `${base}.${where}` : `${base}: ${where}`, message, hint);
    }
  });
  return problems.size > 0 ? undefined : input;
}

/** The node at a dotted path (`overrides.jobs.devops`) below `node`, if the file has it. */
function locate(node: ConfigNode | undefined, dotted: string): ConfigNode | undefined {
  let cur = node;
  for (const key of dotted.split('.')) {
    if (cur?.kind !== 'map') return undefined;
    cur = cur.entries.get(key);
  }
  return cur === node ? undefined : cur;
}

function checkAccess(
  ctx: Ctx,
  item: MapNode,
  p: string,
  c: FleetCluster,
  defaults: FleetClusterSettings,
  contexts: KnownContexts | undefined,
  file: string,
): void {
  const contextNode = item.entries.get('context');
  if (!c.context && !c.taskQueue) {
    ctx.at(
      item,
      p,
      `no way to reach cluster '${c.name}'`,
      `set "context: <name>" (a context in the worker's kubeconfig) or "taskQueue: ks-upgrade-cluster-${c.name}" (a worker of its own: ks-upgrade worker --cluster ${c.name})`,
    );
    return;
  }
  if (!c.context || !contextNode || !contexts) return;
  const kubeconfig = c.kubeconfig ?? (c.taskQueue ? undefined : defaults.kubeconfig) ?? contexts.fallback;
  if (!kubeconfig) return;
  const resolved = resolveFrom(file, kubeconfig);
  const names = contexts.files.get(resolved);
  if (!names || names.includes(c.context)) return;
  const guess = closestMatch(c.context, names);
  ctx.at(
    contextNode,
    joinPath(p, 'context'),
    `context '${c.context}' is not in the kubeconfig ${contexts.shown?.get(resolved) ?? kubeconfig}`,
    guess ? `did you mean '${guess}'?` : `use one of its contexts: ${names.join(', ') || '(none)'}`,
  );
}

function checkWaves(
  ctx: Ctx,
  root: MapNode,
  clusters: FleetCluster[],
  host: string | undefined,
  members: string[],
): FleetWave[] {
  const wavesNode = root.entries.get('waves');
  const rolloutNode = childMap(root, 'rollout');
  const approvalAll = text(root.entries.get('approval')) === 'betweenWaves';
  const memberWaves: FleetWave[] = [];
  const names = clusters.map((c) => c.name);
  if (wavesNode && rolloutNode) {
    ctx.at(
      rolloutNode,
      'rollout',
      'set together with waves',
      'keep one: explicit waves, or a rollout of a canary then batches',
    );
  }
  if (wavesNode?.kind === 'list') {
    const inWave = new Map<string, { wave: string; line: number }>();
    const waveNames = new Map<string, number>();
    wavesNode.items.forEach((item, i) => {
      if (item.kind !== 'map') return;
      const p = `waves[${i}]`;
      const name = text(item.entries.get('name')) ?? '';
      const nameNode = item.entries.get('name');
      const dup = waveNames.get(name);
      if (dup !== undefined && nameNode) {
        ctx.at(
          nameNode,
          joinPath(p, 'name'),
          `duplicate wave '${name}' (first at line ${dup})`,
          'give every wave a name of its own',
        );
      }
      waveNames.set(name, item.at.line);
      const listed = item.entries.get('clusters');
      const selector = childMap(item, 'selector');
      const chosen: { name: string; node: ConfigNode }[] = [];
      if (listed && selector) {
        ctx.at(
          selector,
          joinPath(p, 'selector'),
          'set together with clusters',
          'keep one: a list of clusters, or a label selector',
        );
      }
      if (listed?.kind === 'list') {
        listed.items.forEach((n, j) => {
          const cn = text(n) ?? '';
          if (!names.includes(cn)) {
            const guess = closestMatch(cn, names);
            ctx.at(
              n,
              `${p}.clusters[${j}]`,
              `unknown cluster '${cn}'`,
              guess ? `did you mean '${guess}'?` : `clusters of this fleet: ${names.join(', ')}`,
            );
          } else chosen.push({ name: cn, node: n });
        });
        if (listed.items.length === 0)
          ctx.at(
            listed,
            joinPath(p, 'clusters'),
            'the wave has no cluster',
            'list at least one cluster, or remove the wave',
          );
      } else if (selector) {
        const matched = clusters.filter(
          (c) => matches(c.labels ?? {}, toPlain(selector) as Selector) && c.name !== host,
        );
        if (matched.length === 0) {
          ctx.at(
            selector,
            joinPath(p, 'selector'),
            'selects no member cluster',
            'check the labels of the clusters, or remove the wave',
          );
        }
        for (const c of matched) chosen.push({ name: c.name, node: selector });
      } else {
        ctx.at(
          item,
          p,
          `wave '${name}' names no cluster`,
          'add "clusters: [...]" or "selector: {matchLabels: {...}}"',
        );
      }
      for (const c of chosen) {
        const other = inWave.get(c.name);
        if (other) {
          ctx.at(
            c.node,
            joinPath(p, listed ? 'clusters' : 'selector'),
            `cluster '${c.name}' is already in wave '${other.wave}' (line ${other.line})`,
            'a cluster belongs to one wave: remove it from one of them',
          );
        } else inWave.set(c.name, { wave: name, line: c.node.at.line });
      }
      const clusterNames = [...new Set(chosen.map((c) => c.name))];
      if (host && clusterNames.includes(host)) {
        if (i !== 0 || clusterNames.length !== 1) {
          ctx.at(
            listed ?? item,
            joinPath(p, 'clusters'),
            `the host '${host}' must be alone in the first wave`,
            'leave the host out of the waves (it always runs first, alone), or make the first wave just the host',
          );
        }
        return;
      }
      const approval = scalar(item.entries.get('approval'));
      memberWaves.push({
        name,
        clusters: clusterNames,
        ...((typeof approval === 'boolean' ? approval : approvalAll && memberWaves.length > 0)
          ? { approval: true }
          : {}),
      });
    });
    const missing = members.filter((m) => !inWave.has(m));
    if (missing.length > 0) {
      ctx.at(
        wavesNode,
        'waves',
        `member${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} ${missing.length > 1 ? 'are' : 'is'} in no wave`,
        'add each member to a wave (or remove "waves" to upgrade all members in one wave)',
      );
    }
  } else if (rolloutNode) {
    const canaryNode = rolloutNode.entries.get('canary');
    const canary =
      typeof scalar(canaryNode) === 'number' ? (scalar(canaryNode) as number) : Math.min(1, members.length);
    const batch = scalar(rolloutNode.entries.get('batchSize'));
    if (canaryNode && canary > members.length) {
      ctx.at(
        canaryNode,
        'rollout.canary',
        `${canary} is out of range: the fleet has ${members.length} member${members.length === 1 ? '' : 's'}`,
        `use 0 to ${members.length}`,
      );
    }
    if (typeof batch === 'number') {
      if (canary > 0) memberWaves.push({ name: 'canary', clusters: members.slice(0, canary) });
      for (let i = canary, n = 1; i < members.length; i += batch, n++) {
        memberWaves.push({ name: `batch-${n}`, clusters: members.slice(i, i + batch) });
      }
      if (approvalAll) memberWaves.forEach((w, i) => i > 0 && (w.approval = true));
    }
  } else if (members.length > 0) {
    memberWaves.push({ name: 'members', clusters: members });
  }
  return host ? [{ name: host, clusters: [host] }, ...memberWaves] : memberWaves;
}

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }[];
}

function matches(labels: Record<string, string>, s: Selector): boolean {
  for (const [k, v] of Object.entries(s.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of s.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    const inValues = value !== undefined && (e.values ?? []).includes(value);
    if (e.operator === 'In' && !inValues) return false;
    if (e.operator === 'NotIn' && inValues) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

function checkBudget(ctx: Ctx, node: ConfigNode | undefined, clusters: number): FailureBudget {
  const v = scalar(node);
  if (!node || (typeof v !== 'number' && typeof v !== 'string')) return { count: 0 }; // other types: the schema says
  if (typeof v === 'number') {
    if (v < 0 || v > clusters) {
      ctx.at(
        node,
        'failureBudget',
        `${v} is out of range: the fleet has ${clusters} clusters`,
        `use 0 to ${clusters}, or a percentage such as "10%"`,
      );
    }
    return { count: v };
  }
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)%$/.exec(v.trim()) : null;
  const percent = m ? Number(m[1]) : NaN;
  if (!(percent >= 0 && percent <= 100)) {
    ctx.at(
      node,
      'failureBudget',
      m ? `${v} is out of range` : `"${v}" is neither a count nor a percentage`,
      'write a whole number of clusters (e.g. 1) or a percentage from 0% to 100% (e.g. "10%")',
    );
  }
  return { percent };
}

const TUNING_KEYS: Record<string, keyof FleetTuning> = {
  verifyTimeout: 'verifyTimeoutMs',
  verifyInterval: 'verifyIntervalMs',
  observeInterval: 'observeIntervalMs',
  observeMaxWait: 'observeMaxWaitMs',
};

function checkTuning(ctx: Ctx, node: MapNode | undefined): FleetTuning {
  const out: FleetTuning = {};
  for (const [key, child] of node?.entries ?? []) {
    const v = scalar(child);
    if (key === 'historyLimit') {
      if (typeof v === 'number') out.historyLimit = v;
      continue;
    }
    const target = TUNING_KEYS[key];
    if (!target || typeof v !== 'string') continue;
    try {
      const ms = parseDuration(v);
      if (ms <= 0)
        ctx.at(child, joinPath('tuning', key), 'must be greater than 0', 'use a duration such as "30s"');
      out[target] = ms;
    } catch {
      // reported by the schema check
    }
  }
  return out;
}

function checkWindows(ctx: Ctx, node: MapNode | undefined, now: number): Map<string, MaintenanceWindow> {
  const out = new Map<string, MaintenanceWindow>();
  for (const [name, wn] of node?.entries ?? []) {
    if (wn.kind !== 'map') continue;
    const p = joinPath('windows', name);
    const plain = toPlain(wn) as Record<string, unknown>;
    const w: MaintenanceWindow = {
      timeZone: typeof plain.timeZone === 'string' ? plain.timeZone : 'UTC',
      start: String(plain.start),
      end: String(plain.end),
      ...(Array.isArray(plain.days) ? { days: plain.days as MaintenanceWindow['days'] } : {}),
      ...(typeof plain.notBefore === 'string' ? { notBefore: plain.notBefore } : {}),
      ...(typeof plain.notAfter === 'string' ? { notAfter: plain.notAfter } : {}),
    };
    const before = ctx.problems.size;
    const bad = (key: string, message: string, hint: string): void => {
      ctx.at(wn.entries.get(key) ?? wn, joinPath(p, key), message, hint);
    };
    if (!isTimeZone(w.timeZone))
      bad(
        'timeZone',
        `unknown time zone '${w.timeZone}'`,
        'use an IANA name such as "Europe/Berlin", "Asia/Shanghai" or "UTC"',
      );
    for (const key of ['start', 'end'] as const) {
      if (typeof plain[key] !== 'string') continue; // the schema says what is wrong
      if (parseClock(w[key]) === undefined || (key === 'start' && w.start.startsWith('24'))) {
        bad(
          key,
          `"${w[key]}" is not a time of day`,
          `write HH:MM or HH:MM:SS in 24-hour time, e.g. "01:30"${key === 'end' ? ' ("24:00" for midnight)' : ''}`,
        );
      }
    }
    for (const key of ['notBefore', 'notAfter'] as const) {
      const v = w[key];
      if (v !== undefined && Number.isNaN(Date.parse(v)))
        bad(key, `"${v}" is not a date and time`, 'write an ISO 8601 instant such as "2025-06-01T00:00:00Z"');
    }
    if (w.days && new Set(w.days).size !== w.days.length)
      bad('days', 'a day is listed twice', 'list each weekday once');
    const complete = typeof plain.start === 'string' && typeof plain.end === 'string';
    if (complete && ctx.problems.size === before && nextOccurrence(w, now) === null) {
      const why =
        w.days?.length === 0
          ? 'days is empty'
          : parseClock(w.start) === parseClock(w.end)
            ? 'start and end are the same time (an empty window)'
            : w.notAfter &&
                Date.parse(w.notAfter) <= Math.max(now, w.notBefore ? Date.parse(w.notBefore) : now)
              ? `notAfter ${w.notAfter} is not after ${w.notBefore && Date.parse(w.notBefore) > now ? `notBefore ${w.notBefore}` : 'now'}`
              : 'no occurrence falls between notBefore and notAfter';
      ctx.at(
        wn,
        p,
        `the window never opens: ${why}`,
        'fix start, end, days, notBefore or notAfter (for all day use start "00:00", end "24:00")',
      );
    }
    out.set(name, w);
  }
  return out;
}
