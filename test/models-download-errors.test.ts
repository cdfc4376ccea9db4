// A failed download said in words: real failures from fetch (a refused connection on a closed local
// port, HTTP statuses from a local server in the hub's layout) go through downloadModel and come out
// as sentences, never "fetch failed". Name resolution cannot fail on demand offline, so ENOTFOUND is
// checked on the error shape undici produces (TypeError "fetch failed" whose cause carries the code).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDownloadError, networkErrorCode } from '../electron/models/download-errors.ts';
import { downloadModel, IntegrityError } from '../electron/models/download.ts';
import { DEFAULT_MODEL_ID } from '../electron/models/catalog.ts';
import { runQuire } from './helpers/cli.ts';

const MODEL = { repo: 'org/model', revision: 'main', files: [{ remote: 'config.json' }] };
let server: http.Server;
let hubUrl: string;
let status = 404;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-dl-errors-'));

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    res.statusCode = status;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function failure(hub: string): Promise<unknown> {
  try {
    await downloadModel(MODEL, path.join(tmp, 'm'), { hubUrl: hub });
  } catch (e) {
    return e;
  }
  throw new Error('the download did not fail');
}

describe('download errors in words', () => {
  it('a refused connection (nothing listens on the port)', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const e = await failure(`http://127.0.0.1:${port}`);
    expect((e as Error).message).toBe('fetch failed'); // what fetch says...
    expect(networkErrorCode(e)).toBe('ECONNREFUSED');
    expect(describeDownloadError(e, `http://127.0.0.1:${port}`)).toBe(
      `the model hub (127.0.0.1:${port}) refused the connection: a proxy or firewall may block it`,
    );
  });

  it('HTTP statuses: missing, refused, rate-limited, broken', async () => {
    const host = new URL(hubUrl).host;
    const said: Record<number, string> = {};
    for (status of [404, 403, 429, 503]) said[status] = describeDownloadError(await failure(hubUrl), hubUrl);
    expect(said).toEqual({
      404: `the model hub (${host}) does not have this model or file any more (HTTP 404)`,
      403: `the model hub (${host}) refused access (HTTP 403)`,
      429: `the model hub (${host}) is limiting requests (HTTP 429): try again in a few minutes`,
      503: `the model hub (${host}) has a problem (HTTP 503): try again later`,
    });
  });

  it('no network: the host is not found (undici error shape)', () => {
    const cause = Object.assign(new Error('getaddrinfo ENOTFOUND huggingface.co'), { code: 'ENOTFOUND' });
    const e = new TypeError('fetch failed', { cause });
    expect(describeDownloadError(e, 'https://huggingface.co')).toBe('cannot reach the model hub (huggingface.co not found): are you offline?');
    const timeout = new TypeError('fetch failed', { cause: new AggregateError([Object.assign(new Error('x'), { code: 'ETIMEDOUT' })]) });
    expect(describeDownloadError(timeout, 'https://huggingface.co')).toMatch(/^the connection to the model hub \(huggingface\.co\) timed out/);
  });

  it('a damaged file, a full disk and anything else keep their detail', () => {
    expect(describeDownloadError(new IntegrityError('model.onnx: sha256 a does not match b'), 'https://h')).toMatch(
      /^a downloaded file was damaged and has been deleted \(model\.onnx: sha256 a does not match b\): retry/,
    );
    expect(describeDownloadError(Object.assign(new Error('write'), { code: 'ENOSPC' }), 'https://h')).toBe('the disk is full: free some space');
    expect(describeDownloadError(new Error('something odd'), 'https://h')).toBe('the download failed: something odd');
  });
});

describe('quire models download says the same words', () => {
  it('a hub that fails: one line with the model and the reason, exit 1, nothing downloaded', async () => {
    status = 503;
    const home = path.join(tmp, 'cli-home');
    const run = await runQuire(['models', 'download', '--hub-url', hubUrl], { env: { QUIRE_HOME: home, HF_ENDPOINT: '' } });
    expect(run.code).toBe(1);
    const host = new URL(hubUrl).host;
    expect(run.stderr.trim().split('\n').at(-1)).toBe(`quire models: ${DEFAULT_MODEL_ID}: the model hub (${host}) has a problem (HTTP 503): try again later`);
    expect(run.stderr).not.toMatch(/fetch failed/);
    expect(run.stdout).toBe('');
  });
});
