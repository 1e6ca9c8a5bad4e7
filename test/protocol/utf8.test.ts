import assert from "node:assert/strict";
import { isUtf8 } from "node:buffer";
import { describe, it } from "node:test";
import fc from "fast-check";
import { StateError } from "../../src/protocol/errors.js";
import { isValidUtf8, Utf8Validator, utf8ByteLength } from "../../src/protocol/utf8.js";

/** "ce ba 41" → bytes. */
function hex(s: string): Uint8Array {
  const t = s.trim();
  if (t === "") return new Uint8Array(0);
  return Uint8Array.from(t.split(/\s+/), (h) => {
    const n = Number.parseInt(h, 16);
    assert.ok(n >= 0 && n <= 0xff && /^[0-9a-f]{2}$/i.test(h), `bad hex byte ${h}`);
    return n;
  });
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Where validation fails: a byte index, "end" (valid prefix but cut off), or null (valid). */
type Failure = number | "end" | null;

/**
 * Feed `bytes` one byte per update() call and report the first call that returns false.
 * Also checks that a failed validator stays failed for the remaining bytes.
 */
function failIndexByteByByte(bytes: Uint8Array): Failure {
  const v = new Utf8Validator();
  let failedAt: number | null = null;
  for (let i = 0; i < bytes.length; i++) {
    const ok = v.update(bytes, i, i + 1);
    if (failedAt === null) {
      if (!ok) failedAt = i;
    } else {
      assert.equal(ok, false, `validator recovered at byte ${i} after failing at ${failedAt}`);
    }
  }
  if (failedAt !== null) {
    assert.equal(v.isComplete(), false);
    assert.equal(v.update(utf8("abc")), false, "a failed validator must stay failed");
    return failedAt;
  }
  return v.isComplete() ? null : "end";
}

/** The same, with a separate Uint8Array (own buffer, offset 0) per byte. */
function failIndexSeparateArrays(bytes: Uint8Array): Failure {
  const v = new Utf8Validator();
  for (let i = 0; i < bytes.length; i++) {
    if (!v.update(Uint8Array.of(bytes[i]!))) return i;
  }
  return v.isComplete() ? null : "end";
}

/** Reference: the WHATWG decoder, fatal and streaming, which also fails at the first bad byte. */
function failIndexTextDecoder(bytes: Uint8Array): Failure {
  const d = new TextDecoder("utf-8", { fatal: true });
  for (let i = 0; i < bytes.length; i++) {
    try {
      d.decode(bytes.subarray(i, i + 1), { stream: true });
    } catch {
      return i;
    }
  }
  try {
    d.decode();
  } catch {
    return "end";
  }
  return null;
}

function textDecoderAccepts(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function streamWithSplits(bytes: Uint8Array, cuts: readonly number[]): boolean {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const v = new Utf8Validator();
  let from = 0;
  let ok = true;
  for (const to of [...points, bytes.length]) {
    // Alternate between a range over the shared buffer and a copied chunk.
    const step = to % 2 === 0 ? v.update(bytes, from, to) : v.update(bytes.slice(from, to));
    ok &&= step;
    from = to;
  }
  return ok && v.isComplete();
}

interface Case {
  readonly id: string;
  readonly what: string;
  readonly bytes: Uint8Array;
  /** Index of the first byte that makes the prefix impossible; "end": truncated; null: valid. */
  readonly fail: Failure;
}

const c = (id: string, what: string, bytes: string | Uint8Array, fail: Failure): Case => ({
  id,
  what,
  bytes: typeof bytes === "string" ? hex(bytes) : bytes,
  fail,
});

const KOSME = "ce ba e1 bd b9 cf 83 ce bc ce b5"; // "κόσμε"

/** Case groups after the Autobahn TestSuite's group 6 (itself after Markus Kuhn's stress test). */
const CASES: readonly Case[] = [
  c("6.1.1", "empty payload", "", null),
  c(
    "6.2.1",
    "Hello-µ@ßöäüàá-UTF-8!!",
    utf8("Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!"),
    null,
  ),
  c("6.3.1", "κόσμε", KOSME, null),
  c(
    "6.3.2",
    "κόσμε, then a surrogate ED A0 80, then -edited",
    `${KOSME} ed a0 80 2d 65 64 69 74 65 64`,
    12,
  ),
  c(
    "6.4.1",
    "κόσμε, then F4 90 80 80 (U+110000), then -edited",
    `${KOSME} f4 90 80 80 2d 65 64 69 74 65 64`,
    12,
  ),
  c("6.4.2", "κόσμε, then F4 then -edited", `${KOSME} f4 2d 65 64 69 74 65 64`, 12),
  c("6.5.1", "κόσμε as a whole", KOSME, null),
  c("6.5.2", "Greek, emoji, CJK, ASCII mixed", utf8("Τη γλώσσα μου 😀 我能吞下玻璃 ok"), null),
  c("6.5.3", "a NUL byte is valid", "41 00 42", null),

  // 6.6: every prefix of κόσμε; a prefix that stops inside a character is truncated.
  c("6.6.1", "ce", "ce", "end"),
  c("6.6.2", "ce ba", "ce ba", null),
  c("6.6.3", "ce ba e1", "ce ba e1", "end"),
  c("6.6.4", "ce ba e1 bd", "ce ba e1 bd", "end"),
  c("6.6.5", "ce ba e1 bd b9", "ce ba e1 bd b9", null),
  c("6.6.6", "... cf", "ce ba e1 bd b9 cf", "end"),
  c("6.6.7", "... cf 83", "ce ba e1 bd b9 cf 83", null),
  c("6.6.8", "... ce", "ce ba e1 bd b9 cf 83 ce", "end"),
  c("6.6.9", "... ce bc", "ce ba e1 bd b9 cf 83 ce bc", null),
  c("6.6.10", "... ce", "ce ba e1 bd b9 cf 83 ce bc ce", "end"),
  c("6.6.11", "... ce b5", KOSME, null),

  // 6.7: first possible sequence of each length.
  c("6.7.1", "U+0000", "00", null),
  c("6.7.2", "U+0080", "c2 80", null),
  c("6.7.3", "U+0800", "e0 a0 80", null),
  c("6.7.4", "U+10000", "f0 90 80 80", null),

  // 6.8: first possible sequence of 5 and 6 bytes (outside RFC 3629).
  c("6.8.1", "5 bytes (U+200000)", "f8 88 80 80 80", 0),
  c("6.8.2", "6 bytes (U+4000000)", "fc 84 80 80 80 80", 0),

  // 6.9: last possible sequence of each length.
  c("6.9.1", "U+007F", "7f", null),
  c("6.9.2", "U+07FF", "df bf", null),
  c("6.9.3", "U+FFFF", "ef bf bf", null),
  c("6.9.4", "U+10FFFF", "f4 8f bf bf", null),

  // 6.10: last possible 4-, 5- and 6-byte patterns.
  c("6.10.1", "F7 BF BF BF (U+1FFFFF)", "f7 bf bf bf", 0),
  c("6.10.2", "5 bytes (U+3FFFFFF)", "fb bf bf bf bf", 0),
  c("6.10.3", "6 bytes (U+7FFFFFFF)", "fd bf bf bf bf bf", 0),

  // 6.11: other boundary conditions.
  c("6.11.1", "U+D7FF", "ed 9f bf", null),
  c("6.11.2", "U+E000", "ee 80 80", null),
  c("6.11.3", "U+FFFD", "ef bf bd", null),
  c("6.11.4", "U+10FFFF", "f4 8f bf bf", null),
  c("6.11.5", "U+110000", "f4 90 80 80", 1),

  // 6.12: unexpected continuation bytes.
  c("6.12.1", "first continuation byte 80", "80", 0),
  c("6.12.2", "last continuation byte BF", "bf", 0),
  c("6.12.3", "2 continuation bytes", "80 bf", 0),
  c("6.12.4", "3 continuation bytes", "80 bf 80", 0),
  c("6.12.5", "4 continuation bytes", "80 bf 80 bf", 0),
  c("6.12.6", "5 continuation bytes", "80 bf 80 bf 80", 0),
  c("6.12.7", "6 continuation bytes", "80 bf 80 bf 80 bf", 0),
  c("6.12.8", "7 continuation bytes", "80 bf 80 bf 80 bf 80", 0),
  c(
    "6.12.9",
    "all 64 continuation bytes",
    Uint8Array.from({ length: 64 }, (_, i) => 0x80 + i),
    0,
  ),
  c("6.12.10", "continuation byte after ASCII", "41 42 43 80", 3),
  c("6.12.11", "one continuation byte too many", "c2 80 80", 2),
  c("6.12.12", "extra continuation after 3 bytes", "e2 82 ac bf", 3),
  c("6.12.13", "extra continuation after 4 bytes", "f0 9f 98 80 80", 4),

  // 6.13: lonely start characters, each followed by a space.
  c(
    "6.13.1",
    "C0..DF each followed by a space",
    Uint8Array.from({ length: 64 }, (_, i) => (i % 2 === 0 ? 0xc0 + i / 2 : 0x20)),
    0,
  ),
  c("6.13.2", "C2 followed by a space", "c2 20", 1),
  c(
    "6.13.3",
    "E0..EF each followed by a space",
    Uint8Array.from({ length: 32 }, (_, i) => (i % 2 === 0 ? 0xe0 + i / 2 : 0x20)),
    1,
  ),
  c(
    "6.13.4",
    "F0..F7 each followed by a space",
    Uint8Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? 0xf0 + i / 2 : 0x20)),
    1,
  ),
  c("6.13.5", "F8..FB each followed by a space", "f8 20 f9 20 fa 20 fb 20", 0),
  c("6.13.6", "FC, FD each followed by a space", "fc 20 fd 20", 0),
  c("6.13.7", "E1 80 followed by a space", "e1 80 20", 2),
  c("6.13.8", "F1 80 80 followed by a space", "f1 80 80 20", 3),

  // 6.14: sequences with the last continuation byte missing.
  c("6.14.1", "2 bytes, U+0000 overlong, truncated", "c0", 0),
  c("6.14.2", "3 bytes, U+0000 overlong, truncated", "e0 80", 1),
  c("6.14.3", "4 bytes, U+0000 overlong, truncated", "f0 80 80", 1),
  c("6.14.4", "5 bytes, truncated", "f8 80 80 80", 0),
  c("6.14.5", "6 bytes, truncated", "fc 80 80 80 80", 0),
  c("6.14.6", "U+07FF, truncated", "df", "end"),
  c("6.14.7", "U+FFFF, truncated", "ef bf", "end"),
  c("6.14.8", "U+1FFFFF, truncated", "f7 bf bf", 0),
  c("6.14.9", "5 bytes U+3FFFFFF, truncated", "fb bf bf bf", 0),
  c("6.14.10", "6 bytes U+7FFFFFFF, truncated", "fd bf bf bf bf", 0),
  c("6.14.11", "U+10FFFF, truncated", "f4 8f bf", "end"),
  c("6.14.12", "U+10000, truncated after 1 byte", "f0", "end"),
  c("6.14.13", "U+10000, truncated after 2 bytes", "f0 90", "end"),

  // 6.15: concatenation of incomplete sequences.
  c(
    "6.15.1",
    "all 6.14 sequences concatenated",
    "c0 e0 80 f0 80 80 f8 80 80 80 fc 80 80 80 80 df ef bf f7 bf bf fb bf bf bf fd bf bf bf bf",
    0,
  ),
  c("6.15.2", "valid-lead incomplete sequences concatenated", "df ef bf f4 8f bf", 1),
  c("6.15.3", "truncated 3-byte then ASCII", "e2 82 41", 2),

  // 6.16: impossible bytes.
  c("6.16.1", "FE", "fe", 0),
  c("6.16.2", "FF", "ff", 0),
  c("6.16.3", "FE FE FF FF", "fe fe ff ff", 0),
  c("6.16.4", "F5 (first byte above F4)", "f5 80 80 80", 0),
  c("6.16.5", "impossible byte after valid text", "41 ce ba ff", 3),

  // 6.17: overlong ASCII "/" (U+002F).
  c("6.17.1", "C0 AF", "c0 af", 0),
  c("6.17.2", "E0 80 AF", "e0 80 af", 1),
  c("6.17.3", "F0 80 80 AF", "f0 80 80 af", 1),
  c("6.17.4", "F8 80 80 80 AF", "f8 80 80 80 af", 0),
  c("6.17.5", "FC 80 80 80 80 AF", "fc 80 80 80 80 af", 0),

  // 6.18: maximum overlong sequences.
  c("6.18.1", "U+007F as C1 BF", "c1 bf", 0),
  c("6.18.2", "U+07FF as E0 9F BF", "e0 9f bf", 1),
  c("6.18.3", "U+FFFF as F0 8F BF BF", "f0 8f bf bf", 1),
  c("6.18.4", "U+1FFFFF as 5 bytes", "f8 87 bf bf bf", 0),
  c("6.18.5", "U+3FFFFFF as 6 bytes", "fc 83 bf bf bf bf", 0),

  // 6.19: overlong NUL.
  c("6.19.1", "C0 80", "c0 80", 0),
  c("6.19.2", "E0 80 80", "e0 80 80", 1),
  c("6.19.3", "F0 80 80 80", "f0 80 80 80", 1),
  c("6.19.4", "F8 80 80 80 80", "f8 80 80 80 80", 0),
  c("6.19.5", "FC 80 80 80 80 80", "fc 80 80 80 80 80", 0),

  // 6.20: single UTF-16 surrogates.
  c("6.20.1", "U+D800", "ed a0 80", 1),
  c("6.20.2", "U+DB7F", "ed ad bf", 1),
  c("6.20.3", "U+DB80", "ed ae 80", 1),
  c("6.20.4", "U+DBFF", "ed af bf", 1),
  c("6.20.5", "U+DC00", "ed b0 80", 1),
  c("6.20.6", "U+DF80", "ed be 80", 1),
  c("6.20.7", "U+DFFF", "ed bf bf", 1),
  c("6.20.8", "U+D800 after valid text", "41 ed a0 80", 2),

  // 6.21: paired UTF-16 surrogates (CESU-8), still invalid UTF-8.
  c("6.21.1", "U+D800 U+DC00", "ed a0 80 ed b0 80", 1),
  c("6.21.2", "U+D800 U+DFFF", "ed a0 80 ed bf bf", 1),
  c("6.21.3", "U+DB7F U+DC00", "ed ad bf ed b0 80", 1),
  c("6.21.4", "U+DB7F U+DFFF", "ed ad bf ed bf bf", 1),
  c("6.21.5", "U+DB80 U+DC00", "ed ae 80 ed b0 80", 1),
  c("6.21.6", "U+DB80 U+DFFF", "ed ae 80 ed bf bf", 1),
  c("6.21.7", "U+DBFF U+DC00", "ed af bf ed b0 80", 1),
  c("6.21.8", "U+DBFF U+DFFF", "ed af bf ed bf bf", 1),

  // 6.22: noncharacters are valid UTF-8 (see also the generated cases below).
  c("6.22.1", "U+FFFE", "ef bf be", null),
  c("6.22.2", "U+FFFF", "ef bf bf", null),
  c("6.22.3", "U+FDD0", "ef b7 90", null),
  c("6.22.4", "U+FDEF", "ef b7 af", null),
  c("6.22.5", "U+10FFFE", "f4 8f bf be", null),

  // 6.23: U+FFFD and friends.
  c("6.23.1", "U+FFFD", "ef bf bd", null),
  c("6.23.2", "U+FFFD twice", "ef bf bd ef bf bd", null),
  c("6.23.3", "U+FFFD between ASCII", "61 ef bf bd 62", null),
  c("6.23.4", "U+FFFD, then truncated U+FFFD", "ef bf bd ef bf", "end"),

  // Second-byte boundaries of Table 3-7, one step inside and one outside.
  c("t3-7.1", "E0 A0 (lowest second byte after E0)", "e0 a0 80", null),
  c("t3-7.2", "E0 9F", "e0 9f 80", 1),
  c("t3-7.3", "E1 80", "e1 80 80", null),
  c("t3-7.4", "E1 7F", "e1 7f 80", 1),
  c("t3-7.5", "EC BF BF (U+CFFF)", "ec bf bf", null),
  c("t3-7.6", "EC C0", "ec c0 80", 1),
  c("t3-7.7", "ED 80 80 (U+D000)", "ed 80 80", null),
  c("t3-7.8", "ED 7F", "ed 7f 80", 1),
  c("t3-7.9", "EE 80 80 (U+E000)", "ee 80 80", null),
  c("t3-7.10", "EF C0", "ef c0 80", 1),
  c("t3-7.11", "F0 90 (lowest second byte after F0)", "f0 90 80 80", null),
  c("t3-7.12", "F0 8F", "f0 8f 80 80", 1),
  c("t3-7.13", "F0 BF BF BF (U+3FFFF)", "f0 bf bf bf", null),
  c("t3-7.14", "F0 C0", "f0 c0 80 80", 1),
  c("t3-7.15", "F1 80 80 80 (U+40000)", "f1 80 80 80", null),
  c("t3-7.16", "F3 BF BF BF (U+FFFFF)", "f3 bf bf bf", null),
  c("t3-7.17", "F3 7F", "f3 7f 80 80", 1),
  c("t3-7.18", "F4 80 80 80 (U+100000)", "f4 80 80 80", null),
  c("t3-7.19", "F4 7F", "f4 7f 80 80", 1),
  c("t3-7.20", "F4 8F BF C0 (bad 4th byte)", "f4 8f bf c0", 3),
  c("t3-7.21", "F1 80 C0 (bad 3rd byte)", "f1 80 c0 80", 2),
  c("t3-7.22", "E1 80 C0 (bad 3rd byte)", "e1 80 c0", 2),
  c("t3-7.23", "C2 C0 (bad 2nd byte)", "c2 c0", 1),
  c("t3-7.24", "C2 7F (ASCII where a continuation is due)", "c2 7f", 1),
  c("t3-7.25", "DF C2 (lead where a continuation is due)", "df c2 80", 1),
];

describe("Utf8Validator: Autobahn-style case table (fail-fast index)", () => {
  for (const k of CASES) {
    const label = `${k.id} ${k.what} → ${k.fail === null ? "valid" : `fails at ${k.fail}`}`;
    it(label, () => {
      assert.equal(failIndexByteByByte(k.bytes), k.fail, "byte by byte (shared buffer)");
      assert.equal(failIndexSeparateArrays(k.bytes), k.fail, "byte by byte (separate arrays)");
      assert.equal(failIndexTextDecoder(k.bytes), k.fail, "table disagrees with TextDecoder");

      assert.equal(isValidUtf8(k.bytes), k.fail === null, "isValidUtf8");
      const whole = new Utf8Validator();
      assert.equal(whole.update(k.bytes), k.fail === null || k.fail === "end", "one update()");
      assert.equal(whole.isComplete(), k.fail === null, "isComplete() after one update()");

      // The same bytes inside a larger buffer, addressed by range.
      const padded = concat(hex("ff 80"), k.bytes, hex("c0 ff"));
      assert.equal(isValidUtf8(padded, 2, 2 + k.bytes.length), k.fail === null, "range");
      // After a long ASCII run (exercises the 8-byte probe), the index shifts by the run.
      const run = utf8("x".repeat(37));
      const shifted = failIndexByteByByte(concat(run, k.bytes));
      assert.equal(shifted, typeof k.fail === "number" ? k.fail + run.length : k.fail);
      assert.equal(isValidUtf8(concat(run, k.bytes, run)), k.fail === null);
    });
  }
});

describe("Utf8Validator: generated boundary cases", () => {
  it("all 66 noncharacters (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF) are valid", () => {
    const cps: number[] = [];
    for (let cp = 0xfdd0; cp <= 0xfdef; cp++) cps.push(cp);
    for (let plane = 0; plane <= 0x10; plane++)
      cps.push(plane * 0x10000 + 0xfffe, plane * 0x10000 + 0xffff);
    assert.equal(cps.length, 66);
    for (const cp of cps) {
      const b = utf8(String.fromCodePoint(cp));
      assert.equal(isValidUtf8(b), true, cp.toString(16));
      assert.equal(failIndexByteByByte(b), null, cp.toString(16));
    }
  });

  it("every single byte: 00..7F valid, 80..C1 and F5..FF fail at once, C2..F4 wait for more", () => {
    for (let b = 0; b < 256; b++) {
      const expected: Failure = b < 0x80 ? null : b < 0xc2 || b > 0xf4 ? 0 : "end";
      assert.equal(failIndexByteByByte(Uint8Array.of(b)), expected, b.toString(16));
      assert.equal(isValidUtf8(Uint8Array.of(b)), b < 0x80);
    }
  });

  it("every lead byte C2..F4 against every second byte matches Table 3-7", () => {
    for (let lead = 0xc2; lead <= 0xf4; lead++) {
      const lo = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
      const hi = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
      const len = lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
      for (let second = 0; second < 256; second++) {
        const bytes = concat(Uint8Array.of(lead, second), new Uint8Array(len - 2).fill(0x80));
        const inRange = second >= lo && second <= hi;
        assert.equal(failIndexByteByByte(bytes), inRange ? null : 1, `${lead} ${second}`);
        assert.equal(isValidUtf8(bytes), inRange);
      }
    }
  });

  it("every BMP code point and every 64th supplementary one round-trips through TextEncoder", () => {
    for (let cp = 0; cp <= 0x10ffff; cp += cp < 0x10000 ? 1 : 64) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const b = utf8(String.fromCodePoint(cp));
      if (!isValidUtf8(b)) assert.fail(`U+${cp.toString(16)} rejected`);
    }
  });

  it("an invalid byte at every position of an ASCII run is found at that position", () => {
    for (const bad of [0x80, 0xbf, 0xc0, 0xff]) {
      for (let len = 1; len <= 40; len++) {
        for (let pos = 0; pos < len; pos++) {
          const bytes = utf8("a".repeat(len));
          bytes[pos] = bad;
          assert.equal(isValidUtf8(bytes), false, `${bad} at ${pos}/${len}`);
          assert.equal(failIndexByteByByte(bytes), pos);
          const v = new Utf8Validator();
          assert.equal(v.update(bytes, 0, pos), true);
          assert.equal(v.update(bytes, pos), false);
        }
      }
    }
  });

  it("a lead byte at the end of an ASCII run of any length is incomplete, not invalid", () => {
    for (let len = 0; len <= 40; len++) {
      const bytes = concat(utf8("a".repeat(len)), hex("e2 82"));
      const v = new Utf8Validator();
      assert.equal(v.update(bytes), true);
      assert.equal(v.isComplete(), false);
      assert.equal(v.update(hex("ac")), true);
      assert.equal(v.isComplete(), true);
      assert.equal(isValidUtf8(bytes), false);
    }
  });
});

describe("Utf8Validator: call boundaries", () => {
  it("a 4-byte sequence split 1+1+1+1 over four calls", () => {
    const v = new Utf8Validator();
    for (const b of hex("f0 9f 98 80")) {
      assert.equal(v.update(Uint8Array.of(b)), true);
    }
    assert.equal(v.isComplete(), true);
  });

  it("F4 then 90 in the next call fails on that second call", () => {
    const v = new Utf8Validator();
    assert.equal(v.update(hex("41 f4")), true);
    assert.equal(v.isComplete(), false);
    assert.equal(v.update(hex("90 80 80")), false);
  });

  it("ED then A0 in the next call fails; ED then 9F passes", () => {
    const bad = new Utf8Validator();
    assert.equal(bad.update(hex("ed")), true);
    assert.equal(bad.update(hex("a0")), false);
    const good = new Utf8Validator();
    assert.equal(good.update(hex("ed")), true);
    assert.equal(good.update(hex("9f")), true);
    assert.equal(good.update(hex("bf")), true);
    assert.equal(good.isComplete(), true);
  });

  it("E0 then 80 and F0 then 8F in the next call fail (overlongs)", () => {
    for (const [a, b] of [
      ["e0", "80"],
      ["f0", "8f"],
      ["e0 a0", "c0"],
      ["f1 80 80", "41"],
    ] as const) {
      const v = new Utf8Validator();
      assert.equal(v.update(hex(a)), true, a);
      assert.equal(v.update(hex(b)), false, `${a} | ${b}`);
    }
  });

  it("empty updates change nothing", () => {
    const v = new Utf8Validator();
    assert.equal(v.update(new Uint8Array(0)), true);
    assert.equal(v.update(hex("e2")), true);
    assert.equal(v.update(new Uint8Array(0)), true);
    assert.equal(v.update(hex("82 ac"), 1, 1), true);
    assert.equal(v.isComplete(), false);
    assert.equal(v.update(hex("82 ac")), true);
    assert.equal(v.isComplete(), true);
  });

  it("stays false until reset(), then validates afresh", () => {
    const v = new Utf8Validator();
    assert.equal(v.update(hex("c0")), false);
    assert.equal(v.update(hex("41")), false);
    assert.equal(v.isComplete(), false);
    v.reset();
    assert.equal(v.isComplete(), true);
    assert.equal(v.update(hex("41")), true);
    // reset() also drops a pending partial sequence.
    assert.equal(v.update(hex("f0")), true);
    v.reset();
    assert.equal(v.update(hex("41")), true);
    assert.equal(v.isComplete(), true);
  });

  it("respects start and end", () => {
    const bytes = hex("ff 41 ce ba ff");
    assert.equal(isValidUtf8(bytes, 1, 4), true);
    assert.equal(isValidUtf8(bytes, 1, 3), false);
    assert.equal(isValidUtf8(bytes, 1), false);
    assert.equal(isValidUtf8(bytes, 5), true);
    const v = new Utf8Validator();
    assert.equal(v.update(bytes, 1, 3), true);
    assert.equal(v.update(bytes, 3, 4), true);
    assert.equal(v.isComplete(), true);
  });

  it("works on a subarray with a non-zero byteOffset", () => {
    const backing = concat(hex("ff ff ff"), utf8("héllo wörld ".repeat(4)), hex("ff"));
    const view = backing.subarray(3, backing.length - 1);
    assert.equal(isValidUtf8(view), true);
    assert.equal(new Utf8Validator().update(view), true);
  });

  it("rejects invalid ranges with StateError(WS_ERR_INVALID_ARGUMENT)", () => {
    const bytes = hex("41 42 43");
    const bad: [number, number][] = [
      [-1, 2],
      [2, 1],
      [0, 4],
      [0.5, 2],
      [0, Number.NaN],
      [Number.NaN, 3],
    ];
    for (const [start, end] of bad) {
      const isArgError = (e: unknown) =>
        e instanceof StateError && e.code === "WS_ERR_INVALID_ARGUMENT";
      assert.throws(() => isValidUtf8(bytes, start, end), isArgError, `${start}, ${end}`);
      assert.throws(() => new Utf8Validator().update(bytes, start, end), isArgError);
    }
  });
});

/** Byte arrays biased towards the interesting parts of UTF-8. */
const interestingByte = fc.constantFrom(
  0x00,
  0x41,
  0x7f,
  0x80,
  0x8f,
  0x90,
  0x9f,
  0xa0,
  0xbf,
  0xc0,
  0xc1,
  0xc2,
  0xdf,
  0xe0,
  0xe1,
  0xec,
  0xed,
  0xee,
  0xef,
  0xf0,
  0xf1,
  0xf3,
  0xf4,
  0xf5,
  0xf8,
  0xfc,
  0xfe,
  0xff,
);
const validChunk = fc.string({ unit: "binary", maxLength: 6 }).map(utf8);
const mostlyValidBytes = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: validChunk },
      { weight: 1, arbitrary: interestingByte.map((b) => Uint8Array.of(b)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 3 }) },
    ),
    { maxLength: 24 },
  )
  .map((parts) => concat(...parts));
const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.array(interestingByte, { maxLength: 12 }).map((a) => Uint8Array.from(a)),
  mostlyValidBytes,
);
const cuts = fc.array(fc.nat(), { maxLength: 8 });

/** Strings with lone surrogates mixed in. */
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((u) => String.fromCharCode(u));
const anyUtf16 = fc.string({
  unit: fc.oneof(
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
    loneSurrogate,
    fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }),
  ),
  maxLength: 40,
});

describe("Utf8Validator: properties", () => {
  it("(a) isValidUtf8 agrees with a fatal TextDecoder on random bytes", () => {
    fc.assert(
      fc.property(anyBytes, (bytes) => isValidUtf8(bytes) === textDecoderAccepts(bytes)),
      { numRuns: 5000 },
    );
  });

  it("(b) any valid string, split anywhere, is accepted by the streaming validator", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 64 }), cuts, (s, cs) =>
        streamWithSplits(utf8(s), cs),
      ),
      { numRuns: 3000 },
    );
  });

  it("(c) on random bytes, the streaming result under any split equals the whole result", () => {
    fc.assert(
      fc.property(
        anyBytes,
        cuts,
        (bytes, cs) => streamWithSplits(bytes, cs) === isValidUtf8(bytes),
      ),
      { numRuns: 5000 },
    );
  });

  it("(c') the call that first returns false is the one holding the first impossible byte", () => {
    fc.assert(
      fc.property(anyBytes, cuts, (bytes, cs) => {
        const failAt = failIndexByteByByte(bytes);
        const points = [...new Set(cs.map((x) => x % (bytes.length + 1)))].sort((a, b) => a - b);
        const v = new Utf8Validator();
        let from = 0;
        for (const to of [...points, bytes.length]) {
          const ok = v.update(bytes, from, to);
          const holdsFailure = typeof failAt === "number" && failAt >= from && failAt < to;
          if (ok === holdsFailure) return false;
          if (!ok) return true;
          from = to;
        }
        return v.isComplete() === (failAt === null);
      }),
      { numRuns: 5000 },
    );
  });

  it("(d) utf8ByteLength equals TextEncoder's length, lone surrogates included", () => {
    const enc = new TextEncoder();
    fc.assert(
      fc.property(anyUtf16, (s) => utf8ByteLength(s) === enc.encode(s).length),
      { numRuns: 5000 },
    );
  });

  it("(e) byte-by-byte failure index equals the streaming WHATWG decoder's", () => {
    fc.assert(
      fc.property(anyBytes, (bytes) => failIndexByteByByte(bytes) === failIndexTextDecoder(bytes)),
      { numRuns: 3000 },
    );
  });
});

describe("utf8ByteLength", () => {
  it("counts each form", () => {
    assert.equal(utf8ByteLength(""), 0);
    assert.equal(utf8ByteLength("abc"), 3);
    assert.equal(utf8ByteLength("\u007f\u0080"), 3);
    assert.equal(utf8ByteLength("\u07ff\u0800"), 5);
    assert.equal(utf8ByteLength("\uffff"), 3);
    assert.equal(utf8ByteLength("😀"), 4);
    assert.equal(utf8ByteLength("\u03ba\u1f79\u03c3\u03bc\u03b5"), 11, "κόσμε with U+1F79");
    assert.equal(utf8ByteLength("\ud800"), 3, "lone high surrogate → U+FFFD");
    assert.equal(utf8ByteLength("\udc00"), 3, "lone low surrogate → U+FFFD");
    assert.equal(utf8ByteLength("\udc00\ud800"), 6, "reversed pair is two lone surrogates");
    assert.equal(utf8ByteLength("\ud83d\ud83d\ude00"), 7, "lone high, then a pair");
    assert.equal(utf8ByteLength("a\ud83d"), 4, "high surrogate at the end");
  });
});

describe("Utf8Validator with a fast whole-buffer validator", () => {
  const fast = (b: Uint8Array): boolean => isUtf8(b);
  // Valid text with multi-byte characters, and the same with one byte replaced at random.
  const text = fc
    .string({ unit: "grapheme", minLength: 0, maxLength: 600 })
    .map((s) => new TextEncoder().encode(s));
  const mutated = fc.tuple(text, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([b, at, v]) => {
    const copy = b.slice();
    if (copy.length > 0) copy[at % copy.length] = v;
    return copy;
  });
  const splits = fc.array(fc.nat(700), { maxLength: 6 });

  it("gives the same result, call by call, as the byte-level validator for any split", () => {
    fc.assert(
      fc.property(fc.oneof(text, mutated), splits, (bytes, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const plain = new Utf8Validator();
        const withFast = new Utf8Validator(fast);
        let at = 0;
        for (const p of [...points, bytes.length]) {
          assert.equal(
            withFast.update(bytes, at, p),
            plain.update(bytes, at, p),
            `piece [${at}, ${p})`,
          );
          at = p;
        }
        assert.equal(withFast.isComplete(), plain.isComplete());
      }),
      { numRuns: 400 },
    );
  });

  it("fails within the long piece that holds the invalid byte", () => {
    const v = new Utf8Validator(fast);
    const good = new TextEncoder().encode("κόσμε ".repeat(100));
    assert.equal(v.update(good), true);
    const bad = good.slice();
    bad[300] = 0xff;
    assert.equal(v.update(bad), false);
    assert.equal(v.update(good), false, "stays failed");
  });
});
