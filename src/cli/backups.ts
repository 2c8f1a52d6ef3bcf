// `ks-upgrade backups list|show|verify`: look into the backup store without writing to it;
// `backups import --from-go`: copy the original Go tool's backups into it (./backups-import.ts).
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import type { StorageConfig } from '../config/types.js';
import { KsUpgradeError, ValidationError, describeError } from '../errors.js';
import {
  IntegrityError,
  PlaintextSecretError,
  createResourceStore,
  type BackupInfo,
  type ResourceStore,
} from '../store/index.js';
import { IMPORT_ONLY_FLAGS, goToolObjects, importCommand } from './backups-import.js';

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const USAGE = `Usage: ks-upgrade backups <command> [options]

Commands:
  list              list the backup objects: key, size, creation time, encrypted, sensitive
  show <key>        print one object (verified, decrypted); JSON is pretty-printed
  verify [prefix]   verify every object (header, size, sha256, AES-GCM tag); exit 1 if any fails
  import            copy the original Go ks-upgrade's backups of one cluster into the store
                    (never overwrites; safe to run again): --from-go <dir | s3://bucket[/prefix]> --cluster <name>

Options:
  --config <file>      config file(s) of the upgrade (repeatable; only \`storage\` is read)
  --local-path <dir>   read a local backup directory instead of the configured storage
  --prefix <p>         restrict to keys starting with <p>, e.g. host/core/ (show: prepended to <key>)
  --key-file <file>    encryption key file, overriding storage.encryption
  --reveal             let \`show\` print objects that hold secrets
  -h, --help           print this help

Options of import:
  --from-go <source>           the Go tool's store: its directory (storage.local.path; the PVC ks-upgrade),
                               or s3://<bucket>[/<prefix>] (its storage.s3)
  --cluster <name>             the upgrade's cluster name: objects go to <cluster>/<job>/ (required)
  --go-endpoint <host:port|URL>, --go-region <region>, --go-path-style, --go-disable-ssl
                               S3 settings of the Go tool's bucket
  --go-credentials-file <file> YAML/JSON with accessKeyID and secretAccessKey (else AWS_ACCESS_KEY_ID/…)
  --dry-run                    check and report; write nothing
  --json                       the report as JSON
`;

class UsageError extends Error {}

/**
 * The `storage` section of the merged, validated `--config` files. Looking at backups must never
 * create anything, so `createBucket` is forced off.
 */
export async function loadStorageConfig(files: readonly string[]): Promise<StorageConfig> {
  const { storage } = (await loadConfig(files)).config;
  return storage.s3 ? { ...storage, s3: { ...storage.s3, createBucket: false } } : storage;
}

/** The problem alone for an IntegrityError (the table already names the key), else the message. */
function problemOf(err: unknown): string {
  if (err instanceof IntegrityError) return err.problem;
  return err instanceof Error ? err.message : String(err);
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '))
    .join('\n');
}

async function listCommand(
  store: ResourceStore,
  prefix: string,
  io: CliIo,
  config: StorageConfig,
): Promise<number> {
  const keys = await store.list(prefix);
  if (keys.length === 0) {
    io.stdout.write(`no backup objects under '${prefix}' in ${store.location}\n`);
    return 0;
  }
  const rows = [['KEY', 'SIZE', 'CREATED', 'ENCRYPTED', 'SENSITIVE']];
  const goTool = goToolObjects(config);
  for (const key of keys) {
    let info: BackupInfo;
    try {
      info = await store.stat(key);
    } catch (err) {
      rows.push((await goTool.row(key, err)) ?? [key, '-', '-', '-', `DAMAGED: ${problemOf(err)}`]);
      continue;
    }
    rows.push([
      key,
      String(info.size),
      info.createdAt,
      info.encrypted ? 'yes' : 'no',
      info.sensitive ? 'yes' : 'no',
    ]);
  }
  io.stdout.write(`${table(rows)}\n${goTool.hint()}`);
  return 0;
}

async function showCommand(store: ResourceStore, key: string, reveal: boolean, io: CliIo): Promise<number> {
  // The header says whether the object holds secrets: refuse before decrypting anything.
  const info = await store.stat(key);
  if (info.sensitive && !reveal) {
    io.stderr.write(
      `ks-upgrade backups: refusing to print '${key}': it holds secrets (a Secret, a kubeconfig or data marked ` +
        'sensitive); add --reveal to print it\n',
    );
    return 1;
  }
  const { payload } = await store.loadEntry(key);
  const text = Buffer.from(payload).toString('utf8');
  if (info.contentType === 'application/json' || info.contentType.endsWith('+json')) {
    io.stdout.write(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    return 0;
  }
  if (/yaml|^text\//i.test(info.contentType)) {
    io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    return 0;
  }
  io.stderr.write(
    `ks-upgrade backups: '${key}' is ${info.contentType} (${info.size} bytes), not text; not printed\n`,
  );
  return 1;
}

async function verifyCommand(store: ResourceStore, prefix: string, io: CliIo): Promise<number> {
  const keys = await store.list(prefix);
  if (keys.length === 0) {
    io.stdout.write(`no backup objects under '${prefix}' in ${store.location}\n`);
    return 0;
  }
  let failed = 0;
  let undecrypted = 0;
  const hints = new Set<string>();
  for (const key of keys) {
    try {
      const { info, decrypted } = await store.verify(key);
      const note = decrypted
        ? ' (decrypted)'
        : info.encrypted
          ? ' (encrypted; not decrypted: no key configured)'
          : '';
      if (info.encrypted && !decrypted) undecrypted++;
      io.stdout.write(`OK      ${key}${note}\n`);
    } catch (err) {
      failed++;
      if (err instanceof KsUpgradeError && err.hint) hints.add(err.hint);
      io.stdout.write(`FAILED  ${key}: ${problemOf(err)}\n`);
    }
  }
  io.stdout.write(
    `${keys.length} object(s): ${keys.length - failed} OK, ${failed} FAILED` +
      (undecrypted > 0 ? `; ${undecrypted} encrypted object(s) checked without decryption` : '') +
      '\n',
  );
  for (const hint of hints) io.stdout.write(`fix: ${hint}\n`);
  return failed > 0 ? 1 : 0;
}

/** Runs `ks-upgrade backups …`; returns the exit code (0 ok, 1 failure, 2 usage error). */
export async function runBackupsCommand(
  argv: string[],
  io: CliIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', multiple: true },
        'local-path': { type: 'string' },
        prefix: { type: 'string' },
        'key-file': { type: 'string' },
        reveal: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        'from-go': { type: 'string' },
        cluster: { type: 'string' },
        'go-endpoint': { type: 'string' },
        'go-region': { type: 'string' },
        'go-path-style': { type: 'boolean' },
        'go-disable-ssl': { type: 'boolean' },
        'go-credentials-file': { type: 'string' },
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
      },
    });
  } catch (err) {
    io.stderr.write(`ks-upgrade backups: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  try {
    const [command, ...rest] = positionals;
    const prefix = values.prefix ?? '';
    const expect = (max: number, min = 0): void => {
      if (rest.length > max || rest.length < min) {
        throw new UsageError(
          `'${command ?? ''}' takes ${max === min ? max : `${min} to ${max}`} argument(s)`,
        );
      }
    };
    if (command === undefined) throw new UsageError('a command is required: list, show, verify or import');
    if (!['list', 'show', 'verify', 'import'].includes(command))
      throw new UsageError(`unknown command '${command}'`);
    if (command === 'list') expect(0);
    if (command === 'show') expect(1, 1);
    if (command === 'verify') expect(1);
    if (command === 'import') {
      expect(0);
      if (values.prefix !== undefined || values.reveal !== undefined)
        throw new UsageError(`'import' takes no --${values.prefix !== undefined ? 'prefix' : 'reveal'}`);
    } else {
      const misplaced = IMPORT_ONLY_FLAGS.find((f) => values[f] !== undefined);
      if (misplaced) throw new UsageError(`--${misplaced} is an option of 'import', not of '${command}'`);
    }

    // Looking never creates anything; the import writes, so it may create the bucket if configured to.
    const config =
      command === 'import'
        ? (await loadConfig(values.config ?? [])).config.storage
        : await loadStorageConfig(values.config ?? []);
    if (values['local-path'] !== undefined) {
      config.local = { path: values['local-path'] };
      delete config.s3;
    }
    if (values['key-file'] !== undefined) config.encryption = { keyFile: values['key-file'] };
    if (command === 'import') return await importCommand(config, values, io, env);
    const store = await createResourceStore(config, env);

    switch (command) {
      case 'list':
        return await listCommand(store, prefix, io, config);
      case 'show':
        return await showCommand(store, prefix + (rest[0] ?? ''), values.reveal === true, io);
      default:
        return await verifyCommand(store, prefix + (rest[0] ?? ''), io);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`ks-upgrade backups: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    io.stderr.write(`ks-upgrade backups: ${describeError(err)}\n`);
    // A refused import (secrets without a key) wrote nothing: like bad input, the fix is the config.
    return err instanceof ValidationError || err instanceof PlaintextSecretError ? 2 : 1;
  }
}
