/** Deterministic payloads for the benchmarks: random bytes and UTF-8 text of an exact size. */

/** xorshift32: the same bytes on every run, no dependency on crypto. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function randomBytes(size: number, seed = 1): Buffer {
  const next = prng(seed);
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = next() & 0xff;
  return out;
}

/** Non-zero 4-byte masking keys (ws skips unmasking an all-zero key; real clients are random). */
export function maskKeys(count: number, seed = 7): Uint8Array[] {
  const next = prng(seed);
  const keys: Uint8Array[] = [];
  while (keys.length < count) {
    const v = next();
    if (v !== 0)
      keys.push(new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]));
  }
  return keys;
}

const WORDS_ASCII = [
  "hello",
  "world",
  "message",
  "channel",
  "presence",
  "update",
  "cursor",
  "typing",
  "status",
  "online",
];
const WORDS_MIXED = [
  "Grüße aus Köln",
  "Привет, мир",
  "日本語のテキスト",
  "مرحبا بالعالم",
  "Ελληνικά",
  "🚀🎉 launch",
  "naïve café",
  "한국어 문장",
  "status",
  "שלום עולם",
];

/**
 * UTF-8 text of exactly `size` bytes, shaped like chat JSON.
 *
 * - "ascii": only ASCII.
 * - "chat": mostly ASCII with some accented letters and an emoji now and then (~10% of bytes
 *   are non-ASCII), what a typical text message carries.
 * - "mixed": multilingual (Latin-1, Cyrillic, CJK, Arabic, Greek, Hangul, Hebrew, emoji); most
 *   bytes are non-ASCII, so a validator cannot stay on an ASCII fast path.
 */
export function utf8Text(size: number, kind: "ascii" | "chat" | "mixed", seed = 3): Buffer {
  const next = prng(seed);
  const parts: string[] = [];
  let approx = 0;
  let id = 0;
  while (approx < size + 64) {
    const pick = (list: readonly string[]): string => list[next() % list.length] ?? "";
    let text: string;
    if (kind === "ascii") text = `${pick(WORDS_ASCII)} ${pick(WORDS_ASCII)} ${pick(WORDS_ASCII)}`;
    else if (kind === "mixed") text = `${pick(WORDS_MIXED)} ${pick(WORDS_MIXED)}`;
    else text = `${pick(WORDS_ASCII)} ${next() % 8 === 0 ? pick(WORDS_MIXED) : pick(WORDS_ASCII)}`;
    const item = `{"id":${id++},"user":"u${next() % 1000}","text":"${text}"},`;
    parts.push(item);
    approx += Buffer.byteLength(item);
  }
  const full = Buffer.from(parts.join(""), "utf8");
  // Cut at a code point boundary at or below `size`, then pad with spaces to the exact size.
  let end = Math.min(size, full.length);
  while (end > 0 && ((full[end] ?? 0) & 0xc0) === 0x80) end--;
  const out = Buffer.alloc(size, 0x20);
  full.copy(out, 0, 0, end);
  return out;
}

/** Fraction of bytes that are not ASCII. */
export function nonAsciiShare(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) if (b >= 0x80) n++;
  return bytes.length === 0 ? 0 : n / bytes.length;
}

export const KiB = 1024;
export const MiB = 1024 * 1024;

export function sizeLabel(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}
