/**
 * A set of relation block numbers (0 … 2^32 − 2) as a sparse bitmap: what the WAL block summary
 * (wal-blocks.ts) keeps per relation. A `Set<number>` cost ~2/3 of the summary's time per record
 * (hashing every reference, even of a block seen a moment ago) and tens of bytes per block; a bit
 * costs a shift and a mask, and asking "is any block of this 1 MiB chunk changed" reads a few
 * words instead of walking every block. Pages of PAGE_BLOCKS bits are made on first use, so a
 * relation touched in one place costs one page (512 bytes), not its whole length. Pure.
 */

/** Blocks per page: 4096 (32 MiB of relation in 8 KiB pages) in 512 bytes of bits. */
const PAGE_SHIFT = 12;
const PAGE_BLOCKS = 1 << PAGE_SHIFT;
const PAGE_WORDS = PAGE_BLOCKS / 32;
/** Bytes one page of bits takes (the summary bounds its memory with it). */
export const BLOCK_SET_PAGE_BYTES = PAGE_WORDS * 4;

/** What readers of a set may ask. */
export interface ReadonlyBlockSet extends Iterable<number> {
  /** Distinct blocks in the set. */
  readonly size: number;
  has(block: number): boolean;
  /** Whether any block in [from, to) is in the set. */
  anyIn(from: number, to: number): boolean;
}

export class BlockSet implements ReadonlyBlockSet {
  private readonly pages = new Map<number, Uint32Array>();
  /** The page of the last add: references in a row mostly fall in the same one. */
  private lastKey = -1;
  private lastPage: Uint32Array | undefined;
  size = 0;

  /** Pages made so far (each BLOCK_SET_PAGE_BYTES). */
  get pageCount(): number {
    return this.pages.size;
  }

  /** Add `block`; whether it was new. */
  add(block: number): boolean {
    const key = block >>> PAGE_SHIFT;
    let page = key === this.lastKey ? this.lastPage : this.pages.get(key);
    if (page === undefined) {
      page = new Uint32Array(PAGE_WORDS);
      this.pages.set(key, page);
    }
    this.lastKey = key;
    this.lastPage = page;
    const w = (block >>> 5) & (PAGE_WORDS - 1);
    const bit = 1 << (block & 31);
    const word = page[w] as number;
    if ((word & bit) !== 0) return false;
    page[w] = word | bit;
    this.size++;
    return true;
  }

  has(block: number): boolean {
    const page = this.pages.get(block >>> PAGE_SHIFT);
    return page !== undefined && ((page[(block >>> 5) & (PAGE_WORDS - 1)] as number) & (1 << (block & 31))) !== 0;
  }

  anyIn(from: number, to: number): boolean {
    if (this.size === 0 || to <= from) return false;
    // Word by word (arithmetic, not shifts: block numbers reach 2^32, past int32).
    const lastWord = Math.floor((to - 1) / 32);
    for (let wi = Math.floor(from / 32); wi <= lastWord; ) {
      const page = this.pages.get(Math.floor(wi / PAGE_WORDS));
      if (page === undefined) {
        wi = (Math.floor(wi / PAGE_WORDS) + 1) * PAGE_WORDS; // the next page
        continue;
      }
      const pageEnd = Math.min(lastWord, (Math.floor(wi / PAGE_WORDS) + 1) * PAGE_WORDS - 1);
      for (; wi <= pageEnd; wi++) {
        let word = page[wi % PAGE_WORDS] as number;
        if (word === 0) continue;
        const base = wi * 32;
        if (from > base) word &= ~0 << (from - base); // bits below `from` out
        if (to < base + 32) word &= ~(~0 << (to - base)); // bits from `to` on out
        if (word !== 0) return true;
      }
    }
    return false;
  }

  *[Symbol.iterator](): Iterator<number> {
    for (const [key, page] of this.pages) {
      for (let w = 0; w < PAGE_WORDS; w++) {
        const word = page[w] as number;
        if (word === 0) continue;
        for (let b = 0; b < 32; b++) if ((word & (1 << b)) !== 0) yield key * PAGE_BLOCKS + w * 32 + b;
      }
    }
  }
}

/** The empty set, for relations known only by their limit. */
export const NO_BLOCKS: ReadonlyBlockSet = new BlockSet();
