// Encoding of a backup object whose payload arrives as a stream (a list too big to hold in memory).
// The object format puts the payload's size and sha256 — and, encrypted, the GCM tag, computed over
// additional data that includes the size — in the header, before the payload. So the payload is
// spooled to a temporary file first, and the object is then read from the header bytes plus that
// file (an ObjectSource) by the storage backend.
//
// Encrypted stores never spool plaintext: the first pass encrypts under a random key that exists
// only in this process's memory; once the size is known, the second pass decrypts it (checking its
// tag) and encrypts it for real into a second file, hashing the ciphertext. A killed process leaves
// at worst a file nobody can decrypt.
import { createCipheriv, createDecipheriv, createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ObjectSource } from '../storage/storage.js';
import type { EncryptionKey } from './encryption.js';
import {
  additionalData,
  completeHeader,
  headerBytes,
  newEncryptionHeader,
  type BackupHeader,
  type HeaderBase,
} from './format.js';

/** Prefix of the spool folders in `os.tmpdir()` (`$TMPDIR`). */
export const SPOOL_PREFIX = 'ks-upgrade-spool-';
/** Bytes gathered before one write, and read per read. */
const CHUNK = 1024 * 1024;
const SPOOL_CIPHER = 'aes-256-gcm';

export interface SpoolInput {
  /** The full storage key (it goes into the header). */
  key: string;
  contentType: string;
  encryptionKey: EncryptionKey | undefined;
  /**
   * Asked once the source has ended: whether the payload is sensitive (the header's `sensitive`).
   * It may throw to refuse the object; nothing is published then and the spool is removed.
   */
  sensitive: () => boolean;
}

/** A spooled object: its header, and all its bytes as a source. `close` removes the spool. */
export interface SpooledObject {
  header: BackupHeader;
  source: ObjectSource;
  close(): Promise<void>;
}

function toBytes(chunk: Uint8Array | string): Uint8Array {
  return typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
}

/** Writes all of `data` at `position`. */
async function writeAll(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.byteLength;) {
    const { bytesWritten } = await handle.write(data, done, data.byteLength - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Appends bytes to a file through a buffer of {@link CHUNK} bytes. `add` copies what it keeps, so
 * a caller may reuse its buffer as soon as `add` resolves.
 */
class Appender {
  readonly #buffer = Buffer.allocUnsafe(CHUNK);
  #used = 0;
  /** Bytes added so far. */
  size = 0;
  #written = 0;
  constructor(private readonly handle: FileHandle) {}

  async add(bytes: Uint8Array): Promise<void> {
    this.size += bytes.byteLength;
    if (this.#used + bytes.byteLength > CHUNK) await this.flush();
    if (bytes.byteLength >= CHUNK) await this.write(bytes);
    else {
      this.#buffer.set(bytes, this.#used);
      this.#used += bytes.byteLength;
    }
  }

  async flush(): Promise<void> {
    if (this.#used === 0) return;
    await this.write(this.#buffer.subarray(0, this.#used));
    this.#used = 0;
  }

  private async write(data: Uint8Array): Promise<void> {
    await writeAll(this.handle, data, this.#written);
    this.#written += data.byteLength;
  }
}

/** Every byte of the file at `handle`, {@link CHUNK} at a time. */
async function* readChunks(handle: FileHandle, size: number): AsyncGenerator<Buffer> {
  const buffer = Buffer.allocUnsafe(CHUNK);
  for (let position = 0; position < size;) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(CHUNK, size - position), position);
    if (bytesRead === 0) throw new Error(`the spool file ended at ${position} of ${size} bytes`);
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

/**
 * Writes the payload from `chunks` to a spool in `os.tmpdir()` (a 0700 folder, 0600 files) and
 * encodes the object as {@link encodeObject} would: same header fields, same payload bytes for
 * the same plaintext when unencrypted. Throws (after removing the spool) when `chunks` throws.
 */
export async function spoolObject(
  chunks: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
  input: SpoolInput,
): Promise<SpooledObject> {
  const dir = await mkdtemp(path.join(tmpdir(), SPOOL_PREFIX));
  const handles: FileHandle[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(handles.splice(0).map((h) => h.close().catch(() => undefined)));
    await rm(dir, { recursive: true, force: true });
  };
  const create = async (name: string): Promise<FileHandle> => {
    const handle = await open(path.join(dir, name), 'wx+', 0o600);
    handles.push(handle);
    return handle;
  };
  try {
    const key = input.encryptionKey;
    const first = await create('payload');
    const out = new Appender(first);
    const hash = createHash('sha256');
    // Encrypted: the spool holds ciphertext under a key that lives only in this process.
    const spoolKey = key ? randomBytes(32) : undefined;
    const spoolIv = randomBytes(12);
    const spoolCipher = spoolKey ? createCipheriv(SPOOL_CIPHER, spoolKey, spoolIv) : undefined;
    for await (const chunk of chunks) {
      const bytes = toBytes(chunk);
      if (spoolCipher) await out.add(spoolCipher.update(bytes));
      else {
        hash.update(bytes);
        await out.add(bytes);
      }
    }
    if (spoolCipher) await out.add(spoolCipher.final());
    await out.flush();
    const size = out.size;

    const base: HeaderBase = {
      key: input.key,
      size,
      contentType: input.contentType,
      createdAt: new Date().toISOString(),
      sensitive: input.sensitive(),
    };
    let header: BackupHeader;
    let payload = first;
    if (!key || !spoolKey || !spoolCipher) {
      header = completeHeader(base, hash.digest('hex'), null);
    } else {
      const { iv, partial } = newEncryptionHeader(key);
      const cipher = key.createCipher(iv, additionalData(base, partial));
      const decipher = createDecipheriv(SPOOL_CIPHER, spoolKey, spoolIv);
      decipher.setAuthTag(spoolCipher.getAuthTag());
      payload = await create('payload.enc');
      const encrypted = new Appender(payload);
      const put = async (bytes: Buffer, h: Hash): Promise<void> => {
        const ciphertext = cipher.update(bytes);
        h.update(ciphertext);
        await encrypted.add(ciphertext);
      };
      for await (const piece of readChunks(first, size)) await put(decipher.update(piece), hash);
      await put(decipher.final(), hash);
      const last = cipher.final();
      hash.update(last);
      await encrypted.add(last);
      await encrypted.flush();
      header = completeHeader(base, hash.digest('hex'), {
        ...partial,
        tag: cipher.getAuthTag().toString('base64'),
      });
      // The first spool is not needed any more: free its space now.
      handles.splice(handles.indexOf(first), 1);
      await first.close();
      await rm(path.join(dir, 'payload'), { force: true });
    }
    return { header, source: objectSource(headerBytes(header), payload, size), close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The object's bytes: `head` from memory, then `size` bytes of the file at `payload`. */
function objectSource(head: Buffer, payload: FileHandle, size: number): ObjectSource {
  return {
    size: head.byteLength + size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      const out = Buffer.allocUnsafe(length);
      let filled = 0;
      if (offset < head.byteLength) {
        filled = head.copy(out, 0, offset, Math.min(head.byteLength, offset + length));
      }
      while (filled < length) {
        const position = offset + filled - head.byteLength;
        const { bytesRead } = await payload.read(out, filled, length - filled, position);
        if (bytesRead === 0) throw new Error(`the spool file ended at ${position} of ${size} bytes`);
        filled += bytesRead;
      }
      return out;
    },
  };
}
