import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as zlib from "node:zlib";
import fc from "fast-check";
import { HandshakeError, LimitsError } from "../../src/protocol/errors.js";
import { formatExtensions, parseExtensions } from "../../src/protocol/extension-header.js";
import {
  acceptDeflateOffer,
  type DeflateOptions,
  type DeflateParams,
  deflateOffer,
  validateDeflateResponse,
} from "../../src/protocol/permessage-deflate.js";

/** Parse one header value into its offers (the tests speak in header text). */
const ext = (value: string) => parseExtensions(value);
const one = (value: string) => ext(value)[0]!;

function accept(header: string, opts: DeflateOptions = {}) {
  const result = acceptDeflateOffer(ext(header), opts);
  return result && { params: result.params, response: formatExtensions([result.response]) };
}

function params(partial: Partial<DeflateParams> = {}): DeflateParams {
  return {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
    ...partial,
  };
}

function assertClientFails(header: string, offered: DeflateOptions = {}, pattern?: RegExp) {
  assert.throws(
    () => validateDeflateResponse(one(header), offered),
    (e: unknown) =>
      e instanceof HandshakeError &&
      e.code === "WS_ERR_HANDSHAKE_EXTENSION" &&
      e.httpStatus === 502 &&
      (pattern === undefined || pattern.test(e.message)),
    header,
  );
}

describe("deflateOffer (client, RFC 7692 §7.1)", () => {
  it("default offer is what browsers send: permessage-deflate; client_max_window_bits", () => {
    assert.equal(formatExtensions([deflateOffer()]), "permessage-deflate; client_max_window_bits");
  });

  it("carries every requested parameter", () => {
    const offer = deflateOffer({
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 12,
    });
    assert.equal(
      formatExtensions([offer]),
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; " +
        "server_max_window_bits=10; client_max_window_bits=12",
    );
  });

  it("rejects window bits outside 8..15 with LimitsError naming the field", () => {
    for (const [field, value] of [
      ["serverMaxWindowBits", 7],
      ["clientMaxWindowBits", 16],
      ["clientMaxWindowBits", 9.5],
    ] as const) {
      assert.throws(
        () => deflateOffer({ [field]: value }),
        (e: unknown) => e instanceof LimitsError && e.field === field,
      );
    }
  });
});

describe("acceptDeflateOffer (server, RFC 7692 §5, §7.1)", () => {
  it("accepts a bare offer with defaults (all windows 15, context takeover allowed)", () => {
    assert.deepEqual(accept("permessage-deflate"), {
      params: params(),
      response: "permessage-deflate",
    });
  });

  it("§7.1.2.2: a value-less client_max_window_bits is not echoed unless we limit it", () => {
    assert.deepEqual(accept("permessage-deflate; client_max_window_bits"), {
      params: params(),
      response: "permessage-deflate",
    });
    assert.deepEqual(
      accept("permessage-deflate; client_max_window_bits", { clientMaxWindowBits: 10 }),
      {
        params: params({ clientMaxWindowBits: 10 }),
        response: "permessage-deflate; client_max_window_bits=10",
      },
    );
  });

  it("§7.1.2.2: a client_max_window_bits value is echoed, or lowered to our limit", () => {
    assert.deepEqual(
      accept("permessage-deflate; client_max_window_bits=12")!.params,
      params({ clientMaxWindowBits: 12 }),
    );
    assert.equal(
      accept("permessage-deflate; client_max_window_bits=12")!.response,
      "permessage-deflate; client_max_window_bits=12",
    );
    assert.equal(
      accept("permessage-deflate; client_max_window_bits=12", { clientMaxWindowBits: 9 })!.response,
      "permessage-deflate; client_max_window_bits=9",
    );
    assert.equal(
      accept("permessage-deflate; client_max_window_bits=9", { clientMaxWindowBits: 12 })!.response,
      "permessage-deflate; client_max_window_bits=9",
    );
  });

  it("§7.1.2.2: declines an offer without client_max_window_bits when we must limit the client", () => {
    assert.equal(accept("permessage-deflate", { clientMaxWindowBits: 10 }), null);
    // ...but takes a later offer that carries it.
    assert.equal(
      accept("permessage-deflate, permessage-deflate; client_max_window_bits", {
        clientMaxWindowBits: 10,
      })!.response,
      "permessage-deflate; client_max_window_bits=10",
    );
  });

  it("§7.1.2.1: answers server_max_window_bits with the same or a smaller value", () => {
    assert.deepEqual(accept("permessage-deflate; server_max_window_bits=10"), {
      params: params({ serverMaxWindowBits: 10 }),
      response: "permessage-deflate; server_max_window_bits=10",
    });
    assert.equal(
      accept("permessage-deflate; server_max_window_bits=12", { serverMaxWindowBits: 9 })!.response,
      "permessage-deflate; server_max_window_bits=9",
    );
    assert.equal(
      accept("permessage-deflate; server_max_window_bits=9", { serverMaxWindowBits: 12 })!.response,
      "permessage-deflate; server_max_window_bits=9",
    );
    // §7.1.2.1: the server may include it even when not offered.
    assert.equal(
      accept("permessage-deflate", { serverMaxWindowBits: 11 })!.response,
      "permessage-deflate; server_max_window_bits=11",
    );
  });

  it("§7.1.2.1: agrees to server_max_window_bits=8 (zlib at 9 stays within 256 bytes, see below)", () => {
    assert.deepEqual(accept("permessage-deflate; server_max_window_bits=8"), {
      params: params({ serverMaxWindowBits: 8 }),
      response: "permessage-deflate; server_max_window_bits=8",
    });
  });

  it("§7.1.1: context-takeover parameters are honoured, imposed or refused per options", () => {
    assert.deepEqual(
      accept("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
      {
        params: params({ serverNoContextTakeover: true, clientNoContextTakeover: true }),
        response: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
      },
    );
    assert.equal(
      accept("permessage-deflate", {
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
      })!.response,
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    );
    assert.equal(
      accept("permessage-deflate; server_no_context_takeover", { serverNoContextTakeover: false }),
      null,
    );
  });

  it("§5: declines (skips) offers with unknown parameters or invalid values, takes the next one", () => {
    for (const bad of [
      "permessage-deflate; foo",
      "permessage-deflate; server_no_context_takeover=1",
      'permessage-deflate; client_no_context_takeover=""x',
      "permessage-deflate; server_max_window_bits",
      "permessage-deflate; server_max_window_bits=7",
      "permessage-deflate; server_max_window_bits=16",
      "permessage-deflate; server_max_window_bits=010",
      "permessage-deflate; server_max_window_bits=+9",
      "permessage-deflate; client_max_window_bits=0x9",
      "permessage-deflate; client_max_window_bits=08",
    ]) {
      let offers: ReturnType<typeof ext>;
      try {
        offers = ext(bad);
      } catch {
        continue; // not even a valid header: rejected earlier with 400
      }
      assert.equal(acceptDeflateOffer(offers), null, bad);
      assert.equal(
        accept(`${bad}, permessage-deflate; server_max_window_bits=11`)!.params.serverMaxWindowBits,
        11,
        bad,
      );
    }
  });

  it("accepts quoted values once unquoted (RFC 7692 §7.1: token after unescaping)", () => {
    assert.equal(
      accept('permessage-deflate; server_max_window_bits="10"')!.params.serverMaxWindowBits,
      10,
    );
  });

  it("ignores other extensions and returns null without any permessage-deflate offer", () => {
    assert.equal(accept("x-webkit-deflate-frame, foo; bar"), null);
    assert.equal(acceptDeflateOffer([]), null);
    assert.equal(accept("foo, permessage-deflate")!.response, "permessage-deflate");
  });

  it("property: any parsed offer list yields null or in-range params whose response the client accepts", () => {
    const value = fc.constantFrom(true as const, "8", "9", "15", "16", "08", "x");
    const name = fc.constantFrom(
      "server_no_context_takeover",
      "client_no_context_takeover",
      "server_max_window_bits",
      "client_max_window_bits",
      "foo",
    );
    const offerArb = fc.uniqueArray(fc.tuple(name, value), { selector: ([k]) => k, maxLength: 4 });
    const optsArb = fc.record(
      {
        serverNoContextTakeover: fc.boolean(),
        clientNoContextTakeover: fc.boolean(),
        serverMaxWindowBits: fc.integer({ min: 8, max: 15 }),
        clientMaxWindowBits: fc.integer({ min: 8, max: 15 }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(offerArb, { maxLength: 3 }), optsArb, (offers, opts) => {
        const header = offers
          .map((o) =>
            ["permessage-deflate", ...o.map(([k, v]) => (v === true ? k : `${k}=${v}`))].join("; "),
          )
          .join(", ");
        if (header === "") return;
        const result = acceptDeflateOffer(ext(header), opts);
        if (result === null) return;
        for (const bits of [result.params.serverMaxWindowBits, result.params.clientMaxWindowBits]) {
          assert.ok(Number.isInteger(bits) && bits >= 8 && bits <= 15);
        }
        if (opts.serverMaxWindowBits !== undefined)
          assert.ok(result.params.serverMaxWindowBits <= opts.serverMaxWindowBits);
        if (opts.clientMaxWindowBits !== undefined)
          assert.ok(result.params.clientMaxWindowBits <= opts.clientMaxWindowBits);
        // A client that sent the accepted offer validates our response to the same params.
        const wire = one(formatExtensions([result.response]));
        const client = validateDeflateResponse(wire, {});
        assert.equal(client.serverNoContextTakeover, result.params.serverNoContextTakeover);
        assert.equal(client.serverMaxWindowBits, result.params.serverMaxWindowBits);
        assert.equal(client.clientMaxWindowBits, result.params.clientMaxWindowBits);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("validateDeflateResponse (client, RFC 7692 §5, §7.1)", () => {
  it("bare response: defaults", () => {
    assert.deepEqual(validateDeflateResponse(one("permessage-deflate")), params());
  });

  it("reads every parameter", () => {
    assert.deepEqual(
      validateDeflateResponse(
        one(
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11",
        ),
      ),
      params({
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
        serverMaxWindowBits: 10,
        clientMaxWindowBits: 11,
      }),
    );
  });

  it("§7.1.1: the server may add either no_context_takeover unasked; our own hint binds us", () => {
    assert.equal(
      validateDeflateResponse(one("permessage-deflate; server_no_context_takeover"))
        .serverNoContextTakeover,
      true,
    );
    assert.equal(
      validateDeflateResponse(one("permessage-deflate"), { clientNoContextTakeover: true })
        .clientNoContextTakeover,
      true,
    );
  });

  it("§7.1.2.2: client_max_window_bits=8 is accepted (our deflater runs at 9, see below)", () => {
    assert.equal(
      validateDeflateResponse(one("permessage-deflate; client_max_window_bits=8"))
        .clientMaxWindowBits,
      8,
    );
  });

  it("§7.1.2.2: without a response value our offered limit applies", () => {
    assert.equal(
      validateDeflateResponse(one("permessage-deflate"), { clientMaxWindowBits: 10 })
        .clientMaxWindowBits,
      10,
    );
  });

  it("§5: fails on unknown parameters, values where none allowed, invalid window bits", () => {
    for (const bad of [
      "permessage-deflate; foo",
      "permessage-deflate; server_no_context_takeover=1",
      "permessage-deflate; client_no_context_takeover=x",
      "permessage-deflate; server_max_window_bits",
      "permessage-deflate; client_max_window_bits",
      "permessage-deflate; server_max_window_bits=7",
      "permessage-deflate; server_max_window_bits=16",
      "permessage-deflate; server_max_window_bits=010",
      "permessage-deflate; client_max_window_bits=08",
      "permessage-deflate; client_max_window_bits=1e1",
    ]) {
      assertClientFails(bad);
    }
  });

  it("fails on another extension name", () => {
    assertClientFails("deflate-frame", {}, /unexpected extension/);
  });

  it("§7.1.2: fails when the server's window exceeds what we offered", () => {
    assertClientFails(
      "permessage-deflate; server_max_window_bits=11",
      { serverMaxWindowBits: 10 },
      /exceeds/,
    );
    assertClientFails(
      "permessage-deflate; client_max_window_bits=11",
      { clientMaxWindowBits: 10 },
      /exceeds/,
    );
    assert.equal(
      validateDeflateResponse(one("permessage-deflate; server_max_window_bits=9"), {
        serverMaxWindowBits: 10,
      }).serverMaxWindowBits,
      9,
    );
  });

  it("§7.1.1.1 / §7.1.2.1: fails when the server ignores a request it must acknowledge", () => {
    assertClientFails(
      "permessage-deflate",
      { serverNoContextTakeover: true },
      /server_no_context_takeover/,
    );
    assertClientFails("permessage-deflate", { serverMaxWindowBits: 10 }, /server_max_window_bits/);
  });

  it("round trip: our server's answer to our client's offer validates to the same params", () => {
    const opts: DeflateOptions = {
      serverNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 12,
    };
    const server = acceptDeflateOffer(ext(formatExtensions([deflateOffer(opts)])), {
      clientMaxWindowBits: 11,
    })!;
    const client = validateDeflateResponse(one(formatExtensions([server.response])), opts);
    assert.deepEqual(client, server.params);
    assert.deepEqual(
      client,
      params({ serverNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 11 }),
    );
  });
});

describe("windowBits 8 with zlib (why negotiating 8 is honoured, RFC 7692 §7.1.2)", () => {
  /** Feed messages through one deflater (context takeover) and one inflater, like a connection. */
  async function roundTrip(deflateBits: number, inflateBits: number, messages: Buffer[]) {
    const deflater = zlib.createDeflateRaw({ windowBits: deflateBits });
    const inflater = zlib.createInflateRaw({ windowBits: inflateBits });
    let failed = false;
    inflater.on("error", () => {
      failed = true;
    });
    const pass = (stream: zlib.DeflateRaw | zlib.InflateRaw, data: Buffer) =>
      new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        const onData = (chunk: Buffer) => chunks.push(chunk);
        stream.on("data", onData);
        stream.write(data);
        const done = () => {
          stream.off("data", onData);
          stream.off("error", done);
          resolve(Buffer.concat(chunks));
        };
        stream.once("error", done);
        stream.flush(zlib.constants.Z_SYNC_FLUSH, done);
      });
    try {
      for (const message of messages) {
        const out = await pass(inflater, await pass(deflater, message));
        if (failed || !out.equals(message)) return false;
      }
      return true;
    } finally {
      deflater.close();
      inflater.close();
    }
  }

  /** Messages that repeat bytes seen 200..320 bytes earlier, across message boundaries. */
  function messages(seed: number): Buffer[] {
    let state = seed;
    const next = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 8;
    };
    const history: number[] = [];
    return Array.from({ length: 20 }, () => {
      const out = Buffer.alloc(1 + (next() % 1500));
      for (let i = 0; i < out.length; ) {
        if (history.length < 320 || next() % 4 === 0) {
          out[i++] = next() & 0xff;
          history.push(out[i - 1]!);
        } else {
          const distance = 200 + (next() % 120);
          for (let k = 3 + (next() % 30); k > 0 && i < out.length; k--) {
            out[i++] = history[history.length - distance]!;
            history.push(out[i - 1]!);
          }
        }
      }
      return out;
    });
  }

  it("a zlib deflater at windowBits 9 is always decodable by a strict 256-byte inflater", async () => {
    for (let seed = 1; seed <= 10; seed++) {
      assert.equal(await roundTrip(9, 8, messages(seed)), true, `seed ${seed}`);
    }
  });

  it("sanity: the same data from a windowBits 15 deflater breaks an 8-bit inflater", async () => {
    assert.equal(await roundTrip(15, 8, messages(1)), false);
    assert.equal(await roundTrip(15, 15, messages(1)), true);
  });
});
