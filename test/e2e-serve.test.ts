// End to end in Debian Chromium against `quire serve` (a child process, as a user runs it) with a
// generated tiny model and a small fixture folder: first run -> add the folder -> progress reaches
// done -> a search shows a highlighted hit -> choose the model -> a question streams an answer with
// its sources -> clicking one shows the passage -> a second question reports reused blocks.
// Screenshots of each view go to test-output/screenshots/.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from './tools/generate-model.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.QUIRE_CHROMIUM ?? '/usr/bin/chromium';
const shots = path.join(root, 'test-output', 'screenshots');
const hasChromium = fs.existsSync(CHROMIUM);

let tmp: string;
let server: ChildProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let url: string;
let token: string;
let serverLog = '';

function ensureRenderer(): void {
  if (fs.existsSync(path.join(root, 'dist', 'renderer', 'index.html'))) return;
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vite build failed:\n${r.stdout}\n${r.stderr}`);
}

async function startServe(): Promise<void> {
  server = spawn(process.execPath, [path.join(root, 'bin', 'quire.js'), 'serve', '--port', '0', '--db', path.join(tmp, 'data', 'quire.db')], {
    cwd: root,
    env: { ...process.env, QUIRE_HOME: path.join(tmp, 'data') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stderr!.on('data', (d) => (serverLog += String(d)));
  url = await new Promise<string>((resolve, reject) => {
    server!.stdout!.on('data', (d) => {
      serverLog += String(d);
      const m = /(http:\/\/127\.0\.0\.1:\d+\/#token=(\w+))/.exec(serverLog);
      if (m) {
        token = m[2];
        resolve(m[1]);
      }
    });
    server!.once('exit', (code) => reject(new Error(`quire serve exited (${code}):\n${serverLog}`)));
  });
}

const nav = (name: string) => page.getByRole('navigation', { name: 'Views' }).getByRole('button', { name });
const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

describe.skipIf(!hasChromium)('quire serve in Chromium', () => {
  beforeAll(async () => {
    fs.mkdirSync(shots, { recursive: true });
    ensureRenderer();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-e2e-'));
    await generateModel(path.join(tmp, 'model'), tinySpec());
    const docs = path.join(tmp, 'docs');
    fs.mkdirSync(docs);
    fs.writeFileSync(
      path.join(docs, 'sea.md'),
      '# The sea\n\nThe lighthouse keeper wrote every evening about storms, ships and the colour of the sea.\n\n' +
        '## Leaves\n\nPhotosynthesis turns light, water and carbon dioxide into sugar and oxygen inside the leaf.\n',
    );
    fs.writeFileSync(path.join(docs, 'search.txt'), 'A binary search halves the interval each step, so a million sorted keys need twenty probes.\n');
    fs.writeFileSync(path.join(docs, 'broken.pdf'), '%PDF-1.7 this is not really a PDF');
    await startServe();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(60_000);
  });

  afterAll(async () => {
    await browser?.close();
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('opens on the welcome view and indexes a folder added there; progress reaches done', async () => {
    await page.goto(url);
    await page.getByRole('heading', { name: 'Welcome to Quire' }).waitFor();
    expect(new URL(page.url()).hash).toBe(''); // the token left the address bar
    await shot('welcome');
    await page.getByLabel('Folder path').fill(path.join(tmp, 'docs'));
    await page.getByRole('button', { name: 'Add folder' }).click();
    await nav('Library').click();
    await page.getByTestId('folder-state').filter({ hasText: 'Done' }).waitFor();
    await expect.poll(() => page.getByLabel('Parsing').evaluate((e: HTMLProgressElement) => [e.value, e.max])).toEqual([3, 3]);
    await page.getByRole('button', { name: 'Show files not indexed' }).click();
    await page.getByText(/broken\.pdf/).waitFor();
    await shot('library');
  });

  it('searches offline with a highlighted hit, before any model', async () => {
    await nav('Search').click();
    await page.getByLabel('Search your library').fill('lighthouse');
    const mark = page.locator('.hit-snippet mark').first();
    await mark.waitFor();
    expect((await mark.textContent())?.toLowerCase()).toBe('lighthouse');
    await shot('search');
  });

  it('chooses the model in Settings', async () => {
    await nav('Settings').click();
    await page.getByLabel('Model folder').fill(path.join(tmp, 'model'));
    await page.getByRole('button', { name: 'Use this folder' }).click();
    await page.getByText(/^Model ready/).waitFor();
    await shot('settings');
  });

  it('streams an answer with sources; a source opens the passage; a second question reuses blocks', async () => {
    await nav('Chat').click();
    // count the streamed pieces on a second event stream (same origin, same token)
    await page.evaluate((t) => {
      const w = window as unknown as { pieces: number };
      w.pieces = 0;
      new EventSource(`/api/events?token=${t}`).addEventListener('answer.text', () => w.pieces++);
    }, token);
    const ask = async (question: string) => {
      await page.getByLabel('Ask a question').fill(question);
      await page.keyboard.press('Enter');
    };
    await ask('What did the lighthouse keeper write about?');
    await page.getByTestId('readout').first().waitFor();
    expect(await page.evaluate(() => (window as unknown as { pieces: number }).pieces)).toBeGreaterThan(1);
    expect((await page.getByTestId('answer').first().textContent())!.length).toBeGreaterThan(0);
    await page.getByRole('button', { name: /^Citation 1:/ }).first().click();
    const passage = page.getByTestId('passage-text');
    await passage.filter({ hasText: 'lighthouse keeper' }).waitFor();
    expect(await passage.locator('mark').count()).toBeGreaterThan(0);
    await shot('chat-citation');

    await page.getByRole('button', { name: 'New chat' }).click();
    await ask('What did the lighthouse keeper write about?');
    const readout = page.getByTestId('readout').first();
    await readout.waitFor();
    const text = (await readout.textContent())!;
    const reused = Number(/blocks (\d+) reused/.exec(text)?.[1]);
    expect(reused).toBeGreaterThan(0);
    await page.getByRole('navigation', { name: 'Chat history' }).getByRole('button').nth(1).waitFor();
    await shot('chat-second-question');
  });
});
