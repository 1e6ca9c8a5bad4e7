import { StateError } from "./errors.js";

/**
 * Streaming, fail-fast UTF-8 validation for text messages (RFC 6455 §5.6, §8.1) and close
 * reasons (§5.5.1), plus {@link utf8ByteLength}.
 *
 * Well-formed UTF-8 is exactly the byte sequences of RFC 3629 §4 / Unicode Table 3-7:
 *
 * | code points        | byte 1 | byte 2 | byte 3 | byte 4 |
 * | ------------------ | ------ | ------ | ------ | ------ |
 * | U+0000..U+007F     | 00..7F |        |        |        |
 * | U+0080..U+07FF     | C2..DF | 80..BF |        |        |
 * | U+0800..U+0FFF     | E0     | A0..BF | 80..BF |        |
 * | U+1000..U+CFFF     | E1..EC | 80..BF | 80..BF |        |
 * | U+D000..U+D7FF     | ED     | 80..9F | 80..BF |        |
 * | U+E000..U+FFFF     | EE..EF | 80..BF | 80..BF |        |
 * | U+10000..U+3FFFF   | F0     | 90..BF | 80..BF | 80..BF |
 * | U+40000..U+FFFFF   | F1..F3 | 80..BF | 80..BF | 80..BF |
 * | U+100000..U+10FFFF | F4     | 80..8F | 80..BF | 80..BF |
 *
 * Only the second byte has a range that depends on the lead byte; every later byte is 80..BF.
 * So a validator needs just three numbers between bytes: how many continuation bytes are still
 * due, and the inclusive range the next one must fall in. Checking the second byte against its
 * narrowed range rejects overlongs (C0, C1, E0 80, F0 80), surrogates (ED A0..ED BF) and code
 * points above U+10FFFF (F4 90.., F5..FF) at the first byte that makes them impossible, which is
 * what "fail fast" in RFC 6455 §8.1 asks for.
 */

/** `state` value of a validator that has seen an invalid byte. */
const FAILED = -1;

/**
 * Validate whole code points in bytes[i, end).
 *
 * Returns `end` when every byte belongs to a complete, valid sequence; `-1` on an invalid byte;
 * otherwise the index of a valid lead byte whose sequence runs past `end` (the caller checks
 * those last 1..3 bytes one at a time, so they may still turn out invalid).
 */
function scan(bytes: Uint8Array, i: number, end: number): number {
  while (i < end) {
    let b = bytes[i]!;
    if (b < 0x80) {
      i++;
      // Only pay for the 8-byte probe when this is a run, not a lone space between words.
      if (i < end && bytes[i]! < 0x80) {
        i++;
        // Eight bytes at a time: ORing them keeps a high bit set if any byte is non-ASCII.
        const last8 = end - 8;
        while (
          i <= last8 &&
          ((bytes[i]! |
            bytes[i + 1]! |
            bytes[i + 2]! |
            bytes[i + 3]! |
            bytes[i + 4]! |
            bytes[i + 5]! |
            bytes[i + 6]! |
            bytes[i + 7]!) &
            0x80) ===
            0
        ) {
          i += 8;
        }
        while (i < end && bytes[i]! < 0x80) i++;
      }
      continue;
    }
    if (b < 0xe0) {
      // Two-byte sequences tend to come in runs (Greek, Cyrillic, Hebrew...): stay here.
      for (;;) {
        if (b < 0xc2) return -1; // 80..BF: stray continuation; C0, C1: always overlong.
        if (i + 1 >= end) return i;
        if ((bytes[i + 1]! & 0xc0) !== 0x80) return -1;
        i += 2;
        if (i >= end) return end;
        b = bytes[i]!;
        if (b < 0xc0 || b >= 0xe0) break;
      }
      continue;
    }
    if (b < 0xf0) {
      if (i + 2 >= end) return i;
      const b1 = bytes[i + 1]!;
      if (
        b === 0xe0
          ? b1 < 0xa0 || b1 > 0xbf // overlong below U+0800
          : b === 0xed
            ? b1 < 0x80 || b1 > 0x9f // U+D800..U+DFFF: surrogates
            : (b1 & 0xc0) !== 0x80
      ) {
        return -1;
      }
      if ((bytes[i + 2]! & 0xc0) !== 0x80) return -1;
      i += 3;
      continue;
    }
    if (b < 0xf5) {
      if (i + 3 >= end) return i;
      const b1 = bytes[i + 1]!;
      if (
        b === 0xf0
          ? b1 < 0x90 || b1 > 0xbf // overlong below U+10000
          : b === 0xf4
            ? b1 < 0x80 || b1 > 0x8f // above U+10FFFF
            : (b1 & 0xc0) !== 0x80
      ) {
        return -1;
      }
      if ((bytes[i + 2]! & 0xc0) !== 0x80 || (bytes[i + 3]! & 0xc0) !== 0x80) return -1;
      i += 4;
      continue;
    }
    return -1; // F5..FF never appear in UTF-8.
  }
  return end;
}

/** Pieces shorter than this are validated here even when a fast validator is available. */
export const FAST_MIN = 256;

/**
 * The index where a sequence cut off by `end` starts, or `end` when bytes[i, end) ends on a
 * complete (or certainly invalid) sequence. Looks at the last three bytes at most.
 */
function lastBoundary(bytes: Uint8Array, i: number, end: number): number {
  const stop = Math.max(i, end - 4);
  for (let k = end - 1; k >= stop; k--) {
    const b = bytes[k]!;
    if (b < 0x80) return end;
    if (b >= 0xc0) {
      const length = b < 0xe0 ? 2 : b < 0xf0 ? 3 : b < 0xf8 ? 4 : 1;
      return k + length > end ? k : end;
    }
  }
  return end;
}

function checkRange(bytes: Uint8Array, start: number, end: number): void {
  if (
    !(start >= 0 && start <= end && end <= bytes.length) ||
    !Number.isInteger(start) ||
    !Number.isInteger(end)
  ) {
    throw new StateError(
      "WS_ERR_INVALID_ARGUMENT",
      `invalid range [${start}, ${end}) for ${bytes.length} bytes`,
    );
  }
}

/**
 * Incremental UTF-8 validator for one text message delivered in pieces (frames, TCP chunks).
 * It holds three integers and allocates nothing per call.
 *
 * ```ts
 * const v = new Utf8Validator();
 * for (const chunk of chunks) if (!v.update(chunk)) fail(1007);
 * if (!v.isComplete()) fail(1007);
 * v.reset(); // before the next message
 * ```
 */
export class Utf8Validator {
  /** Continuation bytes still due (0..3), or {@link FAILED}. */
  #state = 0;
  /** Optional whole-buffer validator (e.g. node:buffer isUtf8, SIMD) used on long pieces. */
  readonly #fast: ((bytes: Uint8Array) => boolean) | undefined;

  /**
   * @param fast A whole-buffer validator for complete sequences. When given, pieces of
   * {@link FAST_MIN} bytes or more are checked by it up to their last complete code point; the
   * sequence carried over from the previous piece and the cut-off tail (at most 3 bytes each)
   * are still checked here byte by byte. Failure is still detected within the piece holding the
   * first invalid byte.
   */
  constructor(fast?: (bytes: Uint8Array) => boolean) {
    this.#fast = fast;
  }
  /** Inclusive range the next continuation byte must fall in (meaningful when #state > 0). */
  #lo = 0x80;
  #hi = 0xbf;

  /**
   * Validate bytes[start, end) continuing from previous calls. Returns false as soon as the
   * stream so far cannot be a prefix of valid UTF-8 (e.g. ED A0, F4 90, C0, stray 80, F5..FF,
   * overlong E0 80), including when the offending byte is the first of a later call. Once false,
   * stays false until {@link reset}. Throws StateError(WS_ERR_INVALID_ARGUMENT) on a bad range.
   */
  update(bytes: Uint8Array, start = 0, end: number = bytes.length): boolean {
    checkRange(bytes, start, end);
    let need = this.#state;
    if (need === FAILED) return false;
    let i = start;
    let lo = this.#lo;
    let hi = this.#hi;

    // Finish a sequence left open by the previous call.
    while (need > 0) {
      if (i === end) {
        this.#state = need;
        this.#lo = lo;
        this.#hi = hi;
        return true;
      }
      const b = bytes[i++]!;
      if (b < lo || b > hi) return this.#fail();
      need--;
      lo = 0x80;
      hi = 0xbf;
    }

    if (this.#fast !== undefined && end - i >= FAST_MIN) {
      const boundary = lastBoundary(bytes, i, end);
      if (!this.#fast(bytes.subarray(i, boundary))) return this.#fail();
      i = boundary;
    }
    i = scan(bytes, i, end);
    if (i < 0) return this.#fail();

    // bytes[i, end) is the start of a sequence cut off by `end`: take it one byte at a time.
    if (i < end) {
      const b = bytes[i++]!;
      if (b < 0xe0) {
        need = 1; // scan() already rejected 80..C1.
      } else if (b < 0xf0) {
        need = 2;
        if (b === 0xe0) lo = 0xa0;
        else if (b === 0xed) hi = 0x9f;
      } else {
        need = 3; // scan() already rejected F5..FF.
        if (b === 0xf0) lo = 0x90;
        else if (b === 0xf4) hi = 0x8f;
      }
      while (i < end) {
        const c = bytes[i++]!;
        if (c < lo || c > hi) return this.#fail();
        need--;
        lo = 0x80;
        hi = 0xbf;
      }
    }
    this.#state = need;
    this.#lo = lo;
    this.#hi = hi;
    return true;
  }

  /** True when the stream ends on a complete code point (call at the end of a message). */
  isComplete(): boolean {
    return this.#state === 0;
  }

  /** Forget everything, ready for the next message. */
  reset(): void {
    this.#state = 0;
    this.#lo = 0x80;
    this.#hi = 0xbf;
  }

  #fail(): false {
    this.#state = FAILED;
    return false;
  }
}

/**
 * True when bytes[start, end) is, as a whole, well-formed UTF-8 (no partial sequence at the end).
 * Throws StateError(WS_ERR_INVALID_ARGUMENT) on a bad range.
 */
export function isValidUtf8(bytes: Uint8Array, start = 0, end: number = bytes.length): boolean {
  checkRange(bytes, start, end);
  // A cut-off sequence at `end` is as invalid as a bad byte here.
  return scan(bytes, start, end) === end;
}

/**
 * Exact number of bytes `new TextEncoder().encode(str)` produces, without encoding: 1 byte per
 * code point below U+0080, 2 below U+0800, 4 per surrogate pair, 3 for everything else —
 * including a lone surrogate, which the encoder replaces with U+FFFD (EF BF BD).
 */
export function utf8ByteLength(str: string): number {
  const n = str.length;
  let total = n;
  for (let i = 0; i < n; i++) {
    const c = str.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      total += 1;
      continue;
    }
    if (c <= 0xdbff && c >= 0xd800 && i + 1 < n) {
      const d = str.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        // Two UTF-16 units, four bytes: already counted 2.
        i++;
        total += 2;
        continue;
      }
    }
    total += 2;
  }
  return total;
}
