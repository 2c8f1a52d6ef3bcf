// Looking for secrets where they must not be: in bytes (a file, a history, a log), in their plain,
// base64 (every alignment) and hex forms.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/** A secret the test planted, and its name for the report. */
export interface PlantedSecret {
  name: string;
  value: Buffer;
}

/** Where a secret was found. */
export interface SecretHit {
  secret: string;
  form: string;
  where: string;
}

/**
 * The byte strings that betray `value`: itself, hex (both cases), and the base64 core of the value
 * at each of the three alignments it can take inside a longer base64 text (standard and URL-safe).
 */
export function secretForms(value: Buffer): { form: string; bytes: Buffer }[] {
  const forms: { form: string; bytes: Buffer }[] = [{ form: 'plain', bytes: value }];
  forms.push({ form: 'hex', bytes: Buffer.from(value.toString('hex')) });
  forms.push({ form: 'HEX', bytes: Buffer.from(value.toString('hex').toUpperCase()) });
  for (let shift = 0; shift < 3; shift++) {
    // Base64 character i covers bits [6i, 6i+6): the ones that cover only the value's bits are
    // the same wherever the value sits in a longer text with this alignment.
    const b64 = Buffer.concat([Buffer.alloc(shift), value]).toString('base64');
    const core = b64.slice(Math.ceil((shift * 8) / 6), Math.floor(((shift + value.byteLength) * 8) / 6));
    if (core.length >= 8) {
      forms.push({ form: `base64+${shift}`, bytes: Buffer.from(core) });
      forms.push({
        form: `base64url+${shift}`,
        bytes: Buffer.from(core.replace(/\+/g, '-').replace(/\//g, '_')),
      });
    }
  }
  return forms;
}

/** Every (secret, form) found in `haystack`. */
export function scanBytes(haystack: Buffer, secrets: PlantedSecret[], where: string): SecretHit[] {
  const hits: SecretHit[] = [];
  for (const s of secrets) {
    for (const f of secretForms(s.value)) {
      if (haystack.includes(f.bytes)) hits.push({ secret: s.name, form: f.form, where });
    }
  }
  return hits;
}

/** Scans every regular file under `dir` (recursively). */
export async function scanTree(
  dir: string,
  secrets: PlantedSecret[],
): Promise<{ hits: SecretHit[]; files: number }> {
  const hits: SecretHit[] = [];
  let files = 0;
  for (const entry of await readdir(dir, { recursive: true })) {
    const file = path.join(dir, entry);
    if (!(await stat(file)).isFile()) continue;
    files++;
    hits.push(...scanBytes(await readFile(file), secrets, file));
  }
  return { hits, files };
}

/** A payload of a `temporal workflow show -o json` history: where it is, its fields base64. */
export interface HistoryPayload {
  path: string;
  metadata: Record<string, string>;
  data: string;
}

/** Every `{metadata, data}` payload in a `temporal workflow show -o json` history. */
export function historyPayloads(json: unknown): HistoryPayload[] {
  const out: HistoryPayload[] = [];
  const walk = (v: unknown, at: string): void => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        walk(x, `${at}/${i}`);
      });
      return;
    }
    if (typeof v !== 'object' || v === null) return;
    const o = v as Record<string, unknown>;
    if (typeof o.metadata === 'object' && o.metadata !== null && ('data' in o || 'encoding' in o.metadata)) {
      const metadata = o.metadata as Record<string, string>;
      out.push({ path: at, metadata, data: typeof o.data === 'string' ? o.data : '' });
      return;
    }
    for (const [k, x] of Object.entries(o)) walk(x, `${at}/${k}`);
  };
  walk(json, '');
  return out;
}

/** Search attributes are indexed by the server, never encoded: payloads elsewhere must be. */
export function isSearchAttribute(p: HistoryPayload): boolean {
  return p.path.includes('/searchAttributes/');
}

/** The payloads' data, decoded from base64 and joined (what a reader of the history sees). */
export function payloadText(payloads: HistoryPayload[]): string {
  return payloads.map((p) => Buffer.from(p.data, 'base64').toString('utf8')).join('\n');
}

/** A payload's `encoding` metadata, decoded. */
export function encodingOf(p: { metadata: Record<string, string> }): string {
  return Buffer.from(p.metadata.encoding ?? '', 'base64').toString('utf8');
}
