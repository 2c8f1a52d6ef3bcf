import { createCipheriv, createDecipheriv, createHash, randomBytes, type CipherGCM } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { inspect } from 'node:util';
import type { EncryptionConfig } from '../config/types.js';
import { EncryptionKeyError } from './errors.js';

/** The only algorithm written today; the header names it so another can be added later. */
export const ENCRYPTION_ALGORITHM = 'AES-256-GCM';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const CREATE_KEY_HINT =
  'create a key with `head -c 32 /dev/urandom > backup.key` (or `openssl rand -hex 32`)';

/** Short public fingerprint of a key; domain-separated so it is never a plain hash of the key. */
function fingerprint(key: Uint8Array): string {
  return createHash('sha256').update('ks-upgrade/backup-key-id\0').update(key).digest('hex').slice(0, 16);
}

/**
 * An AES-256 key for backups. The key bytes are private and never printed: `inspect`, `toString`
 * and `JSON.stringify` show only the fingerprint {@link EncryptionKey.id}.
 */
export class EncryptionKey {
  /** First 16 hex characters of a SHA-256 over the key; stored in every object it encrypts. */
  readonly id: string;
  readonly #key: Buffer;

  constructor(
    key: Uint8Array,
    /** Where it came from, for messages: `storage.encryption.keyFile /path` or `…keyEnv VAR`. */
    readonly source: string,
  ) {
    if (key.byteLength !== KEY_BYTES) {
      throw new EncryptionKeyError(
        `${source}: the key has ${key.byteLength} bytes, AES-256 needs ${KEY_BYTES}`,
        {
          hint: CREATE_KEY_HINT,
        },
      );
    }
    this.#key = Buffer.from(key);
    this.id = fingerprint(this.#key);
  }

  /** Encrypts with a fresh random 96-bit IV; `aad` is authenticated but not encrypted. */
  encrypt(plaintext: Uint8Array, iv: Uint8Array, aad: Uint8Array): { ciphertext: Buffer; tag: Buffer } {
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { ciphertext, tag: cipher.getAuthTag() };
  }

  /**
   * {@link encrypt} in pieces, for payloads not held in memory: `update` each piece, then `final`
   * and `getAuthTag`. The same key, IV, AAD and plaintext give the same ciphertext and tag.
   */
  createCipher(iv: Uint8Array, aad: Uint8Array): CipherGCM {
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad);
    return cipher;
  }

  /** Decrypts and authenticates; throws (the caller reports an IntegrityError) when anything differs. */
  decrypt(ciphertext: Uint8Array, iv: Uint8Array, tag: Uint8Array, aad: Uint8Array): Buffer {
    const decipher = createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  }

  toString(): string {
    return `EncryptionKey(${this.id})`;
  }

  toJSON(): { id: string } {
    return { id: this.id };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** A fresh IV per object: GCM with a repeated (key, IV) pair leaks the XOR of plaintexts. */
export function newIv(): Buffer {
  return randomBytes(IV_BYTES);
}

export const GCM_IV_BYTES = IV_BYTES;
export const GCM_TAG_BYTES = TAG_BYTES;

/** Hex or base64 (standard or URL-safe) text of exactly 32 bytes, else undefined. */
function decodeKeyText(text: string): Buffer | undefined {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(t)) {
    const bytes = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.byteLength === KEY_BYTES) return bytes;
  }
  return undefined;
}

/**
 * Parses the contents of a key file: 32 raw bytes, or hex/base64 text of 32 bytes. 32 bytes of
 * printable text are refused: that is a password or a 16-byte hex key, not 256 random bits.
 */
export function parseKeyFile(content: Uint8Array, source: string): EncryptionKey {
  const bytes = Buffer.from(content);
  if (bytes.byteLength === KEY_BYTES && !bytes.every((b) => b >= 0x20 && b < 0x7f)) {
    return new EncryptionKey(bytes, source);
  }
  const decoded = decodeKeyText(bytes.toString('utf8'));
  if (decoded) return new EncryptionKey(decoded, source);
  throw new EncryptionKeyError(
    `${source} does not hold a usable key (${bytes.byteLength} bytes): expected 32 random bytes, ` +
      '64 hex characters or base64 of 32 bytes',
    { hint: CREATE_KEY_HINT },
  );
}

/**
 * The backup key configured in `storage.encryption`, or undefined when encryption is off.
 * `keyFile` holds raw, hex or base64 bytes; `keyEnv` names a variable holding hex or base64.
 */
export async function loadEncryptionKey(
  config: EncryptionConfig | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<EncryptionKey | undefined> {
  if (!config || (!config.keyFile && !config.keyEnv)) return undefined;
  if (config.keyFile && config.keyEnv) {
    throw new EncryptionKeyError('storage.encryption sets both keyFile and keyEnv', {
      hint: 'keep one of storage.encryption.keyFile and storage.encryption.keyEnv',
    });
  }
  if (config.keyFile) {
    const source = `storage.encryption.keyFile ${config.keyFile}`;
    let content: Buffer;
    try {
      content = await readFile(config.keyFile);
    } catch (err) {
      const code = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
      throw new EncryptionKeyError(`cannot read ${source}: ${code}`, {
        hint: `mount the key file at ${config.keyFile} (mode 0400), or ${CREATE_KEY_HINT}`,
      });
    }
    return parseKeyFile(content, source);
  }
  const name = config.keyEnv ?? '';
  const source = `storage.encryption.keyEnv ${name}`;
  const value = env[name];
  if (value === undefined || value.trim() === '') {
    throw new EncryptionKeyError(`${source}: environment variable ${name} is not set or empty`, {
      hint: `export ${name}=$(openssl rand -hex 32) — and keep that value: backups cannot be read without it`,
    });
  }
  const decoded = decodeKeyText(value);
  if (!decoded) {
    throw new EncryptionKeyError(
      `${source}: the value is not 64 hex characters or base64 of 32 bytes (it has ${value.trim().length} characters)`,
      { hint: `generate one with \`openssl rand -hex 32\`` },
    );
  }
  return new EncryptionKey(decoded, source);
}
