/**
 * The duplex.v1 codec (src/realtime/wire.ts, specified in docs/protocol.md): table tests of
 * parseCommand for every command type — minimal and full forms, every validation error with its
 * code and whether it keeps the command's id — and of parseServerMessage; then properties:
 * parseCommand throws nothing but CommandError whatever it is given, valid commands survive
 * encodeCommand → parseCommand, encodePubPush output parses back into the same pub push, and
 * isValidChannel agrees with an independent reference check.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ErrorCode } from "../../src/realtime/codes.js";
import {
  type ClientInfo,
  type Command,
  CommandError,
  type CommandType,
  DEFAULT_WIRE_LIMITS,
  encodeCommand,
  encodeError,
  encodePubPush,
  encodePush,
  encodeResult,
  isValidChannel,
  type Json,
  namespaceOf,
  type PubPush,
  type Push,
  parseCommand,
  parseServerMessage,
  SUBPROTOCOL,
} from "../../src/realtime/wire.js";

const J = JSON.stringify;

const COMMAND_TYPES: readonly CommandType[] = [
  "connect",
  "subscribe",
  "unsubscribe",
  "publish",
  "history",
  "presence",
  "rpc",
  "refresh",
  "ping",
];

/** The characters a channel name may contain (docs/protocol.md, "Channel names"). */
const CHANNEL_CHARS = [
  ..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
  ..."_-:.@/=+,#!$~",
];

const { BAD_REQUEST, LIMIT_EXCEEDED, UNKNOWN_CHANNEL } = ErrorCode;
const PARSE_CODES: ReadonlySet<number> = new Set([BAD_REQUEST, LIMIT_EXCEEDED, UNKNOWN_CHANNEL]);

/** Assert that parsing `input` (an object is JSON-encoded first) throws this CommandError. */
function rejects(
  input: unknown,
  code: number,
  id: number | undefined,
  message?: RegExp,
  limits = DEFAULT_WIRE_LIMITS,
): void {
  const text = typeof input === "string" ? input : J(input);
  const label = text.length > 100 ? `${text.slice(0, 100)}…` : text;
  assert.throws(
    () => parseCommand(text, limits),
    (e: unknown) => {
      assert.ok(e instanceof CommandError, `${label}: threw ${String(e)}, not a CommandError`);
      assert.equal(e.code, code, `${label}: code (${e.message})`);
      assert.equal(e.id, id, `${label}: id`);
      if (message !== undefined) assert.match(e.message, message, label);
      return true;
    },
    label,
  );
}

function isUint(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

// ---------------------------------------------------------------------------------------------
// parseCommand: valid commands

describe("parseCommand: valid commands", () => {
  const long = (n: number, c = "x"): string => c.repeat(n);
  const allChars = CHANNEL_CHARS.join("");
  const cases: ReadonlyArray<readonly [string, unknown, Command]> = [
    ["connect, minimal", { type: "connect" }, { type: "connect" }],
    [
      "connect, full",
      { id: 1, type: "connect", token: "t.o.k", data: { a: [1, null, "x"] }, name: "web/1.4" },
      { id: 1, type: "connect", token: "t.o.k", data: { a: [1, null, "x"] }, name: "web/1.4" },
    ],
    ["connect, data null kept", { type: "connect", data: null }, { type: "connect", data: null }],
    [
      "connect, longest token and name",
      { type: "connect", token: long(8192), name: long(256) },
      { type: "connect", token: long(8192), name: long(256) },
    ],
    [
      "subscribe, minimal",
      { type: "subscribe", channel: "chat:lobby" },
      { type: "subscribe", channel: "chat:lobby" },
    ],
    [
      "subscribe, full",
      { id: 2, type: "subscribe", channel: "chat:lobby", since: { offset: 41, epoch: "9f2c" } },
      { id: 2, type: "subscribe", channel: "chat:lobby", since: { offset: 41, epoch: "9f2c" } },
    ],
    [
      "subscribe, since 0/'' (stream not started) and extra fields of since dropped",
      { type: "subscribe", channel: "a", since: { offset: 0, epoch: "", x: 1 } },
      { type: "subscribe", channel: "a", since: { offset: 0, epoch: "" } },
    ],
    [
      "subscribe, epoch of 64 characters and the largest offset",
      { type: "subscribe", channel: "a", since: { offset: 2 ** 53 - 1, epoch: long(64, "e") } },
      { type: "subscribe", channel: "a", since: { offset: 2 ** 53 - 1, epoch: long(64, "e") } },
    ],
    [
      "subscribe, every allowed character",
      { type: "subscribe", channel: allChars },
      { type: "subscribe", channel: allChars },
    ],
    [
      "subscribe, channel of 255 characters",
      { type: "subscribe", channel: long(255, "c") },
      { type: "subscribe", channel: long(255, "c") },
    ],
    [
      "unsubscribe",
      { id: 0, type: "unsubscribe", channel: "a" },
      { id: 0, type: "unsubscribe", channel: "a" },
    ],
    [
      "publish, minimal (data null)",
      { type: "publish", channel: "a", data: null },
      { type: "publish", channel: "a", data: null },
    ],
    [
      "publish, full",
      { id: 7, type: "publish", channel: "a", data: { text: "hi" }, key: "k", conflate: "c" },
      { id: 7, type: "publish", channel: "a", data: { text: "hi" }, key: "k", conflate: "c" },
    ],
    [
      "publish, longest key and conflate",
      { type: "publish", channel: "a", data: 0, key: long(1024), conflate: long(1024) },
      { type: "publish", channel: "a", data: 0, key: long(1024), conflate: long(1024) },
    ],
    ["history, minimal", { type: "history", channel: "a" }, { type: "history", channel: "a" }],
    [
      "history, full",
      {
        id: 11,
        type: "history",
        channel: "a",
        since: { offset: 3, epoch: "e" },
        limit: 0,
        reverse: false,
      },
      {
        id: 11,
        type: "history",
        channel: "a",
        since: { offset: 3, epoch: "e" },
        limit: 0,
        reverse: false,
      },
    ],
    ["presence, minimal", { type: "presence", channel: "a" }, { type: "presence", channel: "a" }],
    [
      "presence, full",
      { id: 12, type: "presence", channel: "a", cursor: long(1024), limit: 10 },
      { id: 12, type: "presence", channel: "a", cursor: long(1024), limit: 10 },
    ],
    ["rpc, minimal", { type: "rpc", method: "m" }, { type: "rpc", method: "m" }],
    [
      "rpc, full",
      { id: 15, type: "rpc", method: long(256), data: [1] },
      { id: 15, type: "rpc", method: long(256), data: [1] },
    ],
    ["refresh", { id: 17, type: "refresh", token: "t" }, { id: 17, type: "refresh", token: "t" }],
    [
      "refresh, longest token",
      { type: "refresh", token: long(8192) },
      {
        type: "refresh",
        token: long(8192),
      },
    ],
    ["ping, minimal", { type: "ping" }, { type: "ping" }],
    ["ping, largest id", { id: 2 ** 53 - 1, type: "ping" }, { id: 2 ** 53 - 1, type: "ping" }],
    [
      "unknown fields are ignored",
      { id: 2, type: "ping", extra: { a: 1 }, channel: 5 },
      { id: 2, type: "ping" },
    ],
    ["an id written 1.0 is the integer 1", '{"id":1.0,"type":"ping"}', { id: 1, type: "ping" }],
    [
      "whitespace around the object",
      ' \n{"type":"unsubscribe","channel":"a"}\t',
      { type: "unsubscribe", channel: "a" },
    ],
  ];

  for (const [name, input, expected] of cases) {
    it(name, () => {
      const text = typeof input === "string" ? input : J(input);
      assert.deepEqual(parseCommand(text), expected);
    });
  }

  it("covers every command type", () => {
    const seen = new Set(cases.map(([, , c]) => c.type));
    assert.deepEqual([...seen].sort(), [...COMMAND_TYPES].sort());
  });

  it("absent optional fields stay absent (no undefined-valued keys)", () => {
    for (const [, input] of cases) {
      const text = typeof input === "string" ? input : J(input);
      const c = parseCommand(text) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(c)) assert.notEqual(v, undefined, `${text}: ${k}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// parseCommand: errors

describe("parseCommand: validation errors", () => {
  it("text that is not JSON: 107 without an id", () => {
    for (const t of [
      "",
      " ",
      "{nope",
      '{"type":"ping"',
      "undefined",
      "NaN",
      "{'id':1}",
      "\u0000",
    ]) {
      rejects(t, BAD_REQUEST, undefined, /not JSON/);
    }
  });

  it("JSON that is not an object: 107 without an id", () => {
    for (const t of ["null", "[]", '[{"id":1,"type":"ping"}]', "1", '"ping"', "true"]) {
      rejects(t, BAD_REQUEST, undefined, /JSON object/);
    }
  });

  it("an id that is not a non-negative safe integer: 107 without an id", () => {
    for (const id of [-1, 1.5, "1", null, true, 2 ** 53, 1e300, {}, [1]]) {
      rejects({ id, type: "ping" }, BAD_REQUEST, undefined, /id must be/);
    }
    // The id is checked before the type.
    rejects({ id: -1, type: "teleport" }, BAD_REQUEST, undefined, /id must be/);
  });

  it("a missing or unknown type: 107, with the id when it was valid", () => {
    rejects({ id: 4 }, BAD_REQUEST, 4, /needs a type/);
    rejects({ id: 4, type: 5 }, BAD_REQUEST, 4, /needs a type/);
    rejects({ id: 4, type: null }, BAD_REQUEST, 4, /needs a type/);
    rejects({ type: "teleport" }, BAD_REQUEST, undefined, /unknown command type "teleport"/);
    rejects({ id: 3, type: "teleport" }, BAD_REQUEST, 3, /unknown command type/);
    rejects({ id: 3, type: "" }, BAD_REQUEST, 3, /unknown command type/);
    rejects({ id: 3, type: "Connect" }, BAD_REQUEST, 3, /unknown command type/);
    rejects({ id: 3, type: "pub" }, BAD_REQUEST, 3, /unknown command type/);
    // The echoed type is cut short.
    assert.throws(
      () => parseCommand(J({ type: "t".repeat(1000) })),
      (e: unknown) => e instanceof CommandError && e.message.length < 100,
    );
  });

  const withChannel: ReadonlyArray<Record<string, unknown>> = [
    { type: "subscribe" },
    { type: "unsubscribe" },
    { type: "publish", data: 1 },
    { type: "history" },
    { type: "presence" },
  ];

  it("a channel that is missing or not a string: 107", () => {
    for (const base of withChannel) {
      rejects({ ...base, id: 5 }, BAD_REQUEST, 5, /channel must be a string/);
      for (const channel of [5, null, ["a"], { name: "a" }, true]) {
        rejects({ ...base, id: 5, channel }, BAD_REQUEST, 5, /channel must be a string/);
      }
      rejects({ ...base, channel: 5 }, BAD_REQUEST, undefined);
    }
  });

  it("a channel name that breaks the rule: 102", () => {
    const bad = [
      "",
      "has space",
      "a*b",
      "é",
      "chat:\n",
      "a?b",
      "a%20b",
      "[x]",
      '"',
      "\u0000",
      "😀",
    ];
    for (const base of withChannel) {
      for (const channel of [...bad, "c".repeat(256)]) {
        rejects({ ...base, id: 6, channel }, UNKNOWN_CHANNEL, 6, /invalid channel name/);
      }
      rejects({ ...base, channel: "has space" }, UNKNOWN_CHANNEL, undefined);
    }
  });

  it("strings over their limit: 106", () => {
    const over: ReadonlyArray<readonly [Record<string, unknown>, RegExp]> = [
      [{ type: "connect", token: "t".repeat(8193) }, /token is longer than 8192/],
      [{ type: "connect", name: "n".repeat(257) }, /name is longer than 256/],
      [{ type: "refresh", token: "t".repeat(8193) }, /token is longer than 8192/],
      [{ type: "publish", channel: "a", data: 1, key: "k".repeat(1025) }, /key is longer/],
      [{ type: "publish", channel: "a", data: 1, conflate: "c".repeat(1025) }, /conflate/],
      [{ type: "presence", channel: "a", cursor: "c".repeat(1025) }, /cursor is longer/],
      [{ type: "rpc", method: "m".repeat(257) }, /method is longer than 256/],
    ];
    for (const [command, message] of over) {
      rejects({ ...command, id: 8 }, LIMIT_EXCEEDED, 8, message);
      rejects(command, LIMIT_EXCEEDED, undefined, message);
    }
  });

  it("fields of the wrong type: 107", () => {
    const wrong: Array<readonly [Record<string, unknown>, RegExp]> = [
      [{ type: "connect", token: 5 }, /token must be a string/],
      [{ type: "connect", token: null }, /token must be a string/],
      [{ type: "connect", name: [] }, /name must be a string/],
      [{ type: "refresh", token: 5 }, /token must be a string/],
      [{ type: "publish", channel: "a", data: 1, key: 1 }, /key must be a string/],
      [{ type: "publish", channel: "a", data: 1, key: null }, /key must be a string/],
      [{ type: "publish", channel: "a", data: 1, conflate: false }, /conflate must be a string/],
      [{ type: "presence", channel: "a", cursor: 1 }, /cursor must be a string/],
      [{ type: "rpc", method: 5 }, /method must be a string/],
    ];
    for (const limit of [-1, 1.5, "10", null, true, 2 ** 53]) {
      wrong.push([{ type: "history", channel: "a", limit }, /limit must be a non-negative/]);
      wrong.push([{ type: "presence", channel: "a", limit }, /limit must be a non-negative/]);
    }
    for (const reverse of ["yes", 1, null]) {
      wrong.push([{ type: "history", channel: "a", reverse }, /reverse must be a boolean/]);
    }
    for (const [command, message] of wrong) {
      rejects({ ...command, id: 9 }, BAD_REQUEST, 9, message);
    }
  });

  it("a bad since (subscribe and history): 107", () => {
    const bad: unknown[] = [
      "x",
      null,
      [],
      [1, "e"],
      5,
      {},
      { offset: 1 },
      { epoch: "" },
      { offset: -1, epoch: "" },
      { offset: 1.5, epoch: "" },
      { offset: "1", epoch: "" },
      { offset: 2 ** 53, epoch: "" },
      { offset: 1, epoch: 5 },
      { offset: 1, epoch: null },
      { offset: 1, epoch: "e".repeat(65) }, // too long, but 107 and not 106
    ];
    for (const type of ["subscribe", "history"]) {
      for (const since of bad) {
        rejects({ id: 10, type, channel: "a", since }, BAD_REQUEST, 10, /since must be/);
      }
    }
  });

  it("publish without data, rpc without method, refresh without token: 107", () => {
    rejects({ id: 1, type: "publish", channel: "a" }, BAD_REQUEST, 1, /publish needs data/);
    rejects({ type: "publish", channel: "a" }, BAD_REQUEST, undefined, /publish needs data/);
    rejects({ id: 2, type: "rpc" }, BAD_REQUEST, 2, /rpc needs a method/);
    rejects({ id: 2, type: "rpc", method: "" }, BAD_REQUEST, 2, /rpc needs a method/);
    rejects({ id: 2, type: "rpc", data: 1 }, BAD_REQUEST, 2, /rpc needs a method/);
    rejects({ id: 3, type: "refresh" }, BAD_REQUEST, 3, /refresh needs a token/);
    rejects({ type: "refresh" }, BAD_REQUEST, undefined, /refresh needs a token/);
  });

  it("uses the limits it is given", () => {
    const limits = { maxChannelBytes: 3, maxKeyBytes: 2, maxTokenBytes: 4 };
    assert.deepEqual(parseCommand(J({ type: "subscribe", channel: "abc" }), limits), {
      type: "subscribe",
      channel: "abc",
    });
    rejects({ type: "subscribe", channel: "abcd" }, UNKNOWN_CHANNEL, undefined, undefined, limits);
    rejects(
      { type: "publish", channel: "a", data: 1, key: "abc" },
      LIMIT_EXCEEDED,
      undefined,
      /key/,
      limits,
    );
    rejects({ type: "connect", token: "abcde" }, LIMIT_EXCEEDED, undefined, /token/, limits);
    rejects({ type: "refresh", token: "abcde" }, LIMIT_EXCEEDED, undefined, /token/, limits);
  });

  it("CommandError is an Error with a code (107 by default) and an optional id", () => {
    const e = new CommandError("bad");
    assert.ok(e instanceof Error);
    assert.deepEqual(
      [e.name, e.message, e.code, e.id],
      ["CommandError", "bad", BAD_REQUEST, undefined],
    );
    const f = new CommandError("worse", 3, LIMIT_EXCEEDED);
    assert.deepEqual([f.code, f.id], [LIMIT_EXCEEDED, 3]);
  });
});

// ---------------------------------------------------------------------------------------------
// parseServerMessage

describe("parseServerMessage", () => {
  const valid: ReadonlyArray<readonly [string, unknown]> = [
    ["empty result", { id: 1, result: {} }],
    ["connect result", { id: 0, result: { client: "hV3k", user: "", ping: 25000 } }],
    ["error reply", { id: 2, error: { code: 103, message: "publish not allowed on a" } }],
    ["temporary error", { id: 3, error: { code: 112, message: "m", temporary: true } }],
    [
      "pub, full",
      {
        type: "pub",
        channel: "chat:lobby",
        epoch: "9f2c",
        offset: 42,
        data: { text: "hi" },
        from: { client: "c", user: "alice", info: { name: "Alice" } },
        time: 1767225600123,
      },
    ],
    ["pub, minimal", { type: "pub", channel: "a", epoch: "e", offset: 1, data: null }],
    ["pub, ephemeral", { type: "pub", channel: "a", epoch: "", offset: 0, data: [1] }],
    ["join", { type: "join", channel: "room:1", member: { client: "c", user: "ben" } }],
    ["leave", { type: "leave", channel: "room:1", member: { client: "c", user: "ben" } }],
    [
      "unsubscribed",
      { type: "unsubscribed", channel: "a", code: 4002, reason: "r", resubscribe: true },
    ],
    ["disconnect", { type: "disconnect", code: 4004, reason: "connect timeout", reconnect: true }],
    [
      "error push",
      { type: "error", command: "publish", channel: "a", error: { code: 103, message: "m" } },
    ],
  ];

  for (const [name, message] of valid) {
    it(`accepts ${name}`, () => {
      assert.deepEqual(parseServerMessage(J(message)), message);
    });
  }

  it("reads what the server's encoders write", () => {
    assert.deepEqual(parseServerMessage(encodeResult(5, { offset: 1, epoch: "e" })), {
      id: 5,
      result: { offset: 1, epoch: "e" },
    });
    assert.deepEqual(parseServerMessage(encodeError(6, { code: 105, message: "m" })), {
      id: 6,
      error: { code: 105, message: "m" },
    });
    const pushes: Push[] = [
      { type: "disconnect", code: 4500, reason: "bad", reconnect: false },
      { type: "unsubscribed", channel: "a", code: 4002, reason: "r", resubscribe: true },
      { type: "error", command: "ping", error: { code: 100, message: "m", temporary: true } },
    ];
    for (const p of pushes) assert.deepEqual(parseServerMessage(encodePush(p)), p);
  });

  const invalid: ReadonlyArray<readonly [string, string]> = [
    ["not JSON", "nope"],
    ["empty", ""],
    ["an array", "[]"],
    ["null", "null"],
    ["a number", "3"],
    ["negative id", J({ id: -1, result: {} })],
    ["string id", J({ id: "1", result: {} })],
    ["null id", J({ id: null, result: {} })],
    ["neither result nor error", J({ id: 1 })],
    ["array result", J({ id: 1, result: [] })],
    ["null result", J({ id: 1, result: null })],
    ["negative error code", J({ id: 1, error: { code: -1, message: "m" } })],
    ["string error code", J({ id: 1, error: { code: "103", message: "m" } })],
    ["error without code", J({ id: 1, error: { message: "m" } })],
    ["no type", J({})],
    ["unknown type", J({ type: "nope" })],
    ["pub without epoch", J({ type: "pub", channel: "a", offset: 1, data: 1 })],
    ["pub with a negative offset", J({ type: "pub", channel: "a", epoch: "", offset: -1 })],
    ["pub with a fractional offset", J({ type: "pub", channel: "a", epoch: "", offset: 1.5 })],
    ["pub without channel", J({ type: "pub", epoch: "", offset: 0, data: 1 })],
    ["join without member", J({ type: "join", channel: "a" })],
    ["join with a string member", J({ type: "join", channel: "a", member: "x" })],
    ["leave without channel", J({ type: "leave", member: {} })],
    ["unsubscribed without code", J({ type: "unsubscribed", channel: "a" })],
    ["unsubscribed without channel", J({ type: "unsubscribed", code: 4002 })],
    ["disconnect without code", J({ type: "disconnect", reason: "r" })],
    ["disconnect with a string code", J({ type: "disconnect", code: "4000" })],
    ["error push without error", J({ type: "error", command: "ping" })],
    ["error push with a string error", J({ type: "error", command: "ping", error: "x" })],
  ];

  for (const [name, text] of invalid) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => parseServerMessage(text),
        (e: unknown) => e instanceof TypeError || e instanceof SyntaxError,
      );
    });
  }
});

describe("channel names and namespaces", () => {
  it("isValidChannel: 1–255 allowed characters, strings only", () => {
    assert.equal(isValidChannel("chat:lobby"), true);
    assert.equal(isValidChannel(CHANNEL_CHARS.join("")), true);
    assert.equal(isValidChannel("a".repeat(255)), true);
    assert.equal(isValidChannel("a".repeat(256)), false);
    assert.equal(isValidChannel("abc", 2), false);
    assert.equal(isValidChannel(""), false);
    assert.equal(isValidChannel(5), false);
    assert.equal(isValidChannel(null), false);
    assert.equal(isValidChannel(["a"]), false);
  });

  it("namespaceOf: the part before the first colon", () => {
    assert.equal(namespaceOf("chat:room-1"), "chat");
    assert.equal(namespaceOf("chat:a:b"), "chat");
    assert.equal(namespaceOf("plain"), "");
    assert.equal(namespaceOf(":x"), "");
  });

  it("the subprotocol is duplex.v1", () => {
    assert.equal(SUBPROTOCOL, "duplex.v1");
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const channelArb = fc.string({
  unit: fc.constantFrom(...CHANNEL_CHARS),
  minLength: 1,
  maxLength: 255,
});
/** JSON data as it survives a trip through JSON text (no -0). */
const dataArb: fc.Arbitrary<Json> = fc
  .jsonValue({ maxDepth: 3 })
  .map((v) => JSON.parse(J(v)) as Json);
/** Strings of any code points (lone surrogates included): at most 2 × n UTF-16 code units. */
const text = (n: number, minLength = 0): fc.Arbitrary<string> =>
  fc.string({ unit: "binary", minLength, maxLength: n });
const positionArb = fc.record(
  { offset: fc.maxSafeNat(), epoch: text(32) },
  { noNullPrototype: true },
);

const validCommand: fc.Arbitrary<Command> = fc.oneof(
  fc.record(
    {
      type: fc.constant("connect" as const),
      id: fc.maxSafeNat(),
      token: text(300),
      data: dataArb,
      name: text(128),
    },
    { noNullPrototype: true, requiredKeys: ["type"] },
  ),
  fc.record(
    {
      type: fc.constant("subscribe" as const),
      id: fc.maxSafeNat(),
      channel: channelArb,
      since: positionArb,
    },
    { noNullPrototype: true, requiredKeys: ["type", "channel"] },
  ),
  fc.record(
    { type: fc.constant("unsubscribe" as const), id: fc.maxSafeNat(), channel: channelArb },
    { noNullPrototype: true, requiredKeys: ["type", "channel"] },
  ),
  fc.record(
    {
      type: fc.constant("publish" as const),
      id: fc.maxSafeNat(),
      channel: channelArb,
      data: dataArb,
      key: text(64),
      conflate: text(64),
    },
    { noNullPrototype: true, requiredKeys: ["type", "channel", "data"] },
  ),
  fc.record(
    {
      type: fc.constant("history" as const),
      id: fc.maxSafeNat(),
      channel: channelArb,
      since: positionArb,
      limit: fc.maxSafeNat(),
      reverse: fc.boolean(),
    },
    { noNullPrototype: true, requiredKeys: ["type", "channel"] },
  ),
  fc.record(
    {
      type: fc.constant("presence" as const),
      id: fc.maxSafeNat(),
      channel: channelArb,
      cursor: text(64),
      limit: fc.maxSafeNat(),
    },
    { noNullPrototype: true, requiredKeys: ["type", "channel"] },
  ),
  fc.record(
    {
      type: fc.constant("rpc" as const),
      id: fc.maxSafeNat(),
      method: text(128, 1),
      data: dataArb,
    },
    { noNullPrototype: true, requiredKeys: ["type", "method"] },
  ),
  fc.record(
    { type: fc.constant("refresh" as const), id: fc.maxSafeNat(), token: text(300) },
    { noNullPrototype: true, requiredKeys: ["type", "token"] },
  ),
  fc.record(
    { type: fc.constant("ping" as const), id: fc.maxSafeNat() },
    { noNullPrototype: true, requiredKeys: ["type"] },
  ),
);

/** Anything a field could hold, valid or not. */
const anyField: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  channelArb,
  text(20),
  fc.maxSafeNat(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  positionArb,
  fc.record(
    { offset: fc.anything(), epoch: fc.anything() },
    { noNullPrototype: true, requiredKeys: [] },
  ),
  fc.nat(9000).map((n) => "x".repeat(n)),
);

/** Objects shaped like commands: any subset of the command fields, each valid or not. */
const looseCommand = fc.record(
  {
    id: fc.oneof(fc.maxSafeNat(), anyField),
    type: fc.oneof(fc.constantFrom(...COMMAND_TYPES), anyField),
    channel: anyField,
    since: anyField,
    data: anyField,
    key: anyField,
    conflate: anyField,
    token: anyField,
    name: anyField,
    limit: anyField,
    reverse: anyField,
    cursor: anyField,
    method: anyField,
  },
  { noNullPrototype: true, requiredKeys: [] },
);

/**
 * parseCommand's contract on any input: a command of a known type, or a CommandError with a parse
 * code — never another exception. Returns the command or the error.
 */
function parseOutcome(input: string): Command | CommandError {
  let command: Command;
  try {
    command = parseCommand(input);
  } catch (e) {
    if (!(e instanceof CommandError)) throw e; // fails the property
    assert.ok(PARSE_CODES.has(e.code), `unexpected code ${e.code}`);
    assert.ok(e.id === undefined || isUint(e.id));
    return e;
  }
  assert.ok(COMMAND_TYPES.includes(command.type), `unexpected type ${String(command.type)}`);
  assert.ok(command.id === undefined || isUint(command.id));
  return command;
}

describe("parseCommand properties", () => {
  it("(a) arbitrary strings: a command or a CommandError, nothing else", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), text(200)), (s) => {
        parseOutcome(s);
      }),
      { numRuns: 1000 },
    );
  });

  it("(a) arbitrary JSON text and values: a command or a CommandError, nothing else", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.json(),
          fc.jsonValue().map((v) => J(v)),
        ),
        (s) => {
          parseOutcome(s);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("(a) command-shaped objects: a command or a CommandError that keeps the valid id", () => {
    fc.assert(
      fc.property(looseCommand, (raw) => {
        const input = J(raw);
        const parsed = JSON.parse(input) as Record<string, unknown>;
        const validId = isUint(parsed.id) ? parsed.id : undefined;
        const outcome = parseOutcome(input);
        if (outcome instanceof CommandError) {
          assert.equal(outcome.id, validId);
          return;
        }
        assert.equal(outcome.id, validId);
        assert.equal(outcome.type, parsed.type);
        // What was accepted is stable: encoding and parsing it again gives the same command.
        assert.deepEqual(parseCommand(encodeCommand(outcome)), outcome);
      }),
      { numRuns: 2000 },
    );
  });

  it("(a) damaged encodings of valid commands: a command or a CommandError", () => {
    fc.assert(
      fc.property(validCommand, fc.nat(), text(3), (command, at, insert) => {
        const encoded = encodeCommand(command);
        const i = at % (encoded.length + 1);
        parseOutcome(encoded.slice(0, i));
        parseOutcome(encoded.slice(0, i) + insert + encoded.slice(i));
        parseOutcome(encoded.slice(0, i) + encoded.slice(i + 1));
      }),
      { numRuns: 500 },
    );
  });

  it("(b) round trip: parseCommand(encodeCommand(c)) deep-equals c", () => {
    fc.assert(
      fc.property(validCommand, (command) => {
        assert.deepEqual(parseCommand(encodeCommand(command)), command);
      }),
      { numRuns: 1000 },
    );
  });
});

const clientInfoArb = fc.record(
  { client: text(16), user: text(16), info: fc.jsonValue({ maxDepth: 2 }) },
  { noNullPrototype: true, requiredKeys: ["client", "user"] },
);

describe("encodePubPush property", () => {
  it("(c) its output parses into a pub push with the same fields", () => {
    fc.assert(
      fc.property(
        channelArb,
        fc.oneof(text(32), fc.constant("")),
        fc.maxSafeNat(),
        fc.jsonValue(),
        fc.option(clientInfoArb, { nil: undefined }),
        fc.option(fc.maxSafeNat(), { nil: undefined }),
        (channel, epoch, offset, value, from, time) => {
          const dataJson = J(value);
          const fromJson = from === undefined ? undefined : J(from);
          const encoded = encodePubPush(channel, epoch, offset, dataJson, fromJson, time);
          const message = parseServerMessage(encoded);
          assert.ok(!("id" in message), "a push, not a reply");
          assert.equal(message.type, "pub");
          const expected: PubPush = {
            type: "pub",
            channel,
            epoch,
            offset,
            data: JSON.parse(dataJson) as Json,
            ...(fromJson === undefined ? {} : { from: JSON.parse(fromJson) as ClientInfo }),
            ...(time === undefined ? {} : { time }),
          };
          assert.deepEqual(message, expected);
          // The hand-built encoding says the same as the generic one.
          assert.deepEqual(JSON.parse(encodePush(expected)), message);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

/** An independent statement of the channel rule: no regular expression, one code unit at a time. */
const ALLOWED = new Set(CHANNEL_CHARS);
function referenceIsValidChannel(name: unknown, max: number): boolean {
  if (typeof name !== "string" || name.length < 1 || name.length > max) return false;
  for (let i = 0; i < name.length; i++) {
    if (!ALLOWED.has(name.charAt(i))) return false;
  }
  return true;
}

describe("isValidChannel property", () => {
  const nearlyValid = fc.string({
    unit: fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom(...CHANNEL_CHARS) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(" ", "*", "é", "\n", "?", "%", "\u0000", "😀", "[", '"', "\\"),
      },
    ),
    maxLength: 300,
  });
  const nameArb = fc.oneof(
    channelArb,
    nearlyValid,
    fc.string(),
    text(40),
    fc.nat(300).map((n) => "a".repeat(n)),
    fc.anything(),
  );

  it("(d) agrees with a reference check, with the default and with any maximum", () => {
    fc.assert(
      fc.property(nameArb, fc.option(fc.nat(300), { nil: undefined }), (name, max) => {
        const actual = max === undefined ? isValidChannel(name) : isValidChannel(name, max);
        const expected = referenceIsValidChannel(name, max ?? 255);
        assert.equal(actual, expected, J(name));
      }),
      { numRuns: 2000 },
    );
  });
});
