// `quire serve` as a user runs it serves the OpenAI-compatible API on the bridge's port: it prints
// the /v1 URL and a generated key (or uses --api-key, which it does not echo), and an openai client
// pointed at that URL lists the library's models and gets an answer.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { runQuire } from './helpers/cli.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';

const CLI = path.resolve('bin/quire.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-cli-serve-api-'));
const home = path.join(tmp, 'home');
const env: NodeJS.ProcessEnv = { ...process.env, QUIRE_HOME: home };
delete env.QUIRE_API_KEY;
let modelDir: string;
const servers: ChildProcess[] = [];

/** Starts `quire serve` and resolves with everything it printed once the API line is out. */
function serve(extra: string[]): Promise<string> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--db', path.join(tmp, `quire-${servers.length}.db`), '--model', modelDir, ...extra], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  servers.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += String(d);
      if (/OpenAI-compatible API: .*\n/.test(out)) resolve(out);
    });
    child.stderr!.on('data', (d) => (out += String(d)));
    child.once('exit', (code) => reject(new Error(`quire serve exited (${code}):\n${out}`)));
  });
}

beforeAll(async () => {
  modelDir = await makeModelDir(tinySpec({ seed: 71 }));
  fs.mkdirSync(home);
  // with --db, the data directory (settings) is the database's folder
  fs.writeFileSync(path.join(tmp, 'app-settings.json'), JSON.stringify({ provider: 'cpu', eagerPrefill: false }));
});
afterAll(async () => {
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.exitCode !== null) return resolve();
          s.once('exit', () => resolve());
          s.kill('SIGTERM');
        }),
    ),
  );
  removeDir(modelDir);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('quire serve: the OpenAI-compatible API', () => {
  it('prints the /v1 URL and a generated key that an openai client can use', async () => {
    const out = await serve([]);
    const m = /OpenAI-compatible API: (http:\/\/127\.0\.0\.1:\d+\/v1) key: (quire-[0-9a-f]{48})\n/.exec(out);
    expect(m, out).not.toBeNull();
    const client = new OpenAI({ baseURL: m![1], apiKey: m![2], maxRetries: 0 });
    expect((await client.models.list()).data.map((x) => x.id)).toEqual(['quire-library', 'quire-chat']);
    const answer = await client.chat.completions.create({ model: 'quire-chat', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 3 });
    expect(answer.usage!.completion_tokens).toBe(3);
  });

  it('uses --api-key without echoing it, and refuses a key too short to be one', async () => {
    const key = 'my-own-key-for-quire-1234';
    const out = await serve(['--api-key', key]);
    expect(out).not.toContain(key);
    const url = /OpenAI-compatible API: (http:\/\/127\.0\.0\.1:\d+\/v1) /.exec(out)![1];
    expect((await new OpenAI({ baseURL: url, apiKey: key, maxRetries: 0 }).models.list()).data.length).toBe(2);
    const refused = await runQuire(['serve', '--api-key', 'short'], { env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--api-key: a key is 16 to 256 printable ASCII characters/);
  });

  it('takes QUIRE_API_KEY by the same rule, and lists --api-key in its help', async () => {
    const refused = await runQuire(['serve'], { env: { ...env, QUIRE_API_KEY: 'has a space in it, so no' } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/QUIRE_API_KEY: a key is 16 to 256 printable ASCII characters/);
    const help = await runQuire(['serve', '--help'], { env });
    expect(help.stdout).toMatch(/--api-key KEY .*default: \$QUIRE_API_KEY, else one generated and printed/);
  });
});
