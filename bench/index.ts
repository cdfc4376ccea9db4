// npm run bench:index — indexing throughput on a real documentation tree, and passage KV prefill
// throughput on the bench-shape model (Qwen2.5-0.5B's shape, CPU).
//
//   npx tsx bench/index.ts [--docs DIR] [--kv-blocks N] [--json]
//
// The tree: Debian's python3-doc (bench/python-docs.ts), installed when missing (or pass --docs DIR).
// Measured: (1) a full index into a fresh database: walk + read + hash + parse + cut passages
// (estimated token counts, as `quire index` without --model) + FTS5 (word and trigram) inserts,
// as files/s and MB/s; (2) a second run over the unchanged tree (the incremental check);
// (3) KV prefill of the first N passages through the indexer's hook path (answering's
// prefillPassages: tokenize, shared-prefix prefill, store in the KvStore), as tokens/s.
// The bench model is cached under os.tmpdir()/quire-bench-model (shared with bench/ttft.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { KvStore } from '../db/kv-store.ts';
import { openDatabase } from '../db/open.ts';
import { createAnswerContext, passageIds, prefillPassages } from '../electron/answering/passage-kv.ts';
import { indexFolder, type IndexSummary } from '../electron/indexing/indexer.ts';
import { estimateTokens } from '../electron/indexing/token-estimate.ts';
import { Engine } from '../native-models/engine.ts';
import { machineLine } from './stats.ts';
import { benchModelDir } from './bench-model.ts';
import { ensurePythonDocs } from './python-docs.ts';

const { values: args } = parseArgs({
  options: {
    docs: { type: 'string' },
    'kv-blocks': { type: 'string', default: '12' },
    json: { type: 'boolean', default: false },
  },
});

const mb = (bytes: number) => bytes / 1024 / 1024;

async function main(): Promise<void> {
  const docs = ensurePythonDocs(args.docs);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-bench-index-'));
  const db = openDatabase(path.join(work, 'quire.db'));
  try {
    // (1) full index
    let t0 = performance.now();
    const full: IndexSummary = await indexFolder(db, docs, { countTokens: estimateTokens });
    const fullMs = performance.now() - t0;
    const dbBytes = fs.statSync(path.join(work, 'quire.db')).size + (fs.existsSync(path.join(work, 'quire.db-wal')) ? fs.statSync(path.join(work, 'quire.db-wal')).size : 0);

    // (2) unchanged re-run
    t0 = performance.now();
    const again = await indexFolder(db, docs, { countTokens: estimateTokens });
    const againMs = performance.now() - t0;

    // (3) KV prefill on the bench model
    const modelDir = await benchModelDir();
    const engine = await Engine.load(modelDir, { provider: 'cpu' });
    const ctx = await createAnswerContext(db, engine, { store: new KvStore(db) });
    const blocks = Number(args['kv-blocks']);
    const ids = (db.prepare('SELECT id FROM passages ORDER BY id LIMIT ?').pluck().all(blocks) as number[]);
    const rows = db.prepare('SELECT id AS passageId, title, text FROM passages ORDER BY id LIMIT ?').all(blocks) as { passageId: number; title: string | null; text: string }[];
    const kvTokens = rows.reduce((s, r) => s + passageIds(ctx, r).length, 0);
    t0 = performance.now();
    const prefill = await prefillPassages(ctx, ids);
    const kvMs = performance.now() - t0;
    await engine.release();

    const result = {
      machine: machineLine(),
      docs,
      files: full.files,
      indexed: full.indexed,
      skipped: full.skipped.length,
      failed: full.failed.length,
      passages: full.passages,
      mb: Number(mb(full.bytes).toFixed(1)),
      fullSeconds: Number((fullMs / 1000).toFixed(2)),
      filesPerSecond: Number((full.files / (fullMs / 1000)).toFixed(1)),
      mbPerSecond: Number((mb(full.bytes) / (fullMs / 1000)).toFixed(2)),
      passagesPerSecond: Number((full.passages / (fullMs / 1000)).toFixed(0)),
      databaseMb: Number(mb(dbBytes).toFixed(1)),
      unchangedRerunSeconds: Number((againMs / 1000).toFixed(2)),
      unchangedRerunUnchanged: again.unchanged,
      kvBlocks: prefill.computed,
      kvTokens,
      kvTokensPerBlock: Math.round(kvTokens / Math.max(1, prefill.computed)),
      kvSeconds: Number((kvMs / 1000).toFixed(2)),
      kvTokensPerSecond: Number((kvTokens / (kvMs / 1000)).toFixed(0)),
    };
    if (args.json) {
      console.log(JSON.stringify(result));
      return;
    }
    console.log(`machine: ${result.machine}`);
    console.log(`tree: ${docs} — ${result.files} files, ${result.mb} MB (${result.indexed} indexed, ${result.skipped} skipped, ${result.failed} failed)`);
    console.log(
      `full index (walk + hash + parse + passages + FTS): ${result.fullSeconds} s = ${result.filesPerSecond} files/s, ${result.mbPerSecond} MB/s, ` +
        `${result.passages} passages (${result.passagesPerSecond}/s), database ${result.databaseMb} MB`,
    );
    console.log(`unchanged re-run: ${result.unchangedRerunSeconds} s (${result.unchangedRerunUnchanged} files unchanged)`);
    console.log(
      `KV prefill (bench model, shared-prefix, stored): ${result.kvBlocks} blocks, ${result.kvTokens} tokens (~${result.kvTokensPerBlock}/block) ` +
        `in ${result.kvSeconds} s = ${result.kvTokensPerSecond} tokens/s`,
    );
    if (full.failed.length) console.log(`failed: ${full.failed.slice(0, 5).map((f) => `${f.path}: ${f.reason}`).join('; ')}`);
  } finally {
    db.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
