// End to end in Debian Chromium against `quire serve` (a child process, as a user runs it) with a
// generated tiny model and a small fixture folder, walking a new user's day: first run (a relative
// path refused; after adding a folder the welcome view still offers the model; choosing it starts the
// KV prefill at once) -> the Library row (gzip text indexed, files not indexed grouped by reason,
// Remove asked first) -> search -> a question streams an answer with sources grouped by document ->
// the passage panel (the question's content words highlighted, Escape closes it) -> a follow-up from
// passages already in the chat says so -> copy, regenerate, rename, export, the long-question counter
// -> a reload reopens the last chat -> delete asked first -> the local API switched on in Settings
// shows the key the engine made. Then screenshots of every view at 1280x800 and 800x600, light and
// dark, in test-output/screenshots/, with a check that nothing overflows; last, prefetch while typing
// (a question typed and paused on is prepared, and its answer says so; one changed after is not).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from './tools/generate-model.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.QUIRE_CHROMIUM ?? '/usr/bin/chromium';
const shots = path.join(root, 'test-output', 'screenshots');
const hasChromium = fs.existsSync(CHROMIUM);

const QUESTION = 'What did the lighthouse keeper write about?';
/** Words of QUESTION that retrieval drops (db/fts-query.ts STOP_WORDS): never highlighted in the passage panel. */
const QUESTION_STOP_WORDS = ['what', 'did', 'the', 'about'];

let tmp: string;
let server: ChildProcess | undefined;
let browser: Browser | undefined;
let context: BrowserContext;
let page: Page;
let url: string;
let serverLog = '';

/** The newest modification time of the files under `dir`. */
function newest(dir: string): number {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .reduce((t, e) => Math.max(t, fs.statSync(path.join(e.parentPath, e.name)).mtimeMs), 0);
}

/** Builds the renderer when it is missing or older than its sources (never tests a stale bundle). */
function ensureRenderer(): void {
  const built = path.join(root, 'dist', 'renderer', 'index.html');
  const sources = Math.max(newest(path.join(root, 'renderer')), newest(path.join(root, 'electron', 'contract')));
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= sources) return;
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
      if (m) resolve(m[1]);
    });
    server!.once('exit', (code) => reject(new Error(`quire serve exited (${code}):\n${serverLog}`)));
  });
}

const nav = (name: string) => page.getByRole('navigation', { name: 'Views' }).getByRole('button', { name });
const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
const ask = async (question: string) => {
  await page.getByLabel('Ask a question').fill(question);
  await page.keyboard.press('Enter');
};
const readouts = () => page.getByTestId('readout');
/** expect.poll's options here: an answer or a prefill may take seconds on a busy machine. */
const POLL = { timeout: 60_000, interval: 100 };

/** A request through the bridge, as the page makes it (its token is in sessionStorage). */
function apiCall<T>(name: string, args: object): Promise<T> {
  return page.evaluate(
    async ([n, a]) => {
      const res = await fetch(`/api/${n}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${sessionStorage.getItem('quire.token')}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(a),
      });
      return ((await res.json()) as { result: unknown }).result;
    },
    [name, args] as const,
  ) as Promise<T>;
}

/** The page and the passage panel fit the window's width (nothing cut off or scrolling sideways). */
async function expectNoSidewaysOverflow(where: string): Promise<void> {
  const overflow = await page.evaluate(() => {
    const doc = document.documentElement;
    const out: string[] = [];
    if (doc.scrollWidth > doc.clientWidth + 1) out.push(`page ${doc.scrollWidth} > ${doc.clientWidth}`);
    for (const sel of ['.passage-panel', '.passage-text', '.messages', '.folder-card']) {
      document.querySelectorAll(sel).forEach((el) => {
        if (el.scrollWidth > el.clientWidth + 1) out.push(`${sel} ${el.scrollWidth} > ${el.clientWidth}`);
      });
    }
    return out;
  });
  expect(overflow, where).toEqual([]);
}

describe.skipIf(!hasChromium)('quire serve in Chromium', () => {
  beforeAll(async () => {
    fs.mkdirSync(shots, { recursive: true });
    ensureRenderer();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-e2e-'));
    await generateModel(path.join(tmp, 'tiny-llama'), tinySpec());
    const docs = path.join(tmp, 'docs');
    fs.mkdirSync(docs);
    fs.writeFileSync(
      path.join(docs, 'sea.md'),
      '# The sea\n\nThe lighthouse keeper wrote every evening about storms, ships and the colour of the sea.\n\n' +
        '## Leaves\n\nPhotosynthesis turns light, water and carbon dioxide into sugar and oxygen inside the leaf.\n',
    );
    fs.writeFileSync(path.join(docs, 'search.txt'), 'A binary search halves the interval each step, so a million sorted keys need twenty probes.\n');
    fs.writeFileSync(path.join(docs, 'broken.pdf'), '%PDF-1.7 this is not really a PDF');
    fs.writeFileSync(path.join(docs, 'empty.txt'), '');
    fs.writeFileSync(path.join(docs, 'heron.txt.gz'), gzipSync('The heron migration starts when the lighthouse keeper lights the lamp.\n'));
    await startServe();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['clipboard-read', 'clipboard-write'] });
    page = await context.newPage();
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

  it('first run: a relative path is refused; after a folder the welcome view still offers the model', async () => {
    await page.goto(url);
    await page.getByRole('heading', { name: 'Welcome to Quire' }).waitFor();
    expect(new URL(page.url()).hash).toBe(''); // the token left the address bar
    await shot('welcome');
    await page.getByLabel('Folder path').fill('docs');
    await page.getByRole('button', { name: 'Add folder' }).click();
    await page.getByRole('alert').filter({ hasText: 'type a full path' }).waitFor();
    await page.getByLabel('Folder path').fill(path.join(tmp, 'docs'));
    await page.getByRole('button', { name: 'Add folder' }).click();
    await page.getByTestId('step-folder').getByText(`✓ ${path.join(tmp, 'docs')}`).waitFor();
    // still the welcome view, with step 1 on offer
    expect(await page.getByRole('heading', { name: 'Welcome to Quire' }).isVisible()).toBe(true);
    expect(await page.getByTestId('step-model').getByLabel('Model folder').isVisible()).toBe(true);
    await shot('welcome-folder-added');

    await page.getByTestId('step-model').getByLabel('Model folder').fill(path.join(tmp, 'tiny-llama'));
    await page.getByRole('button', { name: 'Use this folder' }).click();
    await page.getByTestId('step-model').getByText('✓ tiny-llama').waitFor();
    await page.getByRole('button', { name: 'Start asking' }).click();
    // the header names the model (not "model: cpu")
    const badge = page.getByRole('button', { name: 'Model status' });
    await badge.filter({ hasText: 'tiny-llama' }).waitFor();
    expect(await badge.textContent()).toBe('tiny-llama');
  });

  it('the Library row: prefill started by choosing the model, gzip indexed, problems by reason, Remove asked first', async () => {
    await nav('Library').click();
    const card = page.getByRole('listitem', { name: `Folder ${path.join(tmp, 'docs')}` });
    await card.getByTestId('folder-state').filter({ hasText: 'Done' }).waitFor();
    await expect.poll(() => card.getByLabel('Parsing').evaluate((e: HTMLProgressElement) => [e.value, e.max]), POLL).toEqual([5, 5]);
    // every passage got its KV without a re-index: the model's arrival started the prefill
    await expect
      .poll(async () => {
        const [prefill, passages] = await Promise.all([
          card.getByLabel('KV prefill').evaluate((e: HTMLProgressElement) => [e.value, e.max]),
          card.locator('.folder-counts').textContent(),
        ]);
        return prefill[0] === prefill[1] && prefill[1] === Number(/(\d+) passages/.exec(passages!)?.[1]);
      }, POLL)
      .toBe(true);
    expect(await card.getByTestId('prefill-line').count()).toBe(0);
    await card.getByRole('button', { name: 'Show files not indexed' }).click();
    const problems = card.getByRole('group', { name: 'Files not indexed' });
    // one group per reason: the empty file (skipped) and the broken PDF (failed)
    await problems.locator('summary').first().waitFor();
    const summaries = await problems.locator('summary').allTextContents();
    expect(summaries).toHaveLength(2);
    expect(summaries.some((s) => s === 'empty (1 file, skipped)')).toBe(true);
    expect(summaries.some((s) => s.endsWith('(1 file, failed)'))).toBe(true);
    await card.getByRole('button', { name: 'Remove' }).click();
    await card.getByText('Remove docs from Quire? Its index goes; your files stay.').waitFor();
    await shot('library-remove-asked');
    await card.getByRole('button', { name: 'Cancel' }).click();
    expect(await card.getByRole('button', { name: 'Remove' }).isVisible()).toBe(true);
  });

  it('searches offline, gzip-compressed text included', async () => {
    await nav('Search').click();
    await page.getByLabel('Search your library').fill('heron');
    const hit = page.locator('.hit').first();
    await hit.waitFor();
    expect(await hit.locator('.hit-path').textContent()).toContain('heron.txt.gz');
    await page.getByLabel('Search your library').fill('lighthouse');
    await page.locator('.hit', { hasText: 'sea.md' }).locator('.hit-snippet mark').first().waitFor();
    expect((await page.locator('.hit', { hasText: 'sea.md' }).locator('.hit-snippet mark').first().textContent())?.toLowerCase()).toBe('lighthouse');
    await shot('search');
  });

  it('answers with sources by document; the panel highlights content words only and closes with Escape', async () => {
    await nav('Chat').click();
    await ask(QUESTION);
    await readouts().first().waitFor();
    expect((await page.getByTestId('answer').first().textContent())!.length).toBeGreaterThan(0);
    const sources = page.locator('.sources').first();
    const files = await sources.locator('.source-file').allTextContents();
    expect(new Set(files).size).toBe(files.length); // each document once
    expect(files).toContain('sea.md');
    await sources.getByRole('button', { name: /sea\.md/ }).first().click();
    const passage = page.getByTestId('passage-text');
    await passage.filter({ hasText: 'lighthouse keeper' }).waitFor();
    const marks = (await passage.locator('mark').allTextContents()).map((m) => m.toLowerCase());
    expect(marks.length).toBeGreaterThan(0);
    expect(marks.filter((m) => QUESTION_STOP_WORDS.includes(m))).toEqual([]);
    expect(await page.locator('.passage-panel h2').count()).toBe(1);
    await shot('chat-passage');
    await page.keyboard.press('Escape');
    await page.locator('.passage-panel').waitFor({ state: 'detached' });
  });

  it('a follow-up from passages already in the chat says so; copy, regenerate, rename, export', async () => {
    await ask(QUESTION);
    await expect.poll(() => readouts().count(), POLL).toBe(2);
    expect(await readouts().nth(1).textContent()).toMatch(/all \d+ passages? already in this chat/);

    await page.getByRole('button', { name: 'Copy' }).last().click();
    await page.getByRole('button', { name: 'Copied' }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    // the answer as written (Markdown), as stored
    const [chat] = await apiCall<{ id: number }[]>('chats.list', {});
    const messages = await apiCall<{ role: string; content: string }[]>('chats.messages', { chatId: chat.id });
    expect(copied).toBe(messages.at(-1)!.content);

    const before = await page.getByTestId('answer').last().innerText();
    await page.getByRole('button', { name: 'Regenerate' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Regenerate' }).isEnabled(), POLL).toBe(true);
    expect(await page.getByTestId('answer').count()).toBe(2); // replaced, not added
    expect(await page.getByTestId('answer').last().innerText()).toBe(before); // greedy, same context: same answer

    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByLabel('Chat title').fill('Lighthouse notes');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('navigation', { name: 'Chat history' }).getByRole('button', { name: 'Lighthouse notes' }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
    expect(download.suggestedFilename()).toBe('Lighthouse-notes.md');
    const markdown = fs.readFileSync((await download.path())!, 'utf8');
    expect(markdown).toMatch(/^# Lighthouse notes\n/);
    expect(markdown.match(/^> What did the lighthouse keeper write about\?$/gm)).toHaveLength(2);

    const long = 'why '.repeat(900);
    await page.getByLabel('Ask a question').fill(long);
    await page.getByTestId('question-counter').waitFor();
    await page.getByLabel('Ask a question').fill(`${long}${'why '.repeat(200)}`);
    await page.getByRole('alert').filter({ hasText: 'This question is too long' }).waitFor();
    expect(await page.getByRole('button', { name: 'Send' }).isDisabled()).toBe(true);
    await shot('chat-long-question');
    await page.getByLabel('Ask a question').fill('');
  });

  it('a reload reopens the last chat with the list at once; Delete asks first', async () => {
    await page.reload();
    await page.getByRole('heading', { name: 'Lighthouse notes' }).waitFor();
    // the heading can show before the chat's messages arrive: wait for the second answer, then count
    await page.getByTestId('answer').nth(1).waitFor();
    expect(await page.getByTestId('answer').count()).toBe(2);
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('button', { name: 'Delete chat' }).click();
    await page.getByRole('heading', { name: 'New chat' }).waitFor();
    expect(await page.getByRole('navigation', { name: 'Chat history' }).getByRole('button', { name: 'Lighthouse notes' }).count()).toBe(0);
    await ask(QUESTION); // a chat to show in the screenshots
    await readouts().first().waitFor();
  });

  it('Settings: switching the local OpenAI-compatible API on shows the key the engine made', async () => {
    await nav('Settings').click();
    await page.getByLabel('Local OpenAI-compatible API').check();
    expect(await page.getByLabel('API port').inputValue()).toBe('8078');
    expect(await page.getByLabel('API key').inputValue()).toBe('');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    const key = await page.getByLabel('API key').inputValue();
    expect(key).toMatch(/^quire-[0-9a-f]{48}$/);
    expect(await apiCall<{ apiServer: boolean; apiKey: string }>('settings.get', {})).toMatchObject({ apiServer: true, apiKey: key });
    await page.getByLabel('API key').scrollIntoViewIfNeeded();
    await shot('settings-api');
  });

  it('every view at 1280x800 and 800x600, light and dark, without sideways overflow', async () => {
    for (const [w, h] of [
      [1280, 800],
      [800, 600],
    ]) {
      await page.setViewportSize({ width: w, height: h });
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        const name = (view: string) => `${view}-${w}x${h}-${scheme}`;
        await nav('Chat').click();
        await page.locator('.sources button').first().click();
        await page.getByTestId('passage-text').filter({ hasText: 'lighthouse' }).waitFor();
        await expectNoSidewaysOverflow(name('chat'));
        await shot(name('chat'));
        await page.keyboard.press('Escape');
        await nav('Library').click();
        await page.getByTestId('folder-state').first().waitFor();
        await expectNoSidewaysOverflow(name('library'));
        await shot(name('library'));
        await nav('Search').click();
        await page.getByLabel('Search your library').fill('lighthouse');
        await page.locator('.hit').first().waitFor();
        await expectNoSidewaysOverflow(name('search'));
        await shot(name('search'));
        await nav('Settings').click();
        await page.getByLabel('Temperature').waitFor();
        await expectNoSidewaysOverflow(name('settings'));
        await shot(name('settings'));
      }
    }
  });

  it('prefetch while typing: a paused-on question is prepared and its answer says so; a question changed after its prepare is not', async () => {
    const prepared = page.locator('form.composer[data-prepared="true"]');
    await nav('Chat').click();
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByRole('heading', { name: 'New chat' }).waitFor();
    const before = await readouts().count();
    // typed, then paused on: prepared for a new chat (retrieval, the passage's KV loaded, assembled)
    await page.getByLabel('Ask a question').fill('How does a binary search find a key?');
    await prepared.waitFor();
    await page.keyboard.press('Enter');
    await expect.poll(() => readouts().count(), POLL).toBe(before + 1);
    const fast = readouts().last();
    expect(await fast.getAttribute('data-prefetched')).toBe('true');
    expect(await fast.textContent()).toContain('prefetched while typing');

    // a follow-up prepared in this chat, then changed to a question that finds another passage (too
    // short to be prepared itself) before Enter: the prepared context is not this question's
    await page.getByLabel('Ask a question').fill('What turns light into sugar in the leaf?');
    await prepared.waitFor();
    await page.getByLabel('Ask a question').fill('heron');
    expect(await prepared.count()).toBe(0);
    await page.keyboard.press('Enter');
    await expect.poll(() => readouts().count(), POLL).toBe(before + 2);
    const slow = readouts().last();
    expect(await slow.getAttribute('data-prefetched')).toBe('false');
    expect(await slow.textContent()).not.toContain('prefetched');
    expect(await page.locator('.sources').last().locator('.source-file').allTextContents()).toContain('heron.txt.gz');
  });
});
