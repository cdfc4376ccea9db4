// Content addresses for KV blocks: the same token ids give the same key, whichever file they came from.
import { createHash } from 'node:crypto';

/**
 * SHA-256 (hex) of the token ids as Int32 little-endian bytes. Written byte by byte through a
 * DataView so the key is the same on every host, whatever its endianness.
 */
export function tokenHash(ids: ArrayLike<number>): string {
  const bytes = new Uint8Array(ids.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < -0x80000000 || id > 0x7fffffff) {
      throw new RangeError(`tokenHash: id ${id} at ${i} is not an int32`);
    }
    view.setInt32(i * 4, id, true);
  }
  return createHash('sha256').update(bytes).digest('hex');
}

/** SHA-256 (hex) of a text's UTF-8 bytes: a passage block's text, to find its recorded key again (passage-keys.ts). */
export function textHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
