import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HandshakeError, StateError } from "../../src/protocol/errors.js";
import {
  type ExtensionOffer,
  formatExtensions,
  parseExtensions,
} from "../../src/protocol/extension-header.js";

/** A prototype-less params object, like the parser builds (deepStrictEqual checks prototypes). */
function params(entries: Record<string, string | true> = {}): Record<string, string | true> {
  const out = Object.create(null) as Record<string, string | true>;
  for (const key of Object.keys(entries)) out[key] = entries[key]!;
  return out;
}

function offer(name: string, entries: [string, string | true][] = []): ExtensionOffer {
  const p = params();
  for (const [key, value] of entries) p[key] = value;
  return { name, params: p };
}

function assertRejected(value: string, pattern?: RegExp): void {
  assert.throws(
    () => parseExtensions(value),
    (e: unknown) =>
      e instanceof HandshakeError &&
      e.code === "WS_ERR_HANDSHAKE_EXTENSION" &&
      e.httpStatus === 400 &&
      (pattern === undefined || pattern.test(e.message)),
    JSON.stringify(value.slice(0, 60)),
  );
}

const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const token = fc.oneof(
  fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 10 }),
  fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "10", "2"),
);

describe("parseExtensions (RFC 6455 §9.1)", () => {
  it("parses the RFC 7692 §7 style offer", () => {
    assert.deepEqual(parseExtensions("permessage-deflate; client_max_window_bits"), [
      offer("permessage-deflate", [["client_max_window_bits", true]]),
    ]);
  });

  it("parses several elements, values and OWS around ',', ';' and '='", () => {
    assert.deepEqual(
      parseExtensions(
        " permessage-deflate ;server_max_window_bits = 10 ; client_no_context_takeover ,\tfoo,bar;x=y",
      ),
      [
        offer("permessage-deflate", [
          ["server_max_window_bits", "10"],
          ["client_no_context_takeover", true],
        ]),
        offer("foo"),
        offer("bar", [["x", "y"]]),
      ],
    );
  });

  it("keeps repeated extension names as alternative offers (RFC 7692 §5)", () => {
    const parsed = parseExtensions(
      "permessage-deflate; server_max_window_bits=10, permessage-deflate",
    );
    assert.equal(parsed.length, 2);
    assert.equal(parsed[1]!.name, "permessage-deflate");
  });

  it("unquotes quoted-string values, including quoted-pairs (RFC 6455 §9.1)", () => {
    assert.deepEqual(parseExtensions('x; a="10"; b="\\1\\0"; c= "tok"'), [
      offer("x", [
        ["a", "10"],
        ["b", "10"],
        ["c", "tok"],
      ]),
    ]);
  });

  it("rejects quoted values that are not tokens once unescaped (RFC 6455 §9.1)", () => {
    assertRejected('x; a=""', /not a token/);
    assertRejected('x; a="1 0"', /not a token/);
    assertRejected('x; a="a,b"', /not a token/);
    assertRejected('x; a="\\""', /not a token/);
  });

  it("rejects malformed quoted-strings", () => {
    assertRejected('x; a="10', /unterminated/);
    assertRejected('x; a="1\\', /escape/);
    assertRejected('x; a="1\u0000"', /invalid character/);
    assertRejected('x; a="1"0', /unexpected/);
  });

  it("rejects duplicate parameters within one element", () => {
    assertRejected("x; a; a", /duplicate parameter "a"/);
    assertRejected("x; a=1; b; a=2", /duplicate/);
  });

  it("rejects empty elements, missing names and values, stray characters", () => {
    for (const bad of [
      "",
      "  ",
      ",x",
      "x,",
      "x,,y",
      "x;",
      "x; ;a",
      "; a",
      "x; =1",
      "x; a=",
      "x; a= ,",
      "x a",
      "x; a b",
      "x; a=1 2",
      "x; a=@",
      "x/1",
      "x\r\ny",
      "caf\u00e9",
    ]) {
      assertRejected(bad);
    }
  });

  it("error messages name the element index or position", () => {
    assertRejected("a, , b", /index 1/);
    assertRejected("a; b=@", /position 5/);
  });

  it("treats __proto__, constructor, toString, hasOwnProperty as plain data", () => {
    const parsed = parseExtensions(
      "__proto__; __proto__=1; constructor; toString=x; hasOwnProperty, constructor; valueOf",
    );
    assert.equal(parsed.length, 2);
    const first = parsed[0]!;
    assert.equal(first.name, "__proto__");
    assert.equal(Object.getPrototypeOf(first.params), null);
    assert.deepEqual(Object.keys(first.params), [
      "__proto__",
      "constructor",
      "toString",
      "hasOwnProperty",
    ]);
    assert.equal(Object.getOwnPropertyDescriptor(first.params, "__proto__")?.value, "1");
    assert.equal(first.params.constructor, true);
    assert.equal(first.params.toString, "x");
    assert.equal(parsed[1]!.name, "constructor");
    assert.deepEqual(Object.keys(parsed[1]!.params), ["valueOf"]);
    // Nothing leaked onto Object.prototype.
    assert.equal(({} as Record<string, unknown>).valueOf, Object.prototype.valueOf);
    // An absent name is really absent, not inherited.
    assert.equal(Object.hasOwn(parseExtensions("x")[0]!.params, "toString"), false);
    assert.equal(parseExtensions("x")[0]!.params.toString, undefined);
  });

  it("rejects a duplicate __proto__ parameter like any other", () => {
    assertRejected("x; __proto__; __proto__=1", /duplicate/);
  });

  it("64 KiB of whitespace is rejected and OWS-padded input parses (linear)", () => {
    const blanks = " ".repeat(64 * 1024);
    assertRejected(blanks, /empty element/);
    assert.deepEqual(parseExtensions(`a${blanks};${blanks}b${blanks}=${blanks}c${blanks}`), [
      offer("a", [["b", "c"]]),
    ]);
    assertRejected(`x; a="${"\\a".repeat(32 * 1024)}`, /unterminated/);
  });
});

describe("formatExtensions", () => {
  it("writes name; param; param=value, elements joined by ', '", () => {
    assert.equal(
      formatExtensions([
        offer("permessage-deflate", [
          ["server_no_context_takeover", true],
          ["client_max_window_bits", "10"],
        ]),
        offer("foo"),
      ]),
      "permessage-deflate; server_no_context_takeover; client_max_window_bits=10, foo",
    );
    assert.equal(formatExtensions([]), "");
  });

  it("refuses names and values that are not tokens (StateError WS_ERR_INVALID_ARGUMENT)", () => {
    for (const bad of [
      offer("a b"),
      offer("x", [["a b", true]]),
      offer("x", [["a", "1 0"]]),
      offer("x", [["a", ""]]),
      offer("x", [["a", "v\r\nInjected: 1"]]),
      { name: "x", params: params({ a: 1 as unknown as string }) },
    ]) {
      assert.throws(
        () => formatExtensions([bad]),
        (e: unknown) => e instanceof StateError && e.code === "WS_ERR_INVALID_ARGUMENT",
      );
    }
  });

  it("property: parseExtensions(formatExtensions(x)) deep-equals x", () => {
    const offerArb = fc
      .record({
        name: token,
        entries: fc.uniqueArray(fc.tuple(token, fc.oneof(fc.constant(true as const), token)), {
          selector: ([key]) => key,
          maxLength: 5,
        }),
      })
      .map(({ name, entries }) => offer(name, entries));
    fc.assert(
      fc.property(fc.array(offerArb, { minLength: 1, maxLength: 5 }), (offers) => {
        assert.deepStrictEqual(parseExtensions(formatExtensions(offers)), offers);
      }),
      { numRuns: 500 },
    );
  });

  it("property: arbitrary strings either parse or throw HandshakeError 400", () => {
    const alphabet = fc.constantFrom(...'ab=;, \t"\\_');
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: alphabet, maxLength: 30 })), (s) => {
        try {
          const parsed = parseExtensions(s);
          assert.ok(parsed.length > 0);
          // Whatever parses is re-formattable and stable.
          assert.deepStrictEqual(parseExtensions(formatExtensions(parsed)), parsed);
        } catch (e) {
          assert.ok(e instanceof HandshakeError, String(e));
          assert.equal(e.code, "WS_ERR_HANDSHAKE_EXTENSION");
          assert.equal(e.httpStatus, 400);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
