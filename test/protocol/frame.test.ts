import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeFrame, encodeFrameParts, headerSize, Opcode } from "../../src/protocol/frame.js";
import { concat, hex, toHex } from "./helpers.js";

const hello = new TextEncoder().encode("Hello");

describe("RFC 6455 §5.2 frame writer", () => {
  it("§5.7 single-frame unmasked text", () => {
    assert.equal(
      toHex(encodeFrame({ opcode: Opcode.TEXT, payload: hello })),
      "81 05 48 65 6c 6c 6f",
    );
  });

  it("§5.7 single-frame masked text", () => {
    const f = encodeFrame({ opcode: Opcode.TEXT, payload: hello, mask: hex("37 fa 21 3d") });
    assert.equal(toHex(f), "81 85 37 fa 21 3d 7f 9f 4d 51 58");
    assert.equal(new TextDecoder().decode(hello), "Hello", "payload not modified");
  });

  it("§5.7 fragmented unmasked text", () => {
    const a = encodeFrame({ opcode: Opcode.TEXT, payload: hello.subarray(0, 3), fin: false });
    const b = encodeFrame({ opcode: Opcode.CONTINUATION, payload: hello.subarray(3) });
    assert.equal(toHex(a), "01 03 48 65 6c");
    assert.equal(toHex(b), "80 02 6c 6f");
  });

  it("§5.7 unmasked ping and masked pong", () => {
    assert.equal(
      toHex(encodeFrame({ opcode: Opcode.PING, payload: hello })),
      "89 05 48 65 6c 6c 6f",
    );
    assert.equal(
      toHex(encodeFrame({ opcode: Opcode.PONG, payload: hello, mask: hex("37 fa 21 3d") })),
      "8a 85 37 fa 21 3d 7f 9f 4d 51 58",
    );
  });

  it("§5.7 256 bytes binary uses the 16-bit length", () => {
    const f = encodeFrame({ opcode: Opcode.BINARY, payload: new Uint8Array(256) });
    assert.equal(toHex(f.subarray(0, 4)), "82 7e 01 00");
    assert.equal(f.length, 260);
  });

  it("§5.7 64 KiB binary uses the 64-bit length", () => {
    const f = encodeFrame({ opcode: Opcode.BINARY, payload: new Uint8Array(65536) });
    assert.equal(toHex(f.subarray(0, 10)), "82 7f 00 00 00 00 00 01 00 00");
  });

  it("length encoding boundaries 125/126/65535/65536 (§5.2)", () => {
    assert.equal(headerSize(125, false), 2);
    assert.equal(headerSize(126, false), 4);
    assert.equal(headerSize(65535, false), 4);
    assert.equal(headerSize(65536, false), 10);
    assert.equal(headerSize(125, true), 6);
    assert.equal(
      toHex(encodeFrame({ opcode: 2, payload: new Uint8Array(125) }).subarray(0, 2)),
      "82 7d",
    );
    assert.equal(
      toHex(encodeFrame({ opcode: 2, payload: new Uint8Array(126) }).subarray(0, 4)),
      "82 7e 00 7e",
    );
    assert.equal(
      toHex(encodeFrame({ opcode: 2, payload: new Uint8Array(65535) }).subarray(0, 4)),
      "82 7e ff ff",
    );
  });

  it("RSV1 and FIN bits (RFC 7692 §6)", () => {
    assert.equal(
      toHex(encodeFrame({ opcode: 1, payload: new Uint8Array(0), rsv1: true }).subarray(0, 1)),
      "c1",
    );
    assert.equal(
      toHex(
        encodeFrame({ opcode: 1, payload: new Uint8Array(0), fin: false, rsv1: true }).subarray(
          0,
          1,
        ),
      ),
      "41",
    );
  });

  it("encodeFrameParts does not copy large unmasked payloads and equals encodeFrame", () => {
    const payload = new Uint8Array(100_000).fill(3);
    const parts = encodeFrameParts({ opcode: 2, payload });
    assert.equal(parts.length, 2);
    assert.equal(parts[1], payload);
    assert.deepEqual(concat(parts), encodeFrame({ opcode: 2, payload }));
    assert.equal(encodeFrameParts({ opcode: 2, payload: new Uint8Array(10) }).length, 1);
  });
});
