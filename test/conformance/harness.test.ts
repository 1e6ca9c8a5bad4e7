/**
 * Tests of the conformance harness itself: the case list has Autobahn's shape, the UTF-8 table
 * agrees with a strict decoder, the raw frame codec round-trips under any chunking, the
 * fuzzer's decompressor rejects streams that break the negotiated window or context takeover,
 * and the verdict rules behave as documented.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as zlib from "node:zlib";
import { buildCases } from "./cases.js";
import {
  acceptOffers,
  Compressor,
  checkResponse,
  DEFAULT_OFFER,
  Decompressor,
  offerExtension,
  parseExtensions,
} from "./deflate.js";
import { compareIds, deflateCount, FULL, finalVerdict, groupOf, QUICK } from "./model.js";
import { testDocuments } from "./testdata.js";
import { UTF8_GROUPS } from "./utf8-table.js";
import { encodeFrame, FrameReader, hex, OP } from "./wire.js";

describe("case list", () => {
  const cases = buildCases(FULL);

  it("has Autobahn's case counts per group (plus 4 marked extras in group 7)", () => {
    const counts: Record<string, number> = {};
    for (const c of cases) counts[groupOf(c.id)] = (counts[groupOf(c.id)] ?? 0) + 1;
    assert.deepEqual(counts, {
      "1": 16,
      "2": 11,
      "3": 7,
      "4": 10,
      "5": 20,
      "6": 145,
      "7": 41,
      "9": 54,
      "10": 1,
      "12": 90,
      "13": 126,
    });
    assert.deepEqual(
      cases.filter((c) => c.extra).map((c) => c.id),
      ["7.7.14", "7.7.15", "7.7.16", "7.9.10"],
    );
  });

  it("ids are unique and in Autobahn order", () => {
    const ids = cases.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(compareIds), ids);
    assert.ok(ids.includes("6.23.7") && ids.includes("13.7.18") && ids.includes("9.8.6"));
  });

  it("the quick profile has the same cases", () => {
    assert.deepEqual(
      buildCases(QUICK).map((c) => c.id),
      cases.map((c) => c.id),
    );
  });

  it("12.x/13.x message counts follow the profile's byte budget", () => {
    assert.equal(deflateCount(FULL, 16), 1000);
    assert.equal(deflateCount(FULL, 131072), 32);
    assert.equal(deflateCount(QUICK, 131072), 2);
    assert.equal(deflateCount({ ...FULL, deflateBytes: Number.POSITIVE_INFINITY }, 131072), 1000);
  });
});

describe("UTF-8 table (6.5-6.23)", () => {
  const strict = new TextDecoder("utf-8", { fatal: true });
  const decodes = (bytes: Buffer): boolean => {
    try {
      strict.decode(bytes);
      return true;
    } catch {
      return false;
    }
  };

  it("has Autobahn's 19 subgroups and 132 sequences", () => {
    assert.equal(UTF8_GROUPS.length, 19);
    assert.deepEqual(
      UTF8_GROUPS.map((g) => g.sequences.length),
      [5, 11, 4, 2, 4, 3, 5, 8, 5, 10, 1, 3, 5, 5, 5, 7, 8, 34, 7],
    );
  });

  it("every sequence's validity agrees with a strict decoder", () => {
    for (const group of UTF8_GROUPS) {
      for (const seq of group.sequences) {
        assert.equal(decodes(hex(seq.hex)), seq.valid, `${group.title}: ${seq.hex}`);
      }
    }
  });

  it("69 sequences are invalid", () => {
    assert.equal(UTF8_GROUPS.flatMap((g) => g.sequences).filter((s) => !s.valid).length, 69);
  });
});

describe("raw frames", () => {
  it("round-trip through the reader under any chunking, masked or not", () => {
    const frames = [
      { opcode: OP.TEXT, payload: "hello", fin: false, rsv: 5 },
      { opcode: OP.CONTINUATION, payload: Buffer.alloc(300, 7) },
      { opcode: OP.PING, payload: "" },
      { opcode: OP.BINARY, payload: Buffer.alloc(70_000, 1) },
      { opcode: 0xb, payload: "reserved" },
    ];
    for (const masked of [false, true]) {
      const wire = Buffer.concat(frames.map((f) => encodeFrame(f, masked)));
      for (const step of [1, 3, 7, 1000, wire.length]) {
        const reader = new FrameReader();
        const got = [];
        for (let at = 0; at < wire.length; at += step) {
          const out = reader.push(wire.subarray(at, at + step));
          assert.ok(Array.isArray(out));
          got.push(...out);
        }
        assert.equal(got.length, frames.length);
        got.forEach((g, i) => {
          const f = frames[i]!;
          assert.equal(g.opcode, f.opcode);
          assert.equal(g.masked, masked);
          assert.equal(g.fin, f.fin ?? true);
          assert.equal(g.rsv, f.rsv ?? 0);
          assert.deepEqual(g.payload, Buffer.from(f.payload));
        });
      }
    }
  });
});

describe("permessage-deflate of the fuzzer", () => {
  const json = testDocuments()[0]!.data;

  it("round-trips with context takeover and with small windows", async () => {
    for (const [bits, nct] of [
      [15, false],
      [9, true],
      [9, false],
    ] as const) {
      const c = new Compressor(bits, nct);
      const d = new Decompressor(bits, nct);
      for (let i = 0; i < 4; i++) {
        const m = json.subarray(i * 5000, i * 5000 + 20_000);
        assert.deepEqual(await d.decompress(await c.compress(m), 1e8), m);
      }
      c.close();
      d.close();
    }
  });

  it("rejects a stream made with a larger window than negotiated", async () => {
    const big = zlib.deflateRawSync(
      Buffer.concat([json.subarray(0, 30_000), json.subarray(0, 30_000)]),
      {
        windowBits: 15,
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
      },
    );
    await assert.rejects(
      new Decompressor(9, false).decompress(big.subarray(0, big.length - 4), 1e8),
    );
  });

  it("rejects a message that refers back into the previous one under no_context_takeover", async () => {
    const c = new Compressor(15, false); // the peer ignores no_context_takeover
    const d = new Decompressor(15, true);
    const m = json.subarray(0, 20_000);
    await d.decompress(await c.compress(m), 1e8);
    await assert.rejects(d.decompress(await c.compress(m), 1e8));
    c.close();
  });

  it("negotiation: answers like Autobahn's accept functions and checks responses", () => {
    const offer = {
      requestNoContextTakeover: true,
      requestMaxWindowBits: 9,
      clientNoContextTakeover: false,
      clientMaxWindowBits: 0,
    };
    const accepted = acceptOffers(
      [offerExtension(offer)],
      [{ requestNoContextTakeover: true, requestMaxWindowBits: 10 }],
    );
    assert.ok(accepted !== null);
    assert.deepEqual(accepted.params, {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 9,
      clientMaxWindowBits: 10,
    });
    const ok = parseExtensions(
      "permessage-deflate; server_no_context_takeover; server_max_window_bits=9",
    )!;
    assert.equal(typeof checkResponse(ok[0]!, [offer]), "object");
    const tooBig = parseExtensions(
      "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
    )!;
    assert.equal(typeof checkResponse(tooBig[0]!, [offer]), "string");
    const ignored = parseExtensions("permessage-deflate; server_max_window_bits=9")!;
    assert.equal(typeof checkResponse(ignored[0]!, [offer]), "string");
    const unknown = parseExtensions("permessage-deflate; foo")!;
    assert.equal(typeof checkResponse(unknown[0]!, [DEFAULT_OFFER]), "string");
  });
});

describe("verdicts", () => {
  it("a failed close judgement fails the case", () => {
    assert.equal(finalVerdict("OK", "OK"), "OK");
    assert.equal(finalVerdict("NON-STRICT", "OK"), "NON-STRICT");
    assert.equal(finalVerdict("OK", "WRONG CODE"), "FAILED");
    assert.equal(finalVerdict("OK", "UNCLEAN"), "FAILED");
    assert.equal(finalVerdict("OK", "FAILED BY CLIENT"), "FAILED");
    assert.equal(finalVerdict("INFORMATIONAL", "INFORMATIONAL"), "INFORMATIONAL");
    assert.equal(finalVerdict("FAILED", "OK"), "FAILED");
  });
});
