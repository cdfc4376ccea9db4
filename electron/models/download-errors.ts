// A failed model download, said in words a user can act on. fetch (undici) reports every network
// failure as TypeError("fetch failed") with the system error somewhere in its cause chain (an
// AggregateError when several addresses were tried); the hub's refusals are HTTP statuses.
import { HubHttpError, IntegrityError } from './download.ts';

const NETWORK_WORDS: Record<string, (host: string) => string> = {
  ENOTFOUND: (host) => `cannot reach the model hub (${host} not found): are you offline?`,
  EAI_AGAIN: (host) => `cannot reach the model hub (${host} not found): are you offline?`,
  ECONNREFUSED: (host) => `the model hub (${host}) refused the connection: a proxy or firewall may block it`,
  ETIMEDOUT: (host) => `the connection to the model hub (${host}) timed out: the network may be slow or offline`,
  UND_ERR_CONNECT_TIMEOUT: (host) => `the connection to the model hub (${host}) timed out: the network may be slow or offline`,
  ECONNRESET: (host) => `the connection to the model hub (${host}) was cut off`,
  UND_ERR_SOCKET: (host) => `the connection to the model hub (${host}) was cut off`,
  ENETUNREACH: (host) => `cannot reach the model hub (${host}): no network`,
  EHOSTUNREACH: (host) => `cannot reach the model hub (${host}): no route to it`,
  CERT_HAS_EXPIRED: (host) => `the model hub's certificate (${host}) is not valid: check the computer's date and time`,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: (host) => `the certificate of ${host} cannot be verified: a proxy may intercept the connection`,
  ENOSPC: () => 'the disk is full: free some space',
  EACCES: () => 'the models folder cannot be written (permission denied)',
  EROFS: () => 'the models folder is on a read-only disk',
};

function httpWords(status: number, host: string): string {
  if (status === 401 || status === 403) return `the model hub (${host}) refused access (HTTP ${status})`;
  if (status === 404) return `the model hub (${host}) does not have this model or file any more (HTTP 404)`;
  if (status === 429) return `the model hub (${host}) is limiting requests (HTTP 429): try again in a few minutes`;
  if (status >= 500) return `the model hub (${host}) has a problem (HTTP ${status}): try again later`;
  return `the model hub (${host}) answered HTTP ${status}`;
}

/** The first system error code in an error's cause chain (and AggregateError members). */
export function networkErrorCode(error: unknown, depth = 0): string | null {
  if (!error || typeof error !== 'object' || depth > 5) return null;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code in NETWORK_WORDS) return code;
  for (const inner of (error as { errors?: unknown[] }).errors ?? []) {
    const found = networkErrorCode(inner, depth + 1);
    if (found) return found;
  }
  const fromCause = networkErrorCode((error as { cause?: unknown }).cause, depth + 1);
  return fromCause ?? (typeof code === 'string' ? code : null);
}

/** What went wrong with a download of `hubUrl`'s files, in one sentence (no "fetch failed"). */
export function describeDownloadError(error: unknown, hubUrl: string): string {
  let host = hubUrl;
  try {
    host = new URL(hubUrl).host;
  } catch {
    // not a URL: name it as given
  }
  if (error instanceof HubHttpError) return httpWords(error.status, host);
  if (error instanceof IntegrityError) return `a downloaded file was damaged and has been deleted (${error.message}): retry to fetch it again`;
  if ((error as Error)?.name === 'AbortError') return 'the download was stopped';
  const code = networkErrorCode(error);
  if (code && code in NETWORK_WORDS) return NETWORK_WORDS[code](host);
  const message = (error as Error)?.message ?? String(error);
  return code ? `the download failed (${code}): ${message}` : `the download failed: ${message}`;
}
