/**
 * RFC 6455 §5.3 masking: `transformed[i] = original[i] XOR key[(i + offset) % 4]`.
 * Applied in place, four bytes at a time on the aligned middle of the buffer.
 */

/** Below this many bytes an unrolled byte loop beats creating a 32-bit view (an allocation). */
const WORD_THRESHOLD = 128;

/** True when a Uint32Array sees bytes in little-endian order (every platform Node runs on today). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * XOR `buf[start, end)` in place with the 4-byte `key`, as if the range began `keyOffset`
 * bytes into the masked payload (so a payload can be unmasked piece by piece as it arrives).
 * Masking and unmasking are the same operation.
 */
export function applyMask(
  buf: Uint8Array,
  key: Uint8Array,
  start = 0,
  end = buf.length,
  keyOffset = 0,
): void {
  applyMaskBytes(buf, key[0] ?? 0, key[1] ?? 0, key[2] ?? 0, key[3] ?? 0, start, end, keyOffset);
}

/** {@link applyMask} with the key as four numbers (no key buffer to keep per connection). */
export function applyMaskBytes(
  buf: Uint8Array,
  k0: number,
  k1: number,
  k2: number,
  k3: number,
  start: number,
  end: number,
  keyOffset: number,
): void {
  let i = start;
  if (end - start < WORD_THRESHOLD) {
    // Small payloads (most messages): four bytes per step, no allocation.
    const p = keyOffset & 3;
    const r0 = p === 0 ? k0 : p === 1 ? k1 : p === 2 ? k2 : k3;
    const r1 = p === 0 ? k1 : p === 1 ? k2 : p === 2 ? k3 : k0;
    const r2 = p === 0 ? k2 : p === 1 ? k3 : p === 2 ? k0 : k1;
    const r3 = p === 0 ? k3 : p === 1 ? k0 : p === 2 ? k1 : k2;
    const stop = end - 3;
    for (; i < stop; i += 4) {
      buf[i] = buf[i]! ^ r0;
      buf[i + 1] = buf[i + 1]! ^ r1;
      buf[i + 2] = buf[i + 2]! ^ r2;
      buf[i + 3] = buf[i + 3]! ^ r3;
    }
    // At most three bytes left.
    if (i < end) buf[i] = buf[i]! ^ r0;
    if (i + 1 < end) buf[i + 1] = buf[i + 1]! ^ r1;
    if (i + 2 < end) buf[i + 2] = buf[i + 2]! ^ r2;
    return;
  }
  let phase = keyOffset & 3;
  if (end - start >= WORD_THRESHOLD) {
    // Byte loop up to a 4-byte aligned address.
    while (((buf.byteOffset + i) & 3) !== 0) {
      buf[i] = (buf[i] ?? 0) ^ (phase === 0 ? k0 : phase === 1 ? k1 : phase === 2 ? k2 : k3);
      phase = (phase + 1) & 3;
      i++;
    }
    // The key rotated so that its first byte lines up with `phase`.
    const r0 = phase === 0 ? k0 : phase === 1 ? k1 : phase === 2 ? k2 : k3;
    const r1 = phase === 0 ? k1 : phase === 1 ? k2 : phase === 2 ? k3 : k0;
    const r2 = phase === 0 ? k2 : phase === 1 ? k3 : phase === 2 ? k0 : k1;
    const r3 = phase === 0 ? k3 : phase === 1 ? k0 : phase === 2 ? k1 : k2;
    const word = LITTLE_ENDIAN
      ? (r0 | (r1 << 8) | (r2 << 16) | (r3 << 24)) >>> 0
      : ((r0 << 24) | (r1 << 16) | (r2 << 8) | r3) >>> 0;
    const words = (end - i) >>> 2;
    const view = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] = (view[w] ?? 0) ^ word;
    i += words << 2;
  }
  for (; i < end; i++) {
    buf[i] = (buf[i] ?? 0) ^ (phase === 0 ? k0 : phase === 1 ? k1 : phase === 2 ? k2 : k3);
    phase = (phase + 1) & 3;
  }
}

/**
 * Copy `src` into `dst` at `dstStart`, masking it with `key` on the way (client frames:
 * the application's buffer is never modified).
 */
export function copyMasked(
  src: Uint8Array,
  dst: Uint8Array,
  dstStart: number,
  key: Uint8Array,
): void {
  dst.set(src, dstStart);
  applyMask(dst, key, dstStart, dstStart + src.length, 0);
}
