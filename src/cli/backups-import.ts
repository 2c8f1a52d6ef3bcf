// `ks-upgrade backups import --from-go …`, and the hint `backups list` prints for objects the Go
// tool wrote. The import itself is src/gostore; this file turns flags into a source and prints.
import type { StorageConfig } from '../config/types.js';
import { ValidationError } from '../errors.js';
import {
  CHART_INDEX_KEY,
  LocalGoStore,
  S3GoStore,
  goFactsFrom,
  goKeyName,
  goToolObject,
  importGoStore,
  importSummary,
  type GoStoreSource,
  type ImportItem,
} from '../gostore/index.js';
import { StorageKeyNotFound, createStorage, type Storage } from '../storage/index.js';
import { IntegrityError, createResourceStore } from '../store/index.js';

interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** The flags of `backups import` (parsed by runBackupsCommand). */
export interface ImportFlags {
  'from-go'?: string;
  cluster?: string;
  'go-endpoint'?: string;
  'go-region'?: string;
  'go-path-style'?: boolean;
  'go-disable-ssl'?: boolean;
  'go-credentials-file'?: string;
  'dry-run'?: boolean;
  json?: boolean;
}

/** Flags only `import` takes. */
export const IMPORT_ONLY_FLAGS = [
  'from-go',
  'cluster',
  'go-endpoint',
  'go-region',
  'go-path-style',
  'go-disable-ssl',
  'go-credentials-file',
  'dry-run',
  'json',
] as const;

const S3_FLAGS = [
  'go-endpoint',
  'go-region',
  'go-path-style',
  'go-disable-ssl',
  'go-credentials-file',
] as const;

/** The Go store `--from-go` names: a directory, or `s3://bucket[/prefix]` with the `--go-*` settings. */
export function goSource(flags: ImportFlags): GoStoreSource {
  const from = flags['from-go'];
  if (!from) {
    throw new ValidationError('import needs --from-go <dir | s3://bucket[/prefix]>', {
      hint: "the Go tool's backups: its storage.local.path (in the cluster: the PVC ks-upgrade) or its S3 bucket",
    });
  }
  if (!from.startsWith('s3://')) {
    const given = S3_FLAGS.filter((f) => flags[f] !== undefined);
    if (given.length > 0) {
      throw new ValidationError(`--${given[0] ?? ''} is for an S3 source; --from-go ${from} is a directory`, {
        hint: "use --from-go s3://<bucket>[/<prefix>] for the Go tool's bucket",
      });
    }
    return new LocalGoStore(from);
  }
  const rest = from.slice('s3://'.length);
  const slash = rest.indexOf('/');
  return new S3GoStore({
    bucket: slash < 0 ? rest : rest.slice(0, slash),
    prefix: slash < 0 ? '' : rest.slice(slash + 1),
    endpoint: flags['go-endpoint'] ?? '',
    region: flags['go-region'] ?? '',
    forcePathStyle: flags['go-path-style'] === true,
    disableSSL: flags['go-disable-ssl'] === true,
    ...(flags['go-credentials-file'] ? { credentialsFile: flags['go-credentials-file'] } : {}),
  });
}

const LABEL: Record<ImportItem['outcome'], string> = {
  imported: 'IMPORTED',
  skipped: 'SKIPPED',
  refused: 'REFUSED',
  failed: 'FAILED',
};

function line(item: ImportItem, dryRun: boolean): string {
  const label = dryRun && item.outcome === 'imported' ? 'WOULD IMPORT' : LABEL[item.outcome];
  const target = item.key ? ` -> ${item.key}` : '';
  const why = item.reason ? `: ${item.reason}` : '';
  const notes = item.notes?.length ? ` (${item.notes.join('; ')})` : '';
  return `${label.padEnd(12)} ${item.goKey}${target}${why}${notes}\n`;
}

/**
 * Runs the import into the store of `config` (its encryption included). Exit 0 when everything
 * was imported or skipped, 1 when something was refused or failed, 2 for bad input (nothing written).
 */
export async function importCommand(
  config: StorageConfig,
  flags: ImportFlags,
  io: Io,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  if (!flags.cluster) {
    throw new ValidationError('import needs --cluster <name>', {
      hint: 'the logical cluster name of the upgrade these backups belong to (ks-upgrade run --cluster; default there: the kube context, or host)',
    });
  }
  const source = goSource(flags);
  const store = await createResourceStore(config, env);
  const dryRun = flags['dry-run'] === true;
  const report = await importGoStore({
    source,
    store,
    cluster: flags.cluster,
    dryRun,
    ...(flags.json ? {} : { onItem: (item: ImportItem) => io.stdout.write(line(item, dryRun)) }),
  });
  const summary = importSummary(report);
  if (flags.json) io.stdout.write(`${JSON.stringify({ ...report, summary }, null, 2)}\n`);
  else io.stdout.write(`${summary}\n`);
  if (report.counts.refused > 0 || report.counts.failed > 0) {
    io.stderr.write(
      'ks-upgrade backups: some objects were not imported (REFUSED/FAILED above): post-upgrade may miss them. ' +
        'An object is refused when our store already holds different content under its key; move one of them away ' +
        'if the Go copy is the one to keep, then run the import again.\n',
    );
    return 1;
  }
  return 0;
}

/**
 * For `backups list`: tells objects the original Go tool wrote (no header, a key the Go tool
 * writes, in that key's format) from damaged ones, and afterwards the command that imports them.
 */
export function goToolObjects(config: StorageConfig): {
  /** The list row for an object whose header could not be read, if the Go tool wrote it. */
  row(key: string, err: unknown): Promise<string[] | undefined>;
  /** After the table: how to import the objects found ('' when none). */
  hint(): string;
} {
  let storage: Promise<Storage> | undefined;
  const facts = new Map<string, ReturnType<typeof goFactsFrom>>();
  const folders = new Set<string>();
  let count = 0;
  // Chart keys are named by the HelmApplicationVersion list in the same folder.
  const factsOf = async (folder: string, s: Storage) => {
    let f = facts.get(folder);
    if (!f) {
      const index = folder === '' ? CHART_INDEX_KEY : `${folder}/${CHART_INDEX_KEY}`;
      const bytes = await s.get(index).catch((err: unknown) => {
        if (err instanceof StorageKeyNotFound) return undefined;
        throw err;
      });
      f = goFactsFrom(new Map(bytes ? [[index, bytes]] : []));
      facts.set(folder, f);
    }
    return f;
  };
  return {
    async row(key, err) {
      if (!(err instanceof IntegrityError && err.problem.startsWith('it has no ks-upgrade header')))
        return undefined;
      storage ??= createStorage(config);
      const s = await storage;
      const folder = key.slice(0, Math.max(0, key.length - goKeyName(key).length - 1));
      const bytes = await s.get(key);
      const rule = goToolObject(key, bytes, await factsOf(folder, s));
      if (!rule) return undefined;
      folders.add(folder);
      count++;
      const job = rule.shared ? `${rule.job} (shared)` : rule.job;
      return [
        key,
        String(bytes.byteLength),
        '-',
        'no',
        `GO TOOL: ${job} backup written by the original Go ks-upgrade`,
      ];
    },
    hint: () => (count === 0 ? '' : `\n${goImportHint(config, [...folders].sort(), count)}`),
  };
}

/** The import command for Go objects in `folders` of the store `config` names. */
function goImportHint(config: StorageConfig, folders: readonly string[], count: number): string {
  const sources = folders.map((f) => {
    const s3 = config.s3;
    if (!s3) return `--from-go ${[config.local.path.replace(/\/+$/, ''), f].filter(Boolean).join('/')}`;
    const flags = [
      `--from-go s3://${s3.bucket}/${s3.prefix}${f ? `${f}/` : ''}`,
      s3.endpoint ? `--go-endpoint ${withoutUserInfo(s3.endpoint)}` : '',
      s3.region ? `--go-region ${s3.region}` : '',
      s3.forcePathStyle ? '--go-path-style' : '',
      s3.disableSSL ? '--go-disable-ssl' : '',
      '[--go-credentials-file <file>]',
    ];
    return flags.filter(Boolean).join(' ');
  });
  return (
    `${count} object(s) were written by the original Go ks-upgrade (bare JSON/YAML, no ks-upgrade header); ` +
    "post-upgrade cannot use them where they are. Import them into the upgrade's store with:\n" +
    sources
      .map((s) => `  ks-upgrade backups import ${s} --cluster <cluster> --config <config of the upgrade>\n`)
      .join('')
  );
}

/** An endpoint as it may be printed: a URL loses any user:password part. */
function withoutUserInfo(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    if (!url.username && !url.password) return endpoint;
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return endpoint; // host:port
  }
}
