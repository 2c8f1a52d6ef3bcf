// A separate process for storage tests: the crash test SIGKILLs it mid-write, the race test starts
// several at once, and the cross-process test writes here and reads in the parent (or the reverse).
// Usage: echo '<json task>' | node --import tsx test/helpers/storage-child.ts
import type { StorageConfig } from '../../src/config/types.js';
import { createStorage } from '../../src/storage/index.js';
import { createResourceStore } from '../../src/store/index.js';
import { patternBytes } from './storage.js';

type Task =
  | { mode: 'overwrite'; storage: StorageConfig; key: string; freshPrefix: string; sizes: [number, number] }
  | { mode: 'race'; storage: StorageConfig; key: string; startAt: number; payload: string }
  | {
      mode: 'store-write';
      storage: StorageConfig;
      cluster: string;
      job: string;
      objects: { key: string; value: unknown; sensitive?: boolean }[];
    }
  | { mode: 'store-read'; storage: StorageConfig; cluster: string; job: string; keys: string[] };

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const task = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Task;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

switch (task.mode) {
  case 'overwrite': {
    const storage = await createStorage(task.storage);
    const a = patternBytes(task.sizes[0], 1);
    const b = patternBytes(task.sizes[1], 2);
    // Runs until killed: every write is either complete or invisible, whatever moment the kill hits.
    for (let i = 0; ; i++) {
      await storage.put(task.key, i % 2 === 0 ? a : b);
      if (i === 0) say('ready');
      await storage.putIfAbsent(`${task.freshPrefix}${String(i).padStart(6, '0')}`, i % 2 === 0 ? b : a);
    }
  }
  case 'race': {
    const storage = await createStorage(task.storage);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, task.startAt - Date.now())));
    const created = await storage.putIfAbsent(task.key, Buffer.from(task.payload));
    say(JSON.stringify({ created }));
    break;
  }
  case 'store-write': {
    const store = (await createResourceStore(task.storage)).scope(task.cluster, task.job);
    for (const o of task.objects) {
      const { created } = await store.saveOnce(o.key, o.value, { sensitive: o.sensitive ?? false });
      say(JSON.stringify({ key: o.key, created }));
    }
    break;
  }
  case 'store-read': {
    const store = (await createResourceStore(task.storage)).scope(task.cluster, task.job);
    const values: Record<string, unknown> = {};
    for (const key of task.keys) values[key] = await store.load(key);
    say(JSON.stringify(values));
    break;
  }
}
