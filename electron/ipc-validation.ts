// The one IPC request handler of the main process, testable without Electron: it answers only the
// app's own top frame, only known request names, and only arguments the contract's schema accepts.
// Results travel in an envelope ({ok, result} | {ok: false, error}) because Electron flattens
// thrown errors into a string.
import { parseRequest } from './contract/schemas.ts';
import { isRequestName, QuireRequestError, type RequestArgs, type RequestFailure, type RequestName } from './contract/types.ts';
import { isAppUrl } from './window-options.ts';

export type IpcEnvelope = { ok: true; result: unknown } | { ok: false; error: RequestFailure };

/** What the handler reads of Electron's IpcMainInvokeEvent. */
export interface IpcSenderEvent {
  senderFrame: { url: string; parent: unknown } | null;
}

export interface IpcHandlerOptions {
  /** The app page's URL (file://.../index.html). */
  appUrl: string;
  /** Answers a request whose argument passed its schema. */
  dispatch: <N extends RequestName>(name: N, args: RequestArgs<N>) => Promise<unknown>;
}

export function isTrustedSender(event: IpcSenderEvent, appUrl: string): boolean {
  const frame = event.senderFrame;
  return frame !== null && frame.parent === null && isAppUrl(frame.url, appUrl);
}

export function createIpcHandler({ appUrl, dispatch }: IpcHandlerOptions) {
  return async (event: IpcSenderEvent, name: unknown, args: unknown): Promise<IpcEnvelope> => {
    try {
      if (!isTrustedSender(event, appUrl)) throw new QuireRequestError('failed', 'request refused: not from the app window');
      if (typeof name !== 'string' || !isRequestName(name)) throw new QuireRequestError('unknown-request', `no request "${String(name)}"`);
      const parsed = parseRequest(name, args);
      return { ok: true, result: await dispatch(name, parsed) };
    } catch (e) {
      const err = e instanceof QuireRequestError ? e : new QuireRequestError('failed', (e as Error).message);
      return { ok: false, error: { code: err.code, message: err.message } };
    }
  };
}
