// `quire serve --provider / --kv-budget` as a user runs it: the engine behind the bridge runs with
// them (asked through the bridge's own API, with its token), they are not written into the app's
// saved settings, and a budget the app's Settings could not hold is refused before anything starts.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-cli-serve-'));
const dataDir = path.join(tmp, 'data');
const env = { ...process.env, QUIRE_HOME: path.join(tmp, 'home') };
let modelDir: string;

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, [path.join(repo, 'bin/quire.js'), 'serve', ...args], { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function exited(proc: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (proc.exitCode !== null ? resolve(proc.exitCode) : proc.once('exit', (code) => resolve(code))));
}

beforeAll(async () => {
  modelDir = await makeModelDir(tinySpec({ seed: 4 }));
  fs.mkdirSync(path.join(tmp, 'renderer'));
  fs.writeFileSync(path.join(tmp, 'renderer', 'index.html'), '<!doctype html><title>Quire</title>');
});
afterAll(() => {
  removeDir(modelDir);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('quire serve --provider --kv-budget', () => {
  it('runs the engine with them, for this run only', async () => {
    const proc = start(['--port', '0', '--db', path.join(dataDir, 'quire.db'), '--model', modelDir, '--provider', 'cpu', '--kv-budget', '32MiB', '--renderer', path.join(tmp, 'renderer')]);
    let log = '';
    proc.stderr!.on('data', (d) => (log += d));
    try {
      const { base, token } = await new Promise<{ base: string; token: string }>((resolve, reject) => {
        let out = '';
        proc.stdout!.on('data', (d) => {
          out += d;
          const m = /(http:\/\/127\.0\.0\.1:\d+)\/#token=(\w+)/.exec(out);
          if (m) resolve({ base: m[1], token: m[2] });
        });
        proc.once('exit', (code) => reject(new Error(`quire serve exited (${code}): ${log}`)));
      });
      const request = async (name: string) => {
        const res = await fetch(`${base}/api/${name}`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: '{}',
        });
        const body = (await res.json()) as { ok: boolean; result: Record<string, unknown> };
        expect(body.ok, JSON.stringify(body)).toBe(true);
        return body.result;
      };
      // the model loads in the background (EngineService.open): the window is answered at once
      let info = await request('app.info');
      while ((info.model as { loading: boolean }).loading) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        info = await request('app.info');
      }
      const { version } = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string };
      expect(info.version).toBe(version);
      expect(info.model).toMatchObject({ ready: true, provider: 'cpu', dir: modelDir });
      expect(await request('settings.get')).toMatchObject({ provider: 'cpu', kvBudgetBytes: 32 * 1024 ** 2 });
      expect(await request('kv.stats')).toMatchObject({ budgetBytes: 32 * 1024 ** 2 });
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exited(proc), log).toBe(0);
    expect(fs.existsSync(path.join(dataDir, 'app-settings.json'))).toBe(false);
  });

  it('refuses a budget the app could not keep, before starting anything', async () => {
    const proc = start(['--db', path.join(tmp, 'other', 'quire.db'), '--kv-budget', '1MB']);
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    expect(await exited(proc)).toBe(2);
    expect(stderr).toMatch(/^quire serve: --kv-budget: the app keeps a budget from 16 MiB to 1 TiB \(got 976\.56 KiB\)/);
    expect(fs.existsSync(path.join(tmp, 'other'))).toBe(false);
  });
});
