/**
 * SHA-1 (FIPS 180-4) and Base64 (RFC 4648 §4) in plain TypeScript, so the sans-I/O core can
 * compute `Sec-WebSocket-Accept` (RFC 6455 §4.2.2) without `node:crypto` or `Buffer`.
 *
 * SHA-1 is used here only as RFC 6455 prescribes it (a handshake check, not a security
 * primitive); never use it for anything else.
 */

/** SHA-1 digest (20 bytes) of `data`. Synchronous, linear in `data.length`. */
export function sha1(data: Uint8Array): Uint8Array {
  const length = data.length;
  // Message + 0x80 + zero padding + 64-bit big-endian bit length, rounded up to 64 bytes.
  const blocks = Math.ceil((length + 9) / 64);
  const padded = new Uint8Array(blocks * 64);
  padded.set(data);
  padded[length] = 0x80;
  const view = new DataView(padded.buffer);
  const bitLength = length * 8;
  view.setUint32(padded.length - 8, Math.floor(bitLength / 0x1_0000_0000));
  view.setUint32(padded.length - 4, bitLength >>> 0);

  let h0 = 0x67452301;
  let h1 = 0xefcdab89;
  let h2 = 0x98badcfe;
  let h3 = 0x10325476;
  let h4 = 0xc3d2e1f0;
  const w = new Int32Array(80);

  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let t = 0; t < 16; t++) w[t] = view.getInt32(offset + t * 4);
    for (let t = 16; t < 80; t++) {
      const x = w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!;
      w[t] = (x << 1) | (x >>> 31);
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    for (let t = 0; t < 80; t++) {
      let f: number;
      let k: number;
      if (t < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (t < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (t < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6;
      }
      const temp = (((a << 5) | (a >>> 27)) + f + e + k + w[t]!) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = temp;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }

  const out = new Uint8Array(20);
  const outView = new DataView(out.buffer);
  outView.setInt32(0, h0);
  outView.setInt32(4, h1);
  outView.setInt32(8, h2);
  outView.setInt32(12, h3);
  outView.setInt32(16, h4);
  return out;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const PAD = 0x3d; // "="

/** Char code -> 6-bit value, or -1 for characters outside the standard alphabet. */
const DECODE_TABLE: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

/** Standard Base64 (RFC 4648 §4) with `=` padding. */
export function base64Encode(bytes: Uint8Array): string {
  let out = "";
  const full = bytes.length - (bytes.length % 3);
  for (let i = 0; i < full; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out +=
      ALPHABET[n >>> 18]! +
      ALPHABET[(n >>> 12) & 63]! +
      ALPHABET[(n >>> 6) & 63]! +
      ALPHABET[n & 63]!;
  }
  const rest = bytes.length - full;
  if (rest === 1) {
    const n = bytes[full]! << 16;
    out += `${ALPHABET[n >>> 18]!}${ALPHABET[(n >>> 12) & 63]!}==`;
  } else if (rest === 2) {
    const n = (bytes[full]! << 16) | (bytes[full + 1]! << 8);
    out += `${ALPHABET[n >>> 18]!}${ALPHABET[(n >>> 12) & 63]!}${ALPHABET[(n >>> 6) & 63]!}=`;
  }
  return out;
}

function sextet(str: string, index: number): number {
  const code = str.charCodeAt(index);
  return code < 128 ? DECODE_TABLE[code]! : -1;
}

/**
 * Strict canonical Base64 decoding (RFC 4648 §4): length a multiple of 4, only the standard
 * alphabet, `=` only as the last one or two characters, and the unused bits before the padding
 * must be zero (RFC 4648 §3.5). No whitespace, no URL-safe alphabet. Returns `null` when
 * `str` is not such an encoding.
 */
export function base64Decode(str: string): Uint8Array | null {
  const length = str.length;
  if (length % 4 !== 0) return null;
  let padding = 0;
  if (length > 0 && str.charCodeAt(length - 1) === PAD) {
    padding = str.charCodeAt(length - 2) === PAD ? 2 : 1;
  }
  const out = new Uint8Array((length / 4) * 3 - padding);
  const fullEnd = padding === 0 ? length : length - 4;
  let o = 0;
  for (let i = 0; i < fullEnd; i += 4) {
    const a = sextet(str, i);
    const b = sextet(str, i + 1);
    const c = sextet(str, i + 2);
    const d = sextet(str, i + 3);
    if ((a | b | c | d) < 0) return null;
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = n >>> 16;
    out[o++] = (n >>> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  if (padding === 0) return out;
  const a = sextet(str, fullEnd);
  const b = sextet(str, fullEnd + 1);
  if ((a | b) < 0) return null;
  if (padding === 2) {
    if ((b & 0x0f) !== 0) return null; // non-canonical trailing bits
    out[o] = (a << 2) | (b >>> 4);
    return out;
  }
  const c = sextet(str, fullEnd + 2);
  if (c < 0 || (c & 0x03) !== 0) return null;
  out[o++] = (a << 2) | (b >>> 4);
  out[o] = ((b & 0x0f) << 4) | (c >>> 2);
  return out;
}
