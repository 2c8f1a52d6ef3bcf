import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { KsUpgradeError, ValidationError } from '../errors.js';
import {
  KeyConflictError,
  StorageKeyNotFound,
  StorageUnavailableError,
  UnsafeKeyError,
  assertSafeKey,
  assertSafePrefix,
  bytesSource,
  type ObjectSource,
  type Storage,
} from './storage.js';

/**
 * Temporary files live next to their target (rename and link only work within one file system) and
 * start with a dot, which no key segment may do: they can never be listed or addressed as keys.
 */
const TEMP_PREFIX = '.ks-upgrade-tmp-';
/** Bytes read from an {@link ObjectSource} and written per call. */
const COPY_CHUNK = 1024 * 1024;

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * Backups in a local directory (a PVC in the cluster, a temp dir in tests). One file per key at
 * `<root>/<key>`; directories are 0700 and files 0600 because backups hold cluster state.
 *
 * Writes are crash-safe: the bytes go to a temporary file that is fsynced and then renamed (`put`)
 * or hard-linked (`putIfAbsent`) into place, and the directory is fsynced, so after a SIGKILL or a
 * power loss a reader finds the old object or the new one, never a torn file.
 */
export class LocalStorage implements Storage {
  readonly location: string;
  /** The root as configured (absolute). */
  readonly root: string;
  #realRoot: Promise<string> | undefined;

  constructor(root: string) {
    if (root.trim() === '') {
      throw new ValidationError('local storage path is empty', {
        hint: 'set storage.local.path to a directory',
      });
    }
    this.root = path.resolve(root);
    this.location = `local:${this.root}`;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const { dir, file } = await this.resolve(key);
    await this.makeDirs(dir, key);
    const tmp = await this.writeTemp(dir, key, (handle) => handle.writeFile(data));
    try {
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      if (errnoCode(err) === 'EISDIR' || errnoCode(err) === 'ENOTEMPTY') throw this.folderConflict(key);
      throw this.fsError(err, `write '${key}'`);
    }
    await syncDir(dir);
  }

  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    return this.putIfAbsentFrom(key, bytesSource(data));
  }

  async putIfAbsentFrom(key: string, source: ObjectSource): Promise<boolean> {
    const { dir, file } = await this.resolve(key);
    // Cheap early exit: the link below is what makes it atomic, this only avoids writing a temp file.
    if (await pathExists(file)) return this.refuseExisting(file, key);
    await this.makeDirs(dir, key);
    const tmp = await this.writeTemp(dir, key, async (handle) => {
      for (let offset = 0; offset < source.size;) {
        const chunk = await source.read(offset, Math.min(COPY_CHUNK, source.size - offset));
        if (chunk.byteLength === 0)
          throw new Error(`the source of '${key}' ended at ${offset} of ${source.size} bytes`);
        // writeFile on a handle writes at the current position and loops until all is written.
        await handle.writeFile(chunk);
        offset += chunk.byteLength;
      }
    });
    try {
      // link(2) fails with EEXIST if the target exists: unlike rename, it never replaces it, so of
      // two concurrent writers (threads or processes) exactly one wins.
      await fs.link(tmp, file);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EEXIST') return await this.refuseExisting(file, key);
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
        throw new StorageUnavailableError(
          `cannot create '${key}' in ${this.location}: the file system does not support hard links (${code})`,
          { hint: 'put storage.local.path on a POSIX file system (ext4, xfs, btrfs, NFSv4, …)', cause: err },
        );
      }
      throw this.fsError(err, `create '${key}'`);
    } finally {
      await fs.rm(tmp, { force: true });
    }
    await syncDir(dir);
    return true;
  }

  async get(key: string): Promise<Uint8Array> {
    const { root, file } = await this.resolve(key);
    await this.assertInsideRoot(root, file, key);
    try {
      return await fs.readFile(file);
    } catch (err) {
      // A key whose path is a folder of other keys, or runs through an object, is simply absent.
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
        throw new StorageKeyNotFound(key, this.location);
      }
      throw this.fsError(err, `read '${key}'`);
    }
  }

  async exists(key: string): Promise<boolean> {
    const { root, file } = await this.resolve(key);
    await this.assertInsideRoot(root, file, key);
    try {
      return (await fs.stat(file)).isFile();
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw this.fsError(err, `check '${key}'`);
    }
  }

  async delete(key: string): Promise<boolean> {
    const { dir, file } = await this.resolve(key);
    try {
      // lstat, not stat: a symlink is removed itself, whatever it points to.
      if (!(await fs.lstat(file)).isDirectory()) await fs.unlink(file);
      else return false;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw this.fsError(err, `delete '${key}'`);
    }
    await syncDir(dir);
    return true;
  }

  /**
   * Regular files under the root whose key starts with `prefix`. Symlinks are not followed (a
   * listing never leaves the root), and dot-files, which include temporary files, are skipped.
   */
  async list(prefix: string): Promise<string[]> {
    assertSafePrefix(prefix, this.location);
    const root = await this.realRoot();
    // Start at the deepest folder the prefix names fully instead of walking the whole tree.
    const slash = prefix.lastIndexOf('/');
    const startRel = slash < 0 ? '' : prefix.slice(0, slash);
    const startDir = startRel === '' ? root : path.join(root, ...startRel.split('/'));
    await this.assertInsideRoot(root, startDir, prefix);
    const keys: string[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw this.fsError(err, `list '${rel}'`);
      }
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue;
        const key = rel === '' ? entry.name : `${rel}/${entry.name}`;
        if (entry.isDirectory()) {
          const asFolder = `${key}/`;
          if (asFolder.startsWith(prefix) || prefix.startsWith(asFolder)) {
            await walk(path.join(dir, entry.name), key);
          }
        } else if (entry.isFile() && key.startsWith(prefix)) {
          keys.push(key);
        }
      }
    };
    await walk(startDir, startRel);
    return keys.sort();
  }

  /**
   * Removes temporary files that writers killed mid-write left behind (they are never listed or
   * read, but they take space). Only files older than `olderThanMs` go: a younger one may belong
   * to a write in progress. Returns how many were removed.
   */
  async removeStaleTempFiles(olderThanMs = 24 * 60 * 60 * 1000): Promise<number> {
    const root = await this.realRoot();
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile() && entry.name.startsWith(TEMP_PREFIX)) {
          const stat = await fs.lstat(full).catch(() => undefined);
          if (stat && stat.mtimeMs <= cutoff) {
            await fs.rm(full, { force: true });
            removed++;
          }
        }
      }
    };
    await walk(root);
    return removed;
  }

  /** The root's real path, creating it (0700) on first use. A failed attempt is retried next time. */
  private realRoot(): Promise<string> {
    this.#realRoot ??= (async () => {
      try {
        await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
        return await fs.realpath(this.root);
      } catch (err) {
        this.#realRoot = undefined;
        throw this.fsError(err, 'create the storage directory');
      }
    })();
    return this.#realRoot;
  }

  private async resolve(key: string): Promise<{ root: string; dir: string; file: string }> {
    assertSafeKey(key, this.location);
    const root = await this.realRoot();
    const file = path.join(root, ...key.split('/'));
    const dir = path.dirname(file);
    await this.assertInsideRoot(root, dir, key);
    return { root, dir, file };
  }

  /**
   * Segments are already free of `..`, but a symlink inside the root may still lead out of it.
   * Resolves the deepest existing part of `target` and checks it is the root or below it.
   */
  private async assertInsideRoot(root: string, target: string, key: string): Promise<void> {
    let current = target;
    for (;;) {
      let real: string;
      try {
        real = await fs.realpath(current);
      } catch (err) {
        const code = errnoCode(err);
        if ((code === 'ENOENT' || code === 'ENOTDIR') && current !== root) {
          current = path.dirname(current);
          continue;
        }
        throw this.fsError(err, `resolve '${key}'`);
      }
      if (real !== root && !real.startsWith(root + path.sep)) {
        throw new UnsafeKeyError(
          `unsafe storage key ${JSON.stringify(key)} for ${this.location}: ` +
            `'${path.relative(root, current) || '.'}' is a symlink that resolves outside the root (${real})`,
          { hint: `remove the symlink, or point storage.local.path at the real directory` },
        );
      }
      return;
    }
  }

  private async makeDirs(dir: string, key: string): Promise<void> {
    let first: string | undefined;
    try {
      first = await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOTDIR' || code === 'EEXIST') {
        throw new KeyConflictError(
          `cannot store '${key}' in ${this.location}: a leading part of it is already an object`,
          { hint: 'a key cannot be both an object and a folder of other keys; choose another key' },
        );
      }
      throw this.fsError(err, `create the folder of '${key}'`);
    }
    // A new folder is an entry of its parent: sync every parent that gained one, or a power loss
    // can drop the folder together with the object in it.
    if (first !== undefined) {
      for (let d = dir; ; d = path.dirname(d)) {
        await syncDir(path.dirname(d));
        if (d === first || d === path.dirname(d)) break;
      }
    }
  }

  /** A new temporary file in `dir` (0600) filled by `write`, fsynced and closed; removed on error. */
  private async writeTemp(
    dir: string,
    key: string,
    write: (handle: fs.FileHandle) => Promise<void>,
  ): Promise<string> {
    const tmp = path.join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    let handle;
    try {
      handle = await fs.open(tmp, 'wx', 0o600);
      await write(handle);
      await handle.sync();
    } catch (err) {
      await handle?.close().catch(() => undefined);
      await fs.rm(tmp, { force: true });
      throw this.fsError(err, `write '${key}'`);
    }
    await handle.close();
    return tmp;
  }

  private async refuseExisting(file: string, key: string): Promise<false> {
    const stat = await fs.lstat(file).catch(() => undefined);
    if (stat?.isDirectory()) throw this.folderConflict(key);
    return false;
  }

  private folderConflict(key: string): KeyConflictError {
    return new KeyConflictError(
      `cannot store '${key}' in ${this.location}: it is already a folder of other keys ('${key}/…')`,
      { hint: 'a key cannot be both an object and a folder of other keys; choose another key' },
    );
  }

  private fsError(err: unknown, action: string): KsUpgradeError {
    const code = errnoCode(err);
    const detail = err instanceof Error ? err.message : String(err);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      return new StorageUnavailableError(`cannot ${action} in ${this.location}: ${detail}`, {
        hint: `make ${this.root} writable for this user (uid ${process.getuid?.() ?? '?'}) or set storage.local.path to a writable directory`,
        cause: err,
      });
    }
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new StorageUnavailableError(`cannot ${action} in ${this.location}: no space left (${code})`, {
        hint: `free space on the volume of ${this.root} or enlarge it`,
        cause: err,
      });
    }
    return new KsUpgradeError(`cannot ${action} in ${this.location}: ${detail}`, { cause: err });
  }
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** fsync a directory so a rename, link or unlink in it survives a crash. */
async function syncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Some file systems (and platforms) cannot fsync a directory; the data file itself is synced.
    const code = errnoCode(err);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    await handle?.close();
  }
}
