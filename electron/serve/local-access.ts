// Who may call Quire's local HTTP servers (the serve bridge and the OpenAI-compatible API): the Host
// must be this server as a client on this machine reaches it (a rebound DNS name is refused); an
// Origin, which browsers send on cross-origin requests and on every POST, must be this server too;
// and the caller must hold the server's secret (compared in constant time).
import { timingSafeEqual } from 'node:crypto';
import type http from 'node:http';

/** Why the request is refused ('forbidden host' / 'forbidden origin'), or null when it may proceed. */
export function foreignRequest(req: http.IncomingMessage, port: number): string | null {
  const hosts = [`127.0.0.1:${port}`, `localhost:${port}`];
  // DNS rebinding: the Host must be this server as the client was told to reach it
  if (!hosts.includes(req.headers.host ?? '')) return 'forbidden host';
  const origin = req.headers.origin;
  if (origin !== undefined && !hosts.some((h) => origin === `http://${h}`)) return 'forbidden origin';
  if (req.headers['sec-fetch-site'] === 'cross-site') return 'forbidden origin';
  return null;
}

/** Whether `given` is the secret, in time that does not depend on where they differ. */
export function sameSecret(given: string | null | undefined, secret: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(req: http.IncomingMessage): string | null {
  const auth = req.headers.authorization;
  return auth?.startsWith('Bearer ') ? auth.slice(7).trim() : null;
}
