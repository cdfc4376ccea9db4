// The preload: exposes exactly the contract's typed API (plus a helper for dropped folders) to the
// sandboxed renderer through contextBridge. No Node, no ipcRenderer, nothing else leaks.
import { contextBridge, ipcRenderer, webUtils } from 'electron';
import {
  IPC_EVENT_CHANNEL,
  IPC_REQUEST_CHANNEL,
  QuireRequestError,
  type EventName,
  type QuireApi,
} from './contract/types.ts';
import type { IpcEnvelope } from './ipc-validation.ts';

const api: QuireApi & { pathForFile(file: File): string } = {
  async request(name, args) {
    const envelope = (await ipcRenderer.invoke(IPC_REQUEST_CHANNEL, name, args)) as IpcEnvelope;
    if (!envelope.ok) throw new QuireRequestError(envelope.error.code, envelope.error.message);
    return envelope.result as never;
  },
  on(name, listener) {
    const wrapped = (_event: unknown, eventName: EventName, payload: unknown) => {
      if (eventName === name) (listener as (p: unknown) => void)(payload);
    };
    ipcRenderer.on(IPC_EVENT_CHANNEL, wrapped);
    return () => void ipcRenderer.off(IPC_EVENT_CHANNEL, wrapped);
  },
  pathForFile: (file) => webUtils.getPathForFile(file),
};

contextBridge.exposeInMainWorld('quire', api);
