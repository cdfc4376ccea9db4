// Model download against a local server in the hub's URL layout, serving a generated model:
// listing, download, interruption + resume (Range), corrupt byte detected, catalog sanity.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG, DEFAULT_MODEL_ID, resolveModelDir } from '../electron/models/catalog.ts';
import { downloadModel, IntegrityError, listHubFiles } from '../electron/models/download.ts';
import { Engine } from '../native-models/engine.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';

const REPO = 'test-org/tiny-model';

function walk(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? walk(full, base) : [path.relative(base, full).split(path.sep).join('/')];
  });
}

describe('model download from a hub-layout server', () => {
  let source: string;
  let tmp: string;
  let server: http.Server;
  let hubUrl: string;
  const behaviour = { dropAfter: 0, corrupt: '', ranges: [] as string[] };

  beforeAll(async () => {
    source = await makeModelDir(tinySpec({ seed: 41 }));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-dl-'));
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === `/api/models/${REPO}/tree/main`) {
        const entries = walk(source).map((p) => {
          const data = fs.readFileSync(path.join(source, p));
          const lfs = p.includes('onnx');
          return {
            type: 'file',
            path: p,
            size: lfs ? 134 : data.length,
            oid: crypto.createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex'),
            ...(lfs ? { lfs: { oid: crypto.createHash('sha256').update(data).digest('hex'), size: data.length } } : {}),
          };
        });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(entries));
        return;
      }
      const prefix = `/${REPO}/resolve/main/`;
      if (!url.pathname.startsWith(prefix)) {
        res.statusCode = 404;
        res.end();
        return;
      }
      const rel = decodeURIComponent(url.pathname.slice(prefix.length));
      let data = fs.readFileSync(path.join(source, rel));
      if (behaviour.corrupt === rel) {
        data = Buffer.from(data);
        data[data.length >> 1] ^= 0xff;
      }
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = range ? Number(range[1]) : 0;
      if (range) behaviour.ranges.push(`${rel}:${start}`);
      res.statusCode = range ? 206 : 200;
      if (range) res.setHeader('content-range', `bytes ${start}-${data.length - 1}/${data.length}`);
      res.setHeader('content-length', String(data.length - start));
      const body = data.subarray(start);
      if (behaviour.dropAfter > 0 && body.length > behaviour.dropAfter) {
        const cut = behaviour.dropAfter;
        behaviour.dropAfter = 0;
        res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    removeDir(source);
    removeDir(tmp);
  });

  const model = {
    repo: REPO,
    revision: 'main',
    files: [
      { remote: 'config.json' },
      { remote: 'tokenizer.json' },
      { remote: 'tokenizer_config.json' },
      { remote: 'generation_config.json', optional: true },
      { remote: 'missing.json', optional: true },
      { remote: 'onnx/model.onnx' },
      { remote: 'onnx/model.onnx_data' },
    ],
  };

  it('lists files with sizes and LFS hashes', async () => {
    const files = await listHubFiles(REPO, 'main', { hubUrl });
    const onnx = files.find((f) => f.path === 'onnx/model.onnx')!;
    expect(onnx.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(onnx.size).toBe(fs.statSync(path.join(source, 'onnx/model.onnx')).size);
  });

  it('downloads with progress, resumes after an interruption, and the folder loads', async () => {
    const dest = path.join(tmp, 'resume');
    const dataSize = fs.statSync(path.join(source, 'onnx/model.onnx_data')).size;
    expect(dataSize).toBeGreaterThan(4096);
    behaviour.dropAfter = 4096;
    await expect(downloadModel(model, dest, { hubUrl })).rejects.toThrow();
    const parts = walk(dest).filter((p) => p.endsWith('.part'));
    expect(parts.length).toBe(1);
    const progress: number[] = [];
    await downloadModel(model, dest, { hubUrl, onProgress: (p) => progress.push(p.bytes / p.total) });
    expect(behaviour.ranges.some((r) => r.endsWith(':4096'))).toBe(true);
    expect(progress.at(-1)).toBe(1);
    for (const f of ['config.json', 'onnx/model.onnx', 'onnx/model.onnx_data']) {
      expect(fs.readFileSync(path.join(dest, f)).equals(fs.readFileSync(path.join(source, f)))).toBe(true);
    }
    expect(walk(dest).some((p) => p.endsWith('.part'))).toBe(false);
    const engine = await Engine.load(dest, { provider: 'cpu' });
    await engine.release();
    expect(resolveModelDir(dest)).toBe(path.resolve(dest));
  });

  it('a corrupt byte fails the integrity check and leaves no file behind', async () => {
    const dest = path.join(tmp, 'corrupt');
    behaviour.corrupt = 'onnx/model.onnx_data';
    await expect(downloadModel(model, dest, { hubUrl })).rejects.toBeInstanceOf(IntegrityError);
    expect(fs.existsSync(path.join(dest, 'onnx/model.onnx_data'))).toBe(false);
    expect(fs.existsSync(path.join(dest, 'onnx/model.onnx_data.part'))).toBe(false);
    behaviour.corrupt = 'tokenizer.json'; // a non-LFS file: checked by its git blob id
    await expect(downloadModel(model, path.join(tmp, 'corrupt2'), { hubUrl })).rejects.toBeInstanceOf(IntegrityError);
    behaviour.corrupt = '';
    await downloadModel(model, dest, { hubUrl });
    expect(fs.existsSync(path.join(dest, '.complete'))).toBe(true);
  });

  it('catalog: unique ids, a default, every entry saves its ONNX file where the engine looks', () => {
    expect(new Set(CATALOG.map((m) => m.id)).size).toBe(CATALOG.length);
    expect(CATALOG.some((m) => m.id === DEFAULT_MODEL_ID)).toBe(true);
    for (const m of CATALOG) expect(m.files.some((f) => (f.local ?? f.remote) === 'onnx/model.onnx')).toBe(true);
  });
});
