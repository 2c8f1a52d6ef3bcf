// Reading .tgz archives (Helm charts) in memory: gzip via node:zlib, tar parsed here. Charts are
// small (kilobytes to a few MB) and only read, so a full tar library would buy nothing.
import { gunzipSync } from 'node:zlib';
import { KsUpgradeError } from '../errors.js';

export interface TarEntry {
  path: string;
  data: Buffer;
}

/** The archive is not a (gzip'd) tar file, or is truncated. */
export class ArchiveFormatError extends KsUpgradeError {}

function field(block: Buffer, offset: number, length: number): string {
  const raw = block.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString('utf8');
}

function octal(block: Buffer, offset: number, length: number): number {
  const text = field(block, offset, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** PAX extended header records: `<len> <key>=<value>\n`. */
function paxPath(data: Buffer): string | undefined {
  let rest = data.toString('utf8');
  while (rest.length > 0) {
    const space = rest.indexOf(' ');
    const len = Number(rest.slice(0, space));
    if (!Number.isFinite(len) || len <= 0) return undefined;
    const record = rest.slice(space + 1, len - 1);
    rest = rest.slice(len);
    if (record.startsWith('path=')) return record.slice(5);
  }
  return undefined;
}

/**
 * The regular files of a tar archive (gzip'd or not), with their full paths. Handles ustar
 * prefixes, GNU long names and PAX path records (Helm writes plain ustar; others may not).
 */
export function readTar(archive: Uint8Array): TarEntry[] {
  let buf = Buffer.from(archive);
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (err) {
      throw new ArchiveFormatError('the archive is not valid gzip', { cause: err });
    }
  }
  const entries: TarEntry[] = [];
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= buf.length) {
    const header = buf.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const size = octal(header, 124, 12);
    const type = String.fromCharCode(header[156] ?? 0);
    const magic = field(header, 257, 6);
    const prefix = magic.startsWith('ustar') ? field(header, 345, 155) : '';
    const name = field(header, 0, 100);
    const dataStart = offset + 512;
    if (dataStart + size > buf.length) throw new ArchiveFormatError('the archive is truncated');
    const data = buf.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = field(data, 0, data.length);
      continue;
    }
    if (type === 'x') {
      longName = paxPath(data) ?? longName;
      continue;
    }
    if (type === 'g') continue;
    const path = longName ?? (prefix ? `${prefix}/${name}` : name);
    longName = undefined;
    if (type === '0' || type === '\0' || type === '7') entries.push({ path, data: Buffer.from(data) });
  }
  return entries;
}
