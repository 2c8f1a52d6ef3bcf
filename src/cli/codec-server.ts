// `ks-upgrade codec-server`: decodes (and encodes) payloads for the Temporal UI and CLI with the
// same keys as the workers. It runs until SIGINT/SIGTERM.
import { ValidationError } from '../errors.js';
import { AesGcmCodec, codecKeySource, loadKeyring } from '../temporal/codec.js';
import { startCodecServer } from '../temporal/codec-server.js';
import { EXIT, type Io } from './common.js';

export interface CodecServerOptions {
  host?: string;
  port?: string;
  codecKeyFile?: string;
  corsOrigin?: string[];
  namespace?: string[];
}

export async function codecServerCommand(o: CodecServerOptions, io: Io): Promise<number> {
  const keyring = loadKeyring(codecKeySource(o));
  if (!keyring) {
    throw new ValidationError('the codec server needs the codec keys', {
      hint: 'pass --codec-key-file <file> or set KS_UPGRADE_CODEC_KEY_FILE / KS_UPGRADE_CODEC_KEY',
    });
  }
  const port = Number(o.port ?? '8888');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ValidationError(`--port ${o.port}: not a TCP port`);
  }
  const corsOrigins = [
    ...(o.corsOrigin ?? []),
    ...(process.env.KS_UPGRADE_CODEC_CORS_ORIGINS?.split(',').map((s) => s.trim()) ?? []),
  ].filter((s) => s !== '');
  // A secret on the command line is visible to every user of the machine: environment only.
  const authorization = process.env.KS_UPGRADE_CODEC_AUTH;
  const server = await startCodecServer({
    codec: new AesGcmCodec(keyring),
    host: o.host ?? '127.0.0.1',
    port,
    corsOrigins,
    ...(authorization ? { authorization } : {}),
    ...(o.namespace?.length ? { namespaces: o.namespace } : {}),
    log: (line) => io.stderr.write(`${new Date().toISOString()} ${line}\n`),
  });
  io.stderr.write(
    `ks-upgrade codec-server: ${server.url} (keys ${keyring.ids.join(', ')}; encrypting with ${keyring.current.id}; ` +
      `CORS ${corsOrigins.join(', ') || 'none'}; Authorization ${authorization ? 'required' : 'not checked'})\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return EXIT.ok;
}
