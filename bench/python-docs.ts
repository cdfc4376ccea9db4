// The real documentation tree the indexing and retrieval benchmarks run on: Debian's python3-doc
// (Python 3.11's HTML manual plus its reST sources as .txt under _sources/, ~1000 files, ~67 MB),
// installed here with apt-get when missing (root needed; or pass --docs DIR).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const DEFAULT_PYTHON_DOCS = '/usr/share/doc/python3.11/html';

export function ensurePythonDocs(dir?: string): string {
  if (dir) return path.resolve(dir);
  if (fs.existsSync(DEFAULT_PYTHON_DOCS)) return DEFAULT_PYTHON_DOCS;
  console.error('installing python3-doc (apt-get) ...');
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-doc'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!fs.existsSync(DEFAULT_PYTHON_DOCS)) throw new Error(`python3-doc installed, but ${DEFAULT_PYTHON_DOCS} is missing: pass --docs DIR`);
  return DEFAULT_PYTHON_DOCS;
}
