// `npm start`'s prestart check (build/check-electron.mjs), run as npm runs it: a child process. With
// Electron's binary absent it stops with one plain message (what is missing, the command that fetches
// it, quire serve as the browser alternative) and no stack trace; with the binary in place it is silent.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const script = path.join(root, 'build', 'check-electron.mjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-check-electron-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of the electron package's layout: package.json, and path.txt + the binary when given. */
function fakeElectron(name: string, binary: string | null): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"electron"}');
  if (binary !== null) {
    fs.writeFileSync(path.join(dir, 'path.txt'), binary);
    fs.mkdirSync(path.join(dir, 'dist'));
    fs.writeFileSync(path.join(dir, 'dist', binary), '');
  }
  return dir;
}

function check(electronDir?: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, ELECTRON_OVERRIDE_DIST_PATH: '' };
  if (electronDir) env.QUIRE_ELECTRON_DIR = electronDir;
  else delete env.QUIRE_ELECTRON_DIR;
  return spawnSync(process.execPath, [script], { cwd: root, env, encoding: 'utf8' });
}

describe('npm start without Electron’s binary', () => {
  it('stops with one plain message: what is missing, the command that fetches it, and quire serve', () => {
    const r = check(fakeElectron('never-downloaded', null));
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^Quire cannot start the desktop app: Electron's binary was never downloaded/);
    expect(r.stderr).toContain('node node_modules/electron/install.js');
    expect(r.stderr).toContain('npx quire serve');
    expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
    expect(lines).toHaveLength(3);
  });

  it('names the file when path.txt points at a binary that is gone', () => {
    const dir = fakeElectron('binary-deleted', 'electron');
    fs.rmSync(path.join(dir, 'dist', 'electron'));
    const r = check(dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Electron's binary is missing \(.*dist[\\/]electron does not exist\)/);
  });

  it('is silent and lets npm start go on when the binary is there', () => {
    const r = check(fakeElectron('installed', 'electron'));
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).toBe('');
  });

  it('agrees with this checkout’s own electron package', () => {
    // here the binary is absent when the install skipped its download (CI: ELECTRON_SKIP_BINARY_DOWNLOAD)
    const installed = fs.existsSync(path.join(root, 'node_modules', 'electron', 'path.txt'));
    const r = check();
    expect(r.status).toBe(installed ? 0 : 1);
    if (!installed) expect(r.stderr).toContain('node node_modules/electron/install.js');
  });
});
