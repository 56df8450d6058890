/** The page-LSN shortcut of `pgbk backup-agent` (backup-agent.ts), shared with its worker threads. */

import { endianness } from 'node:os';

/** Every page of `data` (whole pages only) carries a non-zero LSN before `before`. */
export function pagesPredate(data: Uint8Array, pageSize: number, before: { hi: number; lo: number }): boolean {
  if (data.length === 0 || data.length % pageSize !== 0) return false;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = endianness() === 'LE';
  for (let at = 0; at < data.length; at += pageSize) {
    // PageHeaderData starts with pd_lsn: {uint32 xlogid; uint32 xrecoff}, in the server's byte order.
    const hi = view.getUint32(at, le);
    const lo = view.getUint32(at + 4, le);
    if (hi === 0 && lo === 0) return false;
    if (hi > before.hi || (hi === before.hi && lo >= before.lo)) return false;
  }
  return true;
}
