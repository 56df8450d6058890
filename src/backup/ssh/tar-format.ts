/**
 * Just enough of the tar format for pgbk's `ssh` backups, both ways (no dependency):
 * - TarReader: an incremental parser of what GNU `tar -c` writes (ustar headers, GNU long names
 *   'L'/'K', pax 'x'/'g' records, base-256 sizes) — the fallback path when the delta agent cannot
 *   run on the database host. It yields regular files' names, sizes and bytes; other entries are
 *   skipped. A stream that ends before the end-of-archive blocks (or mid-entry) is torn: finish() throws.
 * - tarHeader/tarEnd: ustar headers with a pax record for long names, sizes or link targets, for
 *   the stream a remote restore unpacks with `tar -x`. Pure.
 */

const BLOCK = 512;

export type TarEvent =
  | { readonly type: 'file'; readonly name: string; readonly size: number }
  | { readonly type: 'data'; readonly data: Buffer }
  | { readonly type: 'fileEnd' };

export class TarFormatError extends Error {}

function cstring(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const nul = s.indexOf(0);
  return s.subarray(0, nul === -1 ? s.length : nul).toString('utf8');
}

function octal(b: Buffer, start: number, len: number): number {
  const f = b.subarray(start, start + len);
  if ((f[0]! & 0x80) !== 0) {
    // GNU base-256: big-endian, first byte's top bit is the flag.
    let v = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return v;
  }
  const s = cstring(b, start, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === octal(h, 148, 8);
}

function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < body.length) {
    const sp = body.indexOf(0x20, at);
    if (sp === -1) break;
    const len = parseInt(body.subarray(at, sp).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0) throw new TarFormatError('bad pax record');
    const rec = body.subarray(sp + 1, at + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    at += len;
  }
  return out;
}

type State =
  | { readonly kind: 'header' }
  | { kind: 'meta'; readonly flag: string; remaining: number; readonly parts: Buffer[] }
  | { kind: 'body'; remaining: number; pad: number; readonly emit: boolean }
  | { readonly kind: 'end' };

export class TarReader {
  private state: State = { kind: 'header' };
  private pending: Buffer = Buffer.alloc(0);
  private longName: string | undefined;
  private paxPath: string | undefined;
  private paxSize: number | undefined;
  private zeroBlocks = 0;

  push(input: Buffer): TarEvent[] {
    const out: TarEvent[] = [];
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, input]) : input;
    this.pending = Buffer.alloc(0);
    while (buf.length > 0) {
      const st = this.state;
      if (st.kind === 'end') break; // trailing zero padding after the end-of-archive blocks
      if (st.kind === 'body') {
        if (st.remaining > 0) {
          const n = Math.min(st.remaining, buf.length);
          if (st.emit) out.push({ type: 'data', data: buf.subarray(0, n) });
          st.remaining -= n;
          buf = buf.subarray(n);
          if (st.remaining === 0 && st.emit) out.push({ type: 'fileEnd' });
          if (st.remaining > 0) continue;
        }
        const n = Math.min(st.pad, buf.length);
        st.pad -= n;
        buf = buf.subarray(n);
        if (st.pad === 0) this.state = { kind: 'header' };
        continue;
      }
      if (st.kind === 'meta') {
        const padded = Math.ceil(st.remaining / BLOCK) * BLOCK;
        if (buf.length < padded) {
          this.pending = buf;
          break;
        }
        st.parts.push(buf.subarray(0, st.remaining));
        buf = buf.subarray(padded);
        this.finishMeta(st.flag, Buffer.concat(st.parts));
        this.state = { kind: 'header' };
        continue;
      }
      if (buf.length < BLOCK) {
        this.pending = buf;
        break;
      }
      const h = buf.subarray(0, BLOCK);
      buf = buf.subarray(BLOCK);
      if (h.every((x) => x === 0)) {
        if (++this.zeroBlocks === 2) this.state = { kind: 'end' };
        continue;
      }
      if (this.zeroBlocks > 0) throw new TarFormatError('tar stream corrupt: data after a zero block');
      if (!checksumOk(h)) throw new TarFormatError('tar stream corrupt: header checksum mismatch');
      const flag = String.fromCharCode(h[156]!);
      const size = this.paxSize ?? octal(h, 124, 12);
      if (flag === 'L' || flag === 'K' || flag === 'x' || flag === 'g') {
        this.state = { kind: 'meta', flag, remaining: size, parts: [] };
        continue;
      }
      const prefix = cstring(h, 345, 155);
      const base = cstring(h, 0, 100);
      const name = this.paxPath ?? this.longName ?? (prefix === '' ? base : `${prefix}/${base}`);
      this.longName = undefined;
      this.paxPath = undefined;
      this.paxSize = undefined;
      const isFile = flag === '0' || flag === '\0' || flag === '7';
      const bodySize = flag === '1' || flag === '2' || flag === '5' ? 0 : size;
      if (isFile) {
        out.push({ type: 'file', name, size: bodySize });
        if (bodySize === 0) out.push({ type: 'fileEnd' });
        else this.state = { kind: 'body', remaining: bodySize, pad: padding(bodySize), emit: true };
      } else if (bodySize > 0) {
        this.state = { kind: 'body', remaining: bodySize, pad: padding(bodySize), emit: false };
      }
    }
    return out;
  }

  private finishMeta(flag: string, body: Buffer): void {
    if (flag === 'L') this.longName = cstring(body, 0, body.length);
    else if (flag === 'x') {
      const pax = parsePax(body);
      const p = pax.get('path');
      if (p !== undefined) this.paxPath = p;
      const s = pax.get('size');
      if (s !== undefined) this.paxSize = Number(s);
    }
    // 'K' (long link target) and 'g' (global pax) do not matter for regular files.
  }

  /** Throws unless the archive ended properly (end-of-archive blocks seen). */
  finish(): void {
    if (this.state.kind !== 'end') throw new TarFormatError('tar stream torn: it ends before the end-of-archive blocks');
  }
}

export interface TarEntryHeader {
  readonly name: string;
  readonly type: 'file' | 'dir' | 'symlink';
  readonly size: number;
  readonly mode: number;
  readonly mtimeMs: number;
  readonly uid: number;
  readonly gid: number;
  readonly linkTarget?: string;
}

function writeOctal(h: Buffer, value: number, start: number, len: number): void {
  h.write(`${value.toString(8).padStart(len - 1, '0')}\0`, start, len, 'latin1');
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function rawHeader(name: string, flag: string, size: number, e: Pick<TarEntryHeader, 'mode' | 'mtimeMs' | 'uid' | 'gid'>, link = ''): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  writeOctal(h, e.mode & 0o7777, 100, 8);
  writeOctal(h, e.uid, 108, 8);
  writeOctal(h, e.gid, 116, 8);
  writeOctal(h, size, 124, 12);
  writeOctal(h, Math.floor(e.mtimeMs / 1000), 136, 12);
  h.fill(0x20, 148, 156);
  h.write(flag, 156, 1, 'latin1');
  h.write(link, 157, 100, 'utf8');
  h.write('ustar\0' + '00', 257, 8, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return h;
}

/** Header block(s) for one entry: a pax extended header first when a field does not fit ustar. */
export function tarHeader(e: TarEntryHeader): Buffer {
  const flag = e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2';
  const name = e.type === 'dir' && !e.name.endsWith('/') ? `${e.name}/` : e.name;
  const link = e.linkTarget ?? '';
  const size = e.type === 'file' ? e.size : 0;
  let pax = '';
  if (Buffer.byteLength(name) > 100) pax += paxRecord('path', name);
  if (Buffer.byteLength(link) > 100) pax += paxRecord('linkpath', link);
  if (size > 0o77777777777) pax += paxRecord('size', String(size));
  const main = rawHeader(
    Buffer.byteLength(name) > 100 ? name.slice(0, 99) : name,
    flag,
    size > 0o77777777777 ? 0 : size,
    e,
    Buffer.byteLength(link) > 100 ? '' : link,
  );
  if (pax === '') return main;
  const body = Buffer.from(pax, 'utf8');
  const paxHeader = rawHeader('././@PaxHeader', 'x', body.length, e);
  return Buffer.concat([paxHeader, body, Buffer.alloc(padding(body.length)), main]);
}

/** Zero bytes that complete a body of `size` bytes to a block. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** The end-of-archive marker: two zero blocks. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}
