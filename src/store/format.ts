// The on-disk format of one backup object (docs/backups.md has the byte-by-byte description):
//
//   ks-upgrade-backup/v1\n
//   {"key":…,"size":…,"sha256":…,"contentType":…,"createdAt":…,"sensitive":…,"encryption":…,"writer":…}\n
//   <payload: the plaintext, or its AES-256-GCM ciphertext (same length)>
//
// Text header, binary payload: `head -2` shows what an object is without any tool, and the payload
// is stored as is (no base64), so big raw objects (chart archives) cost no extra space.
import { createHash } from 'node:crypto';
import { VERSION } from '../version.js';
import {
  ENCRYPTION_ALGORITHM,
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  newIv,
  type EncryptionKey,
} from './encryption.js';
import { EncryptionKeyError, IntegrityError } from './errors.js';

export const FORMAT_MAGIC = 'ks-upgrade-backup/v1';
const MAGIC_LINE = Buffer.from(`${FORMAT_MAGIC}\n`, 'ascii');
const MAGIC_FAMILY = Buffer.from('ks-upgrade-backup/', 'ascii');
/** Headers are a few hundred bytes; the bound keeps a damaged object from being scanned whole. */
const MAX_HEADER_BYTES = 64 * 1024;

/** How an encrypted object was encrypted. `iv` and `tag` are base64. */
export interface EncryptionHeader {
  alg: typeof ENCRYPTION_ALGORITHM;
  keyId: string;
  iv: string;
  tag: string;
}

/** The JSON header line of every backup object. */
export interface BackupHeader {
  /** The full storage key the object was written under; a copied or moved object fails to load. */
  key: string;
  /** Payload length in bytes (plaintext and ciphertext have the same length with GCM). */
  size: number;
  /**
   * Hex SHA-256 of the payload bytes as stored: the plaintext, or the ciphertext when encrypted.
   * Never a hash of encrypted plaintext, which would let anyone test guesses of a short secret.
   */
  sha256: string;
  contentType: string;
  /** ISO 8601 UTC. */
  createdAt: string;
  /** Holds a Secret, a kubeconfig or data the caller marked sensitive (always encrypted then). */
  sensitive: boolean;
  encryption: EncryptionHeader | null;
  /** `ks-upgrade <version>` that wrote it, for forensics. */
  writer: string;
}

export interface EncodeInput {
  key: string;
  plaintext: Uint8Array;
  contentType: string;
  sensitive: boolean;
  encryptionKey: EncryptionKey | undefined;
  createdAt?: Date;
}

/** The header fields known before the payload is hashed or encrypted. */
export type HeaderBase = Omit<BackupHeader, 'sha256' | 'writer' | 'encryption'>;

/**
 * The GCM additional data: every header field except the two that are outputs of the encryption
 * (sha256 of the ciphertext, tag). A header edited to claim another key, type, size, sensitivity
 * or date fails authentication even if its sha256 is recomputed.
 */
export function additionalData(h: HeaderBase, e: EncryptionHeader): Buffer {
  return Buffer.from(
    JSON.stringify([
      FORMAT_MAGIC,
      h.key,
      h.size,
      h.contentType,
      h.createdAt,
      h.sensitive,
      e.alg,
      e.keyId,
      e.iv,
    ]),
    'utf8',
  );
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The encryption header without its tag (an output of the encryption), with a fresh IV. */
export function newEncryptionHeader(key: EncryptionKey): { iv: Buffer; partial: EncryptionHeader } {
  const iv = newIv();
  return {
    iv,
    partial: { alg: ENCRYPTION_ALGORITHM, keyId: key.id, iv: iv.toString('base64'), tag: '' },
  };
}

/** The complete header, its fields in the order docs/backups.md gives. */
export function completeHeader(
  base: HeaderBase,
  sha256: string,
  encryption: EncryptionHeader | null,
): BackupHeader {
  return {
    key: base.key,
    size: base.size,
    sha256,
    contentType: base.contentType,
    createdAt: base.createdAt,
    sensitive: base.sensitive,
    encryption,
    writer: `ks-upgrade ${VERSION}`,
  };
}

/** The bytes before the payload: the magic line and the header line. */
export function headerBytes(header: BackupHeader): Buffer {
  // JSON.stringify escapes every newline inside strings, so the header is exactly one line.
  return Buffer.concat([MAGIC_LINE, Buffer.from(`${JSON.stringify(header)}\n`, 'utf8')]);
}

/** Builds the stored bytes of one object, encrypting when a key is given. */
export function encodeObject(input: EncodeInput): Buffer {
  const base: HeaderBase = {
    key: input.key,
    size: input.plaintext.byteLength,
    contentType: input.contentType,
    createdAt: (input.createdAt ?? new Date()).toISOString(),
    sensitive: input.sensitive,
  };
  let payload: Uint8Array = input.plaintext;
  let encryption: EncryptionHeader | null = null;
  if (input.encryptionKey) {
    const { iv, partial } = newEncryptionHeader(input.encryptionKey);
    const { ciphertext, tag } = input.encryptionKey.encrypt(
      input.plaintext,
      iv,
      additionalData(base, partial),
    );
    payload = ciphertext;
    encryption = { ...partial, tag: tag.toString('base64') };
  }
  return Buffer.concat([headerBytes(completeHeader(base, sha256Hex(payload), encryption)), payload]);
}

/** What a stored object looks like before the payload is checked. */
export interface ParsedObject {
  header: BackupHeader;
  /** The payload as stored (ciphertext when encrypted). */
  payload: Uint8Array;
}

function describeBareContent(bytes: Uint8Array): string {
  const head = Buffer.from(bytes.subarray(0, 64)).toString('utf8').trimStart();
  if (head.startsWith('{') || head.startsWith('[')) return 'bare JSON';
  if (bytes.subarray(0, 512).includes(0)) return 'binary data';
  return 'bare text or YAML';
}

/**
 * Parses the magic line and the header, and checks that the header belongs to `expectedKey` and
 * that the payload has the announced size and sha256. Does not decrypt.
 */
export function parseObject(bytes: Uint8Array, expectedKey: string, location: string): ParsedObject {
  const fail = (problem: string, hint?: string): IntegrityError =>
    new IntegrityError(expectedKey, location, problem, hint);
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  if (!data.subarray(0, MAGIC_LINE.length).equals(MAGIC_LINE)) {
    if (data.length === 0) throw fail('the object is empty (no ks-upgrade header)');
    if (data.length < MAGIC_LINE.length && MAGIC_LINE.subarray(0, data.length).equals(data)) {
      throw fail(`the object is truncated to ${data.length} bytes, inside its header`);
    }
    if (data.subarray(0, MAGIC_FAMILY.length).equals(MAGIC_FAMILY)) {
      const end = data.indexOf(0x0a);
      const version = data
        .subarray(MAGIC_FAMILY.length, end < 0 ? Math.min(data.length, 40) : end)
        .toString();
      throw fail(
        `its format '${MAGIC_FAMILY.toString()}${version}' is not supported (this ks-upgrade ${VERSION} reads ${FORMAT_MAGIC})`,
        'read it with the ks-upgrade version that wrote it (see the `writer` field of its header)',
      );
    }
    throw fail(
      `it has no ks-upgrade header (it holds ${describeBareContent(data)}, ${data.length} bytes)`,
      `ks-upgrade only reads objects it wrote itself (first line '${FORMAT_MAGIC}'); the original Go ` +
        'ks-upgrade stored bare JSON: import its store with `ks-upgrade backups import --from-go <its directory ' +
        'or bucket> --cluster <name>` (`ks-upgrade backups list` names such objects), or move the object away ' +
        'and let ks-upgrade take the backup again',
    );
  }

  const headerStart = MAGIC_LINE.length;
  const newline = data.indexOf(0x0a, headerStart);
  if (newline < 0 || newline - headerStart > MAX_HEADER_BYTES) {
    throw fail(
      data.length - headerStart <= MAX_HEADER_BYTES
        ? `the object is truncated to ${data.length} bytes, inside its header`
        : `the header line is longer than ${MAX_HEADER_BYTES} bytes`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(data.subarray(headerStart, newline).toString('utf8'));
  } catch {
    throw fail('the header line is not valid JSON');
  }
  const header = checkHeaderShape(raw, fail);

  if (header.key !== expectedKey) {
    throw fail(
      `its header belongs to key '${header.key}': the object was copied or moved from there`,
      `move it back to '${header.key}', or restore the object that belongs under '${expectedKey}'`,
    );
  }
  const payload = data.subarray(newline + 1);
  if (payload.length < header.size) {
    throw fail(`the object is truncated: ${payload.length} of ${header.size} payload bytes present`);
  }
  if (payload.length > header.size) {
    throw fail(
      `the payload has ${payload.length - header.size} bytes more than the ${header.size} its header announces`,
    );
  }
  const actual = sha256Hex(payload);
  if (actual !== header.sha256) {
    throw fail(`sha256 mismatch: header ${header.sha256.slice(0, 16)}…, payload ${actual.slice(0, 16)}…`);
  }
  return { header, payload };
}

function checkHeaderShape(raw: unknown, fail: (problem: string) => IntegrityError): BackupHeader {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw fail('the header is not a JSON object');
  const h = raw as Record<string, unknown>;
  const need = (field: string, ok: boolean): void => {
    if (!ok) throw fail(`header field '${field}' is missing or has the wrong type`);
  };
  need('key', typeof h.key === 'string');
  need('size', typeof h.size === 'number' && Number.isSafeInteger(h.size) && h.size >= 0);
  need('sha256', typeof h.sha256 === 'string' && /^[0-9a-f]{64}$/.test(h.sha256));
  need('contentType', typeof h.contentType === 'string');
  need('createdAt', typeof h.createdAt === 'string');
  need('sensitive', typeof h.sensitive === 'boolean');
  need(
    'encryption',
    h.encryption === null || (typeof h.encryption === 'object' && !Array.isArray(h.encryption)),
  );
  if (h.encryption !== null) {
    const e = h.encryption as Record<string, unknown>;
    if (e.alg !== ENCRYPTION_ALGORITHM) {
      throw fail(
        `it is encrypted with '${String(e.alg)}', this ks-upgrade supports only ${ENCRYPTION_ALGORITHM}`,
      );
    }
    need('encryption.keyId', typeof e.keyId === 'string');
    need('encryption.iv', typeof e.iv === 'string' && Buffer.from(e.iv, 'base64').length === GCM_IV_BYTES);
    need(
      'encryption.tag',
      typeof e.tag === 'string' && Buffer.from(e.tag, 'base64').length === GCM_TAG_BYTES,
    );
  }
  return {
    key: h.key as string,
    size: h.size as number,
    sha256: h.sha256 as string,
    contentType: h.contentType as string,
    createdAt: h.createdAt as string,
    sensitive: h.sensitive as boolean,
    encryption: h.encryption as EncryptionHeader | null,
    writer: typeof h.writer === 'string' ? h.writer : 'unknown',
  };
}

/** Throws {@link EncryptionKeyError} unless `key` can decrypt an object with this header. */
export function assertKeyMatches(
  header: BackupHeader,
  key: EncryptionKey | undefined,
  location: string,
): asserts key is EncryptionKey {
  if (!header.encryption) return;
  if (!key) {
    throw new EncryptionKeyError(
      `backup object '${header.key}' in ${location} is encrypted with key ${header.encryption.keyId}, ` +
        'but no encryption key is configured',
      {
        hint: 'set storage.encryption.keyFile or storage.encryption.keyEnv to the key the backups were written with',
      },
    );
  }
  if (key.id !== header.encryption.keyId) {
    throw new EncryptionKeyError(
      `backup object '${header.key}' in ${location} was encrypted with key ${header.encryption.keyId}, ` +
        `the configured key (${key.source}) is ${key.id}`,
      {
        hint: `configure the key with id ${header.encryption.keyId}; backups cannot be read with another key`,
      },
    );
  }
}

/** The plaintext of a parsed object: decrypted and authenticated when encrypted. */
export function openPayload(
  parsed: ParsedObject,
  key: EncryptionKey | undefined,
  location: string,
): Uint8Array {
  const { header, payload } = parsed;
  if (!header.encryption) return payload;
  assertKeyMatches(header, key, location);
  try {
    return key.decrypt(
      payload,
      Buffer.from(header.encryption.iv, 'base64'),
      Buffer.from(header.encryption.tag, 'base64'),
      additionalData(header, header.encryption),
    );
  } catch {
    throw new IntegrityError(
      header.key,
      location,
      'AES-GCM authentication failed: the ciphertext, its IV/tag or the header was changed',
    );
  }
}
