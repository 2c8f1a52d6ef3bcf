// Payload encryption for Temporal: an AES-256-GCM PayloadCodec with a keyring. Every payload the
// SDK sends (workflow and activity inputs and results, queries, updates, signals, heartbeat
// details, memo, failure details) is encrypted before it leaves the process; the Temporal service,
// its database and its UI see ciphertext unless they ask a codec server (codec-server.ts).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { ValidationError } from '../errors.js';
import { GCM_IV_BYTES, GCM_TAG_BYTES, newIv, parseKeyFile, type EncryptionKey } from '../store/encryption.js';

/** `encoding` metadata of an encrypted payload (the value Temporal's samples use). */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata naming the key that encrypted a payload, so a rotated-out key can still decrypt it. */
export const KEY_ID_METADATA = 'encryption-key-id';
const CIPHER_METADATA = 'encryption-cipher';
const CIPHER = 'AES-256-GCM';
// A CommonJS module: its namespace is the default export under ESM.
const PayloadProto = proto.temporal.api.common.v1.Payload;

const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');
const text = (b: Uint8Array | null | undefined): string => (b ? Buffer.from(b).toString('utf8') : '');

/**
 * The codec keys: the first encrypts, every one decrypts. Rotation is prepending a new key (and
 * dropping an old one only when no history still needs it).
 */
export class Keyring {
  readonly current: EncryptionKey;
  readonly #byId: Map<string, EncryptionKey>;

  constructor(keys: EncryptionKey[]) {
    const [first] = keys;
    if (!first) throw new ValidationError('the codec keyring is empty');
    this.current = first;
    this.#byId = new Map(keys.map((k) => [k.id, k]));
  }

  get ids(): string[] {
    return [...this.#byId.keys()];
  }

  get(id: string): EncryptionKey | undefined {
    return this.#byId.get(id);
  }
}

/**
 * A keyring from text: one key per line (64 hex characters or base64 of 32 bytes; `#` starts a
 * comment), or a file of exactly 32 raw bytes. The first key encrypts.
 */
export function parseKeyring(content: Uint8Array, source: string): Keyring {
  const bytes = Buffer.from(content);
  if (bytes.byteLength === 32 && !bytes.every((b) => b >= 0x20 && b < 0x7f)) {
    return new Keyring([parseKeyFile(bytes, source)]);
  }
  const keys: EncryptionKey[] = [];
  bytes
    .toString('utf8')
    .split(/[\n,]/)
    .forEach((line, i) => {
      const t = line.replace(/#.*/, '').trim();
      if (t !== '') keys.push(parseKeyFile(Buffer.from(t), `${source} key ${i + 1}`));
    });
  if (keys.length === 0) {
    throw new ValidationError(`${source} holds no key`, {
      hint: 'put one key per line (`openssl rand -hex 32`); the first one encrypts',
    });
  }
  return new Keyring(keys);
}

/** Where the codec keys come from: a file (`--codec-key-file`, KS_UPGRADE_CODEC_KEY_FILE) or KS_UPGRADE_CODEC_KEY. */
export interface CodecKeySource {
  keyFile?: string;
  /** Keys inline (comma or newline separated), from the environment only. */
  keys?: string;
}

/** The codec key source of flags and environment. */
export function codecKeySource(
  flags: { codecKeyFile?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
): CodecKeySource {
  const keyFile = flags.codecKeyFile ?? env.KS_UPGRADE_CODEC_KEY_FILE;
  if (keyFile) return { keyFile: path.resolve(keyFile) };
  return env.KS_UPGRADE_CODEC_KEY ? { keys: env.KS_UPGRADE_CODEC_KEY } : {};
}

/** Loads the keyring of a source; undefined when none is configured (payloads stay plain). */
export function loadKeyring(source: CodecKeySource): Keyring | undefined {
  if (source.keyFile) {
    let content: Buffer;
    try {
      content = readFileSync(source.keyFile);
    } catch (err) {
      throw new ValidationError(
        `cannot read the codec key file ${source.keyFile}: ${(err as Error).message}`,
        {
          hint: 'create it with `openssl rand -hex 32 > codec.key` (mode 0600), or unset KS_UPGRADE_CODEC_KEY_FILE',
        },
      );
    }
    return parseKeyring(content, `codec key file ${source.keyFile}`);
  }
  if (source.keys) return parseKeyring(Buffer.from(source.keys), 'KS_UPGRADE_CODEC_KEY');
  return undefined;
}

/**
 * The embedded default's key: `<stateDir>/codec.key`, created (mode 0600) with a random key on
 * first use, so the embedded server's history is encrypted without any setup.
 */
export function ensureLocalKeyFile(stateDir: string): string {
  const file = path.join(stateDir, 'codec.key');
  if (!existsSync(file)) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  }
  return file;
}

/**
 * AES-256-GCM over the whole serialized payload (its metadata too, so `encoding` does not leak
 * what the value is). The key id is authenticated data: a payload cannot be made to decrypt
 * under another key's name. Payloads that are not encrypted pass through `decode`, so input typed
 * in the Temporal UI or CLI without the codec server still reaches the workflow.
 */
export class AesGcmCodec implements PayloadCodec {
  constructor(readonly keyring: Keyring) {}

  encode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve(
      payloads.map((p) => {
        const key = this.keyring.current;
        const iv = newIv();
        const plain = PayloadProto.encode(p).finish();
        const { ciphertext, tag } = key.encrypt(plain, iv, utf8(key.id));
        return {
          metadata: {
            encoding: utf8(ENCRYPTED_ENCODING),
            [KEY_ID_METADATA]: utf8(key.id),
            [CIPHER_METADATA]: utf8(CIPHER),
          },
          data: Buffer.concat([iv, ciphertext, tag]),
        };
      }),
    );
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve(
      payloads.map((p) => {
        if (text(p.metadata?.encoding) !== ENCRYPTED_ENCODING) return p;
        const id = text(p.metadata?.[KEY_ID_METADATA]);
        const key = this.keyring.get(id);
        if (!key) {
          throw new ValidationError(
            `a payload is encrypted with codec key ${id || '(none)'}, which is not in the keyring (${this.keyring.ids.join(', ')})`,
            { hint: 'add the old key to the codec key file (after the current one) so it can still decrypt' },
          );
        }
        const data = Buffer.from(p.data ?? new Uint8Array());
        if (data.byteLength < GCM_IV_BYTES + GCM_TAG_BYTES) {
          throw new ValidationError(`an encrypted payload is truncated (${data.byteLength} bytes)`);
        }
        const plain = key.decrypt(
          data.subarray(GCM_IV_BYTES, data.byteLength - GCM_TAG_BYTES),
          data.subarray(0, GCM_IV_BYTES),
          data.subarray(data.byteLength - GCM_TAG_BYTES),
          utf8(id),
        );
        return PayloadProto.decode(plain);
      }),
    );
  }
}

/** The data converter of a keyring: the codec when there is one, the SDK's default otherwise. */
export function dataConverterOf(keyring: Keyring | undefined): DataConverter {
  return keyring ? { payloadCodecs: [new AesGcmCodec(keyring)] } : {};
}
