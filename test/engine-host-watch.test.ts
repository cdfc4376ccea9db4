// The app's engine service keeps its library current: a file added to (or changed in) a library
// folder is indexed again without the user asking, after the watcher's debounce.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventName, EventPayloads, FolderView } from '../electron/contract/types.ts';
import { EngineService } from '../electron/engine-host/service.ts';
import { untilProgress } from './helpers/progress.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-host-watch-'));
const docs = path.join(tmp, 'docs');
let service: EngineService;
const progress: FolderView[] = [];

describe('engine service folder watching', () => {
  beforeAll(async () => {
    fs.mkdirSync(docs);
    fs.writeFileSync(path.join(docs, 'first.md'), '# First\n\nThe heron waits by the river at dawn.\n');
    const prev = process.env.QUIRE_HOME;
    process.env.QUIRE_HOME = path.join(tmp, 'home'); // no model chosen, nothing read from the user's home
    service = await EngineService.start({
      dbPath: path.join(tmp, 'quire.db'),
      dataDir: path.join(tmp, 'home'),
      host: 'serve',
      emit: <E extends EventName>(name: E, payload: EventPayloads[E]) => {
        if (name === 'folder.progress') progress.push(payload as FolderView);
      },
    });
    process.env.QUIRE_HOME = prev;
  });
  afterAll(async () => {
    await service?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('indexes a new file in a library folder without a request', async () => {
    await service.handle('folders.add', { path: docs });
    await untilProgress(progress, (v) => v.state === 'done' && v.indexed === 1);
    expect(await service.handle('search', { query: 'kingfisher' })).toHaveLength(0);

    progress.length = 0;
    fs.writeFileSync(path.join(docs, 'second.md'), '# Second\n\nA kingfisher dives from the willow.\n');
    await untilProgress(progress, (v) => v.state === 'done' && v.indexed === 2);
    const hits = await service.handle('search', { query: 'kingfisher' });
    expect(hits.map((h) => path.basename(h.path))).toEqual(['second.md']);
  });
});
