// The command line's surface as a script sees it: every subcommand's --help against what its parser
// accepts, --version against package.json, exit codes and error lines for bad input, and the pieces
// behind them (the size parser, terminal escaping, progress lines on a pipe, the app's settings).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_KV_BUDGET_BYTES } from '../db/kv-store.ts';
import { EXPORT_STYLES } from '../native-models/export-style.ts';
import { DEFAULT_MAX_FILE_BYTES } from '../electron/indexing/parsers/index.ts';
import { appKvBudgetBytes, appProviderSetting, readAppSettings } from '../electron/app-settings.ts';
import { ByteSizeError, formatByteSize, parseByteSize } from '../electron/byte-size.ts';
import { COMMANDS } from '../electron/cli/commands.ts';
import { COMMON_OPTIONS, parseArgsOptions, parseOptions } from '../electron/cli/options.ts';
import { LiveLine, ProgressRenderer } from '../electron/cli/progress.ts';
import { escapeForTerminal } from '../electron/cli/terminal-text.ts';
import { nameFromBytes } from '../electron/indexing/file-names.ts';
import { REPO_ROOT as repo, runQuire } from './helpers/cli.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-cli-options-'));
const env = { ...process.env, QUIRE_HOME: path.join(tmp, 'home') };

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const quire = (args: string[]) => runQuire(args, { env, cwd: tmp });

/** The options a help text lists, read from its lines ("  -k, --k N   meaning (default: 10)"). */
function optionsInHelp(help: string): { name: string; short?: string; takesValue: boolean; line: string }[] {
  const section = help.split(/^options:$/m)[1]?.split(/^$/m)[0] ?? '';
  return section
    .split('\n')
    .filter((l) => l.trim())
    .map((line) => {
      const m = /^ {2}(?:-(\w), | {4})--([a-z][a-z0-9-]*)( [A-Z|a-z0-9.-]+)? {2,}\S/.exec(line);
      if (!m) throw new Error(`not an option line: ${JSON.stringify(line)}`);
      return { name: m[2], short: m[1], takesValue: m[3] !== undefined, line };
    });
}

describe('quire <command> --help', () => {
  it.each(COMMANDS.map((c) => c.name))('%s: lists exactly the options its parser accepts, each with a meaning, and an example', async (name) => {
    const command = COMMANDS.find((c) => c.name === name)!;
    const r = await quire([name, '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage: quire ${name}\\b`));
    expect(r.stdout).toMatch(/^examples?:\n {2}quire /m);
    const listed = optionsInHelp(r.stdout);
    const accepted = parseArgsOptions([...command.options, ...COMMON_OPTIONS]);
    expect(listed.map((o) => o.name).sort()).toEqual(Object.keys(accepted).sort());
    for (const o of listed) {
      expect(o.takesValue, o.name).toBe(accepted[o.name].type === 'string');
      expect(o.short, o.name).toBe(accepted[o.name].short);
      // the parser knows it: a flag parses alone; a value option asks for its value, it is not "unknown"
      const probe = () => parseOptions([`--${o.name}`], command.options, command.positionals);
      if (o.takesValue) expect(probe, o.name).toThrow(/argument missing/);
      else expect(probe, o.name).not.toThrow();
    }
    expect(() => parseOptions(['--not-an-option'], command.options, command.positionals)).toThrow(/Unknown option/);
    // -h works too, and says the same
    expect((await quire([name, '-h'])).stdout).toBe(r.stdout);
  });

  it('states defaults that are the code\'s own', async () => {
    const index = (await quire(['index', '--help'])).stdout;
    expect(index).toContain(`(default: ${DEFAULT_MAX_FILE_BYTES / 1024 ** 2})`);
    expect(index).toContain(`else ${formatByteSize(DEFAULT_KV_BUDGET_BYTES)})`);
    const ask = (await quire(['ask', '--help'])).stdout;
    expect(ask).toMatch(/--max-new-tokens N +longest answer, in tokens \(default: 256\)/);
    // --provider reads the same in every command that takes it (columns aside)
    const providerLines = await Promise.all(
      ['index', 'ask', 'serve', 'generate'].map(async (c) => optionsInHelp((await quire([c, '--help'])).stdout).find((o) => o.name === 'provider')?.line.trim().replace(/\s+/g, ' ')),
    );
    expect(new Set(providerLines).size).toBe(1);
    expect(providerLines[0]).toMatch(/auto, cpu, webgpu, cuda, dml, coreml/);
  });

  it('quire --help lists every command; quire alone is a usage error', async () => {
    const r = await quire(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^ {2}${c.name} +\\S`, 'm'));
    expect(await quire([])).toMatchObject({ code: 2, stdout: '' });
  });
});

describe('quire --version', () => {
  it('prints package.json\'s version', async () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string };
    const r = await quire(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
  });
});

describe('exit codes and errors', () => {
  it('2 for usage errors, with one line that says what is wrong and the usage line', async () => {
    const unknownCommand = await quire(['frobnicate']);
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.stderr).toMatch(/^quire: unknown command "frobnicate"/);
    const unknownOption = await quire(['search', 'x', '--frobnicate']);
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toMatch(/^quire search: Unknown option '--frobnicate'.*\nusage: quire search <query> \[options\]/s);
    const badSize = await quire(['index', tmp, '--kv-budget', '2G']);
    expect(badSize.code).toBe(2);
    expect(badSize.stderr).toMatch(/^quire index: --kv-budget: "2G": unknown unit "G" \(use B, KB, MB, GB, TB, or KiB, MiB, GiB, TiB/);
    const badProvider = await quire(['index', tmp, '--provider', 'tpu']);
    expect(badProvider.code).toBe(2);
    expect(badProvider.stderr).toContain('--provider: must be one of auto, cpu, webgpu, cuda, dml, coreml (got "tpu")');
    const badK = await quire(['search', 'x', '-k', '0']);
    expect(badK.code).toBe(2);
    expect(badK.stderr).toContain('--k: "0" is not an integer >= 1');
    expect((await quire(['ask'])).code).toBe(2);
    expect((await quire(['index'])).code).toBe(2);
    expect((await quire(['models', 'fly'])).code).toBe(2);
    expect((await quire(['status', 'extra'])).code).toBe(2);
  });

  it('1 for a failure that is not the arguments\' fault', async () => {
    const r = await quire(['search', 'x', '--db', path.join(tmp, 'none.db')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^quire search: no index at .*none\.db: run quire index <folder> first\n$/);
  });

  it('make-model --style writes that exporter\'s layout; a style not in the table is a usage error', async () => {
    const out = path.join(tmp, 'genai-model');
    const r = await quire(['make-model', '--out', out, '--style', 'genai-fp16']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(out, EXPORT_STYLES['genai-fp16'].onnxFile))).toBe(true);
    expect(fs.existsSync(path.join(out, 'genai_config.json'))).toBe(true);
    const bad = await quire(['make-model', '--out', path.join(tmp, 'never'), '--style', 'keras']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`--style: must be one of ${Object.keys(EXPORT_STYLES).join(', ')} (got "keras")`);
    expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
  });

  it('--verbose is accepted by every command', () => {
    for (const c of COMMANDS) {
      const args = parseOptions(['--verbose'], c.options, c.positionals);
      expect(args.verbose, c.name).toBe(true);
      expect(parseOptions([], c.options, c.positionals).verbose).toBe(false);
    }
  });
});

describe('parseByteSize', () => {
  it('reads decimal and binary units, any case, with or without a space', () => {
    expect(parseByteSize('48MiB')).toBe(48 * 1024 ** 2);
    expect(parseByteSize('2GiB')).toBe(2 * 1024 ** 3);
    expect(parseByteSize('500MB')).toBe(500e6);
    expect(parseByteSize('1.5 gib')).toBe(1.5 * 1024 ** 3);
    expect(parseByteSize('64kb')).toBe(64_000);
    expect(parseByteSize('4096')).toBe(4096);
    expect(parseByteSize('10B')).toBe(10);
    expect(parseByteSize('0.5KiB')).toBe(512);
  });

  it('refuses what it cannot read, saying what it takes', () => {
    for (const bad of ['', 'MiB', '-1MiB', '2G', '500M', '1e9', 'two GiB', '2 GiB extra', '1,5GiB']) {
      expect(() => parseByteSize(bad), bad).toThrow(ByteSizeError);
    }
    expect(() => parseByteSize('2G')).toThrow(/unknown unit "G".*e\.g\. 48MiB, 2GiB or 500MB/);
    expect(() => parseByteSize('99999999 TiB')).toThrow(/too large/);
  });

  it('formatByteSize reads back', () => {
    for (const n of [0, 512, 48 * 1024 ** 2, 2 * 1024 ** 3, 1536]) expect(parseByteSize(formatByteSize(n).replace(' ', ''))).toBe(n);
    expect(formatByteSize(2 * 1024 ** 3)).toBe('2 GiB');
  });
});

describe('escapeForTerminal', () => {
  it('escapes control, bidi and invisible characters; leaves the rest', () => {
    expect(escapeForTerminal('a\nb\tc\rd')).toBe('a\\nb\\tc\\rd');
    expect(escapeForTerminal('x\x1b[2Jy\x07')).toBe('x\\x1b[2Jy\\x07');
    expect(escapeForTerminal('\u009b31m')).toBe('\\x9b31m');
    expect(escapeForTerminal('evil\u202Etxt.exe')).toBe('evil\\u202etxt.exe');
    expect(escapeForTerminal('zero\u200bwidth\u2028')).toBe('zero\\u200bwidth\\u2028');
    const plain = 'C:\\Users\\Zoë\\Notes — 日本語 (v2).md';
    expect(escapeForTerminal(plain)).toBe(plain);
    expect(escapeForTerminal('\u061cabc\u2067x\u2069\ufeff')).toBe('\\u061cabc\\u2067x\\u2069\\ufeff');
  });

  it('keeps line breaks and tabs when asked (a streamed answer), still escaping the rest', () => {
    expect(escapeForTerminal('one\n\ttwo\r\x1b]0;title\x07', { keepLineBreaks: true })).toBe('one\n\ttwo\\r\\x1b]0;title\\x07');
  });

  it("prints a stored non-UTF-8 name's \\xHH as it is stored (one notation)", () => {
    const stored = nameFromBytes(Buffer.from([0x6e, 0xff, 0x0a, 0x2e, 0x74, 0x78, 0x74])).name; // "n\xff\n.txt"
    expect(escapeForTerminal(stored)).toBe('n\\xff\\n.txt');
  });
});

describe('progress lines', () => {
  const collect = (isTTY: boolean) => {
    let out = '';
    return { writer: { write: (s: string) => (out += s), isTTY, columns: 100 }, text: () => out };
  };

  it('on a pipe: whole lines, no carriage returns or escape sequences, even for hostile names', () => {
    const pipe = collect(false);
    const r = new ProgressRenderer(pipe.writer, { now: () => 0 });
    const base = {
      folderId: 1, root: '/r/\x1b[31mred\rback', filesFound: 2, filesDone: 1, filesIndexed: 1, filesUnchanged: 0,
      filesSkipped: 0, filesFailed: 0, passages: 3, kvBlocks: 0, bytesDone: 10, bytesTotal: 20,
    };
    r.update({ ...base, phase: 'scanning' });
    r.update({ ...base, phase: 'indexing' });
    r.update({ ...base, phase: 'done', filesDone: 2, bytesDone: 20 });
    r.finish();
    const line = new LiveLine(pipe.writer, { now: () => 0 });
    line.show('12.0 MB / 490.0 MB  onnx/model.onnx');
    line.show('throttled', {});
    line.show('490.0 MB / 490.0 MB  onnx/model.onnx', { final: true });
    line.finish();
    expect(pipe.text()).not.toContain('\r');
    expect(pipe.text()).not.toContain('\x1b');
    expect(pipe.text().split('\n')).toEqual([
      'scanning /r/\\x1b[31mred\\rback: 2 files',
      'indexing /r/\\x1b[31mred\\rback: 1/2 files, 3 passages, 10 B/20 B',
      'done /r/\\x1b[31mred\\rback: 2/2 files, 3 passages, 20 B/20 B',
      '12.0 MB / 490.0 MB  onnx/model.onnx',
      '490.0 MB / 490.0 MB  onnx/model.onnx',
      '',
    ]);
  });

  it('on a terminal: redrawn in place, ended with a newline', () => {
    const tty = collect(true);
    const line = new LiveLine(tty.writer, { now: () => 0 });
    line.show('1 / 3');
    line.finish();
    expect(tty.text()).toBe('\r\x1b[2K1 / 3\n');
  });
});

describe("the app's settings, as the CLI reads them", () => {
  it('the saved budget and provider, defaults without a file, and an invalid file ignored as the app ignores it', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'settings-'));
    expect(appKvBudgetBytes(dir)).toBe(DEFAULT_KV_BUDGET_BYTES);
    expect(appProviderSetting(dir)).toBe('auto');
    fs.writeFileSync(path.join(dir, 'app-settings.json'), JSON.stringify({ kvBudgetBytes: 48 * 1024 ** 2, provider: 'cpu', k: 5 }));
    expect(appKvBudgetBytes(dir)).toBe(48 * 1024 ** 2);
    expect(appProviderSetting(dir)).toBe('cpu');
    // one bad value: the engine service drops the whole file (settingsSchema.partial().safeParse), so does this
    fs.writeFileSync(path.join(dir, 'app-settings.json'), JSON.stringify({ kvBudgetBytes: 48 * 1024 ** 2, provider: 'tpu' }));
    expect(appKvBudgetBytes(dir)).toBe(DEFAULT_KV_BUDGET_BYTES);
    expect(readAppSettings(dir).problem).toMatch(/invalid settings \(provider: /);
    fs.writeFileSync(path.join(dir, 'app-settings.json'), '{"kvBudgetBytes": ');
    expect(readAppSettings(dir)).toMatchObject({ saved: {}, problem: expect.stringMatching(/not valid JSON/) });
  });
});
