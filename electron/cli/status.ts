// `quire status`: where Quire keeps its data and what is in it, read without changing anything: the
// data directory, the database, the folders with their counts, the chosen model and the provider
// setting, the KV budget, the stored KV and, per folder, the share of passages whose KV is stored for
// the chosen model (coverage: what answers without prefill), exact (each passage's block key is
// recorded: db/passage-keys.ts), and why not more. The database is opened read-only; the model's
// folder and tokenizer are read, no inference session is started.
import fs from 'node:fs';
import path from 'node:path';
import { storedKvTotals } from '../../db/kv-store.ts';
import { openDatabase, type Db } from '../../db/open.ts';
import { loadModelFolder, modelFingerprint } from '../../native-models/model-folder.ts';
import { TextTokenizer } from '../../native-models/tokenizer.ts';
import { coverageLimit, kvCoverage, type KvCoverageLimit } from '../answering/kv-coverage.ts';
import { promptFrame } from '../answering/prompt-blocks.ts';
import { defaultQualityMode, type QualityMode } from '../answering/quality-modes.ts';
import { dataDirForDb, defaultDbPath } from '../app-paths.ts';
import { readAppSettings } from '../app-settings.ts';
import { formatByteSize } from '../byte-size.ts';
import { DEFAULT_MODEL_ID, readSettings, resolveModelDir } from '../models/catalog.ts';
import type { Settings } from '../contract/types.ts';
import { DB, JSON_OUTPUT, type ParsedArgs } from './options.ts';
import { escapeForTerminal } from './terminal-text.ts';
import { QUIRE_VERSION } from './version.ts';

export interface FolderStatus {
  id: number;
  path: string;
  /** Documents by state: indexed, failed, skipped, and pending (a run was interrupted, or is running elsewhere). */
  files: number;
  indexed: number;
  failed: number;
  skipped: number;
  pending: number;
  passages: number;
  /**
   * Share of the passages whose KV is stored for the chosen model and quality mode. Null when it
   * cannot be known (see coverageProblem) or the folder has no passages.
   */
  coverage: number | null;
  /** Passages whose KV is stored (exact); null when coverage cannot be known. */
  kvStoredPassages: number | null;
  /**
   * Why not every passage is stored: 'budget' (stored KV is at the budget), 'off' (background prefill
   * switched off in the app), 'not-prefilled' (no engine runs here; the app or quire serve prefills in
   * the background); null when every one is, or coverage is unknown.
   */
  kvLimitedBy: KvCoverageLimit | null;
}

export interface StatusReport {
  version: string;
  dataDir: string;
  settings: { file: string; problem: string | null };
  database: { path: string; exists: boolean; bytes: number; walBytes: number; schemaVersion: number | null; problem: string | null };
  model: { setting: string; dir: string | null; fingerprint: string | null; problem: string | null };
  /** The provider setting ('auto' unless chosen in the app's Settings). */
  provider: string;
  /** The quality mode coverage is counted for: the app's setting, or the model's default when 'auto'. */
  quality: QualityMode | null;
  kv: {
    budgetBytes: number;
    budgetFrom: 'app-settings' | 'default';
    storedBytes: number;
    storedBlocks: number;
    /** Of storedBytes, the chosen model's. */
    modelBytes: number | null;
  };
  folders: FolderStatus[];
  /** Why coverage is null, when it is. */
  coverageProblem: string | null;
  background: { known: false; note: string };
}

const BACKGROUND_NOTE =
  "no engine running in this process: quire status only reads the database; the app or quire serve shows its own indexing and prefill in the Library view";

export async function statusCommand(args: ParsedArgs): Promise<void> {
  const report = await collectStatus(args.get(DB));
  process.stdout.write(args.has(JSON_OUTPUT) ? `${JSON.stringify(report)}\n` : describe(report));
}

export async function collectStatus(dbOption: string | undefined): Promise<StatusReport> {
  const dataDir = dataDirForDb(dbOption);
  const dbPath = path.resolve(dbOption ?? defaultDbPath());
  const appSettings = readAppSettings(dataDir);
  const report: StatusReport = {
    version: QUIRE_VERSION,
    dataDir,
    settings: { file: appSettings.file, problem: appSettings.problem },
    database: { path: dbPath, exists: fs.existsSync(dbPath), bytes: fileSize(dbPath), walBytes: fileSize(`${dbPath}-wal`), schemaVersion: null, problem: null },
    model: { setting: readSettings().model ?? DEFAULT_MODEL_ID, dir: null, fingerprint: null, problem: null },
    provider: appSettings.settings.provider,
    quality: null,
    kv: {
      budgetBytes: appSettings.settings.kvBudgetBytes,
      budgetFrom: appSettings.saved.kvBudgetBytes === undefined ? 'default' : 'app-settings',
      storedBytes: 0,
      storedBlocks: 0,
      modelBytes: null,
    },
    folders: [],
    coverageProblem: null,
    background: { known: false, note: BACKGROUND_NOTE },
  };
  try {
    report.model.dir = resolveModelDir();
  } catch (e) {
    report.model.problem = (e as Error).message;
  }
  if (!report.database.exists) {
    report.database.problem = 'no database yet: run quire index <folder>';
    report.coverageProblem = 'no database yet';
    return report;
  }
  let db: Db;
  try {
    db = openDatabase(dbPath, { readonly: true });
  } catch (e) {
    report.database.problem = (e as Error).message;
    report.coverageProblem = 'the database could not be read';
    return report;
  }
  try {
    report.database.schemaVersion = db.pragma('user_version', { simple: true }) as number;
    if (kvAttached(db)) {
      const kv = storedKvTotals(db);
      report.kv.storedBlocks = kv.entries;
      report.kv.storedBytes = kv.bytes;
    }
    report.folders = folderCounts(db);
    await addCoverage(db, report, appSettings.settings);
  } finally {
    db.close();
  }
  return report;
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function folderCounts(db: Db): FolderStatus[] {
  const rows = db
    .prepare(
      `SELECT f.id, f.path,
         (SELECT COUNT(*) FROM documents d WHERE d.folder_id = f.id) AS files,
         (SELECT COUNT(*) FROM documents d WHERE d.folder_id = f.id AND d.status = 'indexed') AS indexed,
         (SELECT COUNT(*) FROM documents d WHERE d.folder_id = f.id AND d.status = 'failed') AS failed,
         (SELECT COUNT(*) FROM documents d WHERE d.folder_id = f.id AND d.status = 'skipped') AS skipped,
         (SELECT COUNT(*) FROM documents d WHERE d.folder_id = f.id AND d.status = 'pending') AS pending,
         (SELECT COUNT(*) FROM passages p JOIN documents d ON d.id = p.document_id WHERE d.folder_id = f.id) AS passages
       FROM folders f ORDER BY f.path`,
    )
    .all() as Omit<FolderStatus, 'kvStoredPassages' | 'coverage' | 'kvLimitedBy'>[];
  return rows.map((r) => ({ ...r, coverage: null, kvStoredPassages: null, kvLimitedBy: null }));
}

/** Whether the KV file is attached (a read-only connection finds none when it was deleted). */
function kvAttached(db: Db): boolean {
  return db.prepare(`SELECT 1 FROM pragma_database_list WHERE name = 'kv'`).get() !== undefined;
}

/** Fills coverage per folder for the chosen model, or says why it cannot. */
async function addCoverage(db: Db, report: StatusReport, settings: Pick<Settings, 'quality' | 'eagerPrefill' | 'systemPrompt'>): Promise<void> {
  if (!report.model.dir) {
    report.coverageProblem = `no model to count coverage for (${report.model.problem})`;
    return;
  }
  let model;
  try {
    model = loadModelFolder(report.model.dir);
  } catch (e) {
    report.coverageProblem = `the model folder could not be read: ${(e as Error).message}`;
    return;
  }
  const light = { model, tokenizer: new TextTokenizer(model) };
  const fingerprint = await modelFingerprint(model);
  report.model.fingerprint = fingerprint;
  const attached = kvAttached(db);
  report.kv.modelBytes = attached
    ? (db.prepare('SELECT COALESCE(SUM(bytes), 0) FROM kv.kv_blocks WHERE model_fingerprint = ?').pluck().get(fingerprint) as number)
    : 0;
  const quality = settings.quality === 'auto' ? defaultQualityMode(light) : settings.quality;
  report.quality = quality;
  // No engine runs here, so nothing is queued or paused; the budget is full when the free room
  // cannot take one more of this model's blocks (their mean size) without evicting.
  const blockBytes = attached
    ? ((db.prepare('SELECT AVG(bytes) FROM kv.kv_blocks WHERE model_fingerprint = ?').pluck().get(fingerprint) as number | null) ?? 0)
    : 0;
  const budgetFull = report.kv.budgetBytes - report.kv.storedBytes < blockBytes;
  // the instruction block as the app's answer context has it (model-service.ts: the model's
  // placement of the answer instruction, the system prompt setting)
  const frame = promptFrame(light, undefined, settings.systemPrompt);
  const coverage = new Map(kvCoverage(db, { fingerprint, frame }, quality).map((c) => [c.folderId, c]));
  for (const f of report.folders) {
    const c = coverage.get(f.id);
    if (!c) continue; // a folder added since the counts were read
    f.kvStoredPassages = c.stored;
    f.coverage = c.passages > 0 ? c.stored / c.passages : null;
    f.kvLimitedBy = coverageLimit(c, { model: true, prefillOn: settings.eagerPrefill, paused: false, queued: 0, budgetFull });
  }
}

/** What each limit means here, where no engine runs. */
const LIMIT_TEXT: Record<KvCoverageLimit, string> = {
  budget: 'the KV budget is full (--kv-budget or Settings raises it)',
  prefilling: 'prefilling',
  paused: 'paused',
  off: 'background prefill is off in Settings',
  'no-model': 'no model',
  'not-prefilled': 'the rest is prefilled in the background while the app or quire serve runs',
};

function describe(r: StatusReport): string {
  const e = escapeForTerminal;
  const percent = (x: number) => `${Math.round(x * 100)}%`;
  const lines = [`Quire ${r.version}`, `data directory  ${e(r.dataDir)}`];
  if (r.settings.problem) lines.push(`settings        ${e(r.settings.problem)}`);
  lines.push(
    r.database.exists
      ? `database        ${e(r.database.path)} (${formatByteSize(r.database.bytes + r.database.walBytes)})${r.database.problem ? `: ${e(r.database.problem)}` : ''}`
      : `database        ${e(r.database.path)}: ${r.database.problem}`,
  );
  lines.push(`model           ${e(r.model.setting)}${r.model.dir && r.model.dir !== r.model.setting ? ` (${e(r.model.dir)})` : ''}${r.model.problem ? `: ${e(r.model.problem)}` : ''}`);
  lines.push(`provider        ${r.provider}`);
  lines.push(
    `KV budget       ${formatByteSize(r.kv.budgetBytes)} (${r.kv.budgetFrom === 'default' ? 'default' : "the app's setting"}); ` +
      `stored ${formatByteSize(r.kv.storedBytes)} in ${r.kv.storedBlocks} block${r.kv.storedBlocks === 1 ? '' : 's'}` +
      (r.kv.modelBytes !== null ? `, ${formatByteSize(r.kv.modelBytes)} for this model` : ''),
  );
  if (r.folders.length === 0 && r.database.exists && !r.database.problem) lines.push('folders         none yet: quire index <folder>');
  else if (r.folders.length > 0) lines.push('folders');
  for (const f of r.folders) {
    const problems = [f.failed ? `${f.failed} failed` : '', f.skipped ? `${f.skipped} skipped` : '', f.pending ? `${f.pending} pending` : ''].filter(Boolean);
    const coverage =
      f.coverage !== null
        ? `, KV stored for ${percent(f.coverage)} (${f.kvStoredPassages}/${f.passages}, ${r.quality})${f.kvLimitedBy ? `: ${LIMIT_TEXT[f.kvLimitedBy]}` : ''}`
        : '';
    lines.push(`  ${e(f.path)}: ${f.files} files${problems.length ? ` (${problems.join(', ')})` : ''}, ${f.passages} passages${coverage}`);
  }
  if (r.coverageProblem && r.folders.length > 0) lines.push(`coverage        unknown: ${e(r.coverageProblem)}`);
  lines.push(`background      ${r.background.note}`);
  return `${lines.join('\n')}\n`;
}
