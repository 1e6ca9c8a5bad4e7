/**
 * The case list, numbered as the Autobahn|Testsuite numbers it (groups 1-7, 9, 10, 12, 13; see
 * https://github.com/crossbario/autobahn-testsuite, autobahntestsuite/case/). Descriptions and
 * expectations follow the published ones; the scripts are our own and drive fuzzer.ts.
 *
 * The same definitions run for both roles: against a server the fuzzer is a client (masked
 * frames), against a client it is a server (unmasked frames). Sizes and counts that cost run
 * time come from the Profile (full = Autobahn's numbers, quick = the npm test gate).
 *
 * Where this list deviates from Autobahn it says so in the case (and docs/conformance.md):
 * - 3.6's description says "Ping with RSV = 6" while Autobahn's script sends a binary frame; we
 *   send the Ping the description promises.
 * - 7.7.14-7.7.16 (1012-1014, registered after Autobahn's list was written) and 7.9.10 (1015,
 *   never valid on the wire) are extra cases, marked `extra`.
 * - Groups 12/13 use generated documents instead of Autobahn's data files (testdata.ts).
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { type AcceptRule, DEFAULT_OFFER, type Offer } from "./deflate.js";
import type { Fuzzer } from "./fuzzer.js";
import {
  type CaseContext,
  type CloseExpectation,
  type ConformanceCase,
  deflateCount,
  type Event,
  type Expectation,
  marker,
  msg,
  type Profile,
  pong,
} from "./model.js";
import { MessageCursor, type TestDocument, testDocuments } from "./testdata.js";
import { UTF8_FIRST_SUBGROUP, UTF8_GROUPS } from "./utf8-table.js";
import { hex, OP } from "./wire.js";

type Script = (f: Fuzzer, ctx: CaseContext) => Promise<void>;

const NORMAL: CloseExpectation = { closedByFuzzer: true, codes: [1000], requireClean: true };
const PEER_FAILS: CloseExpectation = { closedByFuzzer: false, codes: [1002], requireClean: false };
const PEER_FAILS_UTF8: CloseExpectation = {
  closedByFuzzer: false,
  codes: [1007],
  requireClean: false,
  wrongEndpointFatal: true,
};

const EARLY_FAIL_REASON =
  "The peer failed the connection before echoing the valid message sent ahead of the bad frame " +
  "(it saw the bad frame in the same read and stopped processing input). RFC 6455 allows " +
  "failing at once; Autobahn accepts this as non-strict.";

const FAIL_FAST_REASON =
  "The peer failed the connection only when the rest of the message arrived, not as soon as " +
  "the octet that makes the UTF-8 invalid arrived. RFC 6455 §8.1 asks to fail as soon as " +
  "invalid UTF-8 is detected; Autobahn accepts the late failure as non-strict.";

function expect(
  ok: readonly Event[],
  close: CloseExpectation,
  more: Partial<Expectation> = {},
): Expectation {
  return { ok, close, ...more };
}

function def(
  id: string,
  description: string,
  expectation: string,
  expected: ConformanceCase["expect"],
  run: Script,
  more: Partial<ConformanceCase> = {},
): ConformanceCase {
  return { id, description, expectation, expect: expected, run, ...more };
}

const repeat = (pattern: Buffer | string, length: number): Buffer => {
  const p = typeof pattern === "string" ? Buffer.from(pattern, "latin1") : pattern;
  const out = Buffer.alloc(length);
  if (length > 0) out.fill(p);
  return out;
};

const KiB = 1024;
const MiB = 1024 * 1024;
const size = (n: number): string =>
  n >= MiB && n % MiB === 0 ? `${n / MiB}M` : n >= KiB && n % KiB === 0 ? `${n / KiB}k` : String(n);

// ---- group 1: framing ----------------------------------------------------------------------

function group1(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  const lengths = [0, 125, 126, 127, 128, 65535, 65536, 65536];
  for (const binary of [false, true]) {
    lengths.forEach((length, i) => {
      const chop = i === 7 ? 997 : undefined;
      const payload = repeat(binary ? "\xfe" : "*", length);
      const kind = binary ? "binary" : "text";
      out.push(
        def(
          `1.${binary ? 2 : 1}.${i + 1}`,
          `Send ${kind} message with payload of length ${length}.${chop ? ` Sent out data in chops of ${chop} octets.` : ""}`,
          `Receive echo'ed ${kind} message (with payload as sent). Clean close with normal code.`,
          expect([msg(payload, binary)], NORMAL),
          async (f, { profile }) => {
            await f.sendFrame(
              { opcode: binary ? OP.BINARY : OP.TEXT, payload },
              chop ? { chop } : {},
            );
            await f.killAfter(length > 1000 ? 10_000 : profile.killAfterMs);
          },
        ),
      );
    });
  }
  return out;
}

// ---- group 2: pings and pongs ----------------------------------------------------------------

function group2(): ConformanceCase[] {
  const pingCase = (
    id: string,
    description: string,
    payload: Buffer | string,
    chop?: number,
  ): ConformanceCase =>
    def(
      id,
      description,
      "Pong with payload echo'ed is sent in reply to Ping. Clean close with normal code.",
      expect([pong(payload)], NORMAL),
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.PING, payload }, chop ? { chop } : {});
        await f.closeAfter(profile.killAfterMs);
      },
    );
  const tenPings = (id: string, chop?: number): ConformanceCase => {
    const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
    return def(
      id,
      `Send 10 Pings with payload.${chop ? " Send out octets in octet-wise chops." : ""}`,
      "Pongs for our Pings with all the payloads. Note: This is not required by the Spec .. but we check for this behaviour anyway. Clean close with normal code.",
      expect(
        payloads.map((p) => pong(p)),
        NORMAL,
      ),
      async (f) => {
        for (const p of payloads)
          await f.sendFrame({ opcode: OP.PING, payload: p }, chop ? { chop } : {});
        await f.closeAfter(3000);
      },
    );
  };
  return [
    pingCase("2.1", "Send ping without payload.", ""),
    pingCase("2.2", "Send ping with small text payload.", "Hello, world!"),
    pingCase("2.3", "Send ping with small binary (non UTF-8) payload.", hex("00fffefdfcfb00ff")),
    pingCase("2.4", "Send ping with binary payload of 125 octets.", repeat("\xfe", 125)),
    def(
      "2.5",
      "Send ping with binary payload of 126 octets.",
      "Connection is failed immediately (1002/Protocol Error), since control frames are only allowed to have payload up to and including 125 octets.",
      expect([], PEER_FAILS),
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.PING, payload: repeat("\xfe", 126) });
        await f.killAfter(profile.killAfterMs);
      },
    ),
    pingCase(
      "2.6",
      "Send ping with binary payload of 125 octets, send in octet-wise chops.",
      repeat("\xfe", 125),
      1,
    ),
    def(
      "2.7",
      "Send unsolicited pong without payload. Verify nothing is received. Clean close with normal code.",
      "Nothing.",
      expect([], NORMAL),
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.PONG });
        await f.sendClose(1000);
        await f.closeAfter(profile.killAfterMs);
      },
    ),
    def(
      "2.8",
      "Send unsolicited pong with payload. Verify nothing is received. Clean close with normal code.",
      "Nothing.",
      expect([], NORMAL),
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.PONG, payload: "unsolicited pong payload" });
        await f.sendClose(1000);
        await f.closeAfter(profile.killAfterMs);
      },
    ),
    def(
      "2.9",
      "Send unsolicited pong with payload. Send ping with payload. Verify pong for ping is received.",
      "Nothing in reply to own Pong, but Pong with payload echo'ed in reply to Ping. Clean close with normal code.",
      expect([pong("ping payload")], NORMAL),
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.PONG, payload: "unsolicited pong payload" });
        await f.sendFrame({ opcode: OP.PING, payload: "ping payload" });
        await f.closeAfter(profile.killAfterMs);
      },
    ),
    tenPings("2.10"),
    tenPings("2.11", 1),
  ];
}

// ---- group 3: reserved bits ------------------------------------------------------------------

function group3(): ConformanceCase[] {
  const hello = "Hello, world!";
  const afterEcho = (
    id: string,
    rsv: number,
    description: string,
    options: { sync?: boolean; chop?: number },
  ) =>
    def(
      id,
      description,
      "Echo for first message is received, but then connection is failed immediately, since RSV must be 0, when no extension defining RSV meaning has been negotiated. The Pong is not received.",
      expect([msg(hello)], PEER_FAILS, { nonStrict: { events: [], reason: EARLY_FAIL_REASON } }),
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.TEXT, payload: hello }, options);
        await f.sendFrame({ opcode: OP.TEXT, payload: hello, rsv }, options);
        await f.sendFrame({ opcode: OP.PING }, options);
        await f.killAfter(profile.killAfterMs);
      },
    );
  const single = (
    id: string,
    description: string,
    opcode: number,
    payload: Buffer | string,
    rsv: number,
  ) =>
    def(
      id,
      description,
      "The connection is failed immediately (1002/protocol error), since RSV must be 0, when no extension defining RSV meaning has been negotiated.",
      expect([], PEER_FAILS),
      async (f, { profile }) => {
        await f.sendFrame({ opcode, payload, rsv });
        await f.killAfter(profile.killAfterMs);
      },
    );
  return [
    single("3.1", "Send small text message with RSV = 1.", OP.TEXT, hello, 1),
    afterEcho(
      "3.2",
      2,
      "Send small text message, then send again with RSV = 2, then send Ping.",
      {},
    ),
    afterEcho(
      "3.3",
      3,
      "Send small text message, then send again with RSV = 3, then send Ping. Octets are sent in frame-wise chops.",
      { sync: true },
    ),
    afterEcho(
      "3.4",
      4,
      "Send small text message, then send again with RSV = 4, then send Ping. Octets are sent in octet-wise chops.",
      { chop: 1 },
    ),
    single("3.5", "Send small binary message with RSV = 5.", OP.BINARY, hex("00fffefdfcfb00ff"), 5),
    single(
      "3.6",
      "Send Ping with RSV = 6. (Autobahn's script sends a binary frame here; we send the Ping its description names.)",
      OP.PING,
      hello,
      6,
    ),
    single("3.7", "Send Close with RSV = 7.", OP.CLOSE, "", 7),
  ];
}

// ---- group 4: opcodes ------------------------------------------------------------------------

function group4(): ConformanceCase[] {
  const hello = "Hello, world!";
  const out: ConformanceCase[] = [];
  for (const control of [false, true]) {
    const base = control ? 11 : 3;
    const sub = control ? 2 : 1;
    const kind = control ? "control" : "non-control";
    for (let i = 0; i < 5; i++) {
      const opcode = base + i;
      const withPayload = i !== 0 && i !== 2;
      const id = `4.${sub}.${i + 1}`;
      if (i < 2) {
        out.push(
          def(
            id,
            `Send frame with reserved ${kind} Opcode = ${opcode}${withPayload ? " and non-empty payload" : ""}.`,
            "The connection is failed immediately.",
            expect([], PEER_FAILS),
            async (f, { profile }) => {
              await f.sendFrame({ opcode, payload: withPayload ? "reserved opcode payload" : "" });
              await f.killAfter(profile.killAfterMs);
            },
          ),
        );
      } else {
        const chop = i === 4 ? 1 : undefined;
        out.push(
          def(
            id,
            `Send small text message, then send frame with reserved ${kind} Opcode = ${opcode}${withPayload ? " and non-empty payload" : ""}, then send Ping.${chop ? " Octets are sent in octet-wise chops." : ""}`,
            "Echo for first message is received, but then connection is failed immediately, since reserved opcode frame is used. A Pong is not received.",
            expect([msg(hello)], PEER_FAILS, {
              nonStrict: { events: [], reason: EARLY_FAIL_REASON },
            }),
            async (f, { profile }) => {
              const options = chop ? { chop } : {};
              await f.sendFrame({ opcode: OP.TEXT, payload: hello }, options);
              await f.sendFrame({ opcode, payload: withPayload ? hello : "" }, options);
              await f.sendFrame({ opcode: OP.PING }, options);
              await f.killAfter(profile.killAfterMs);
            },
          ),
        );
      }
    }
  }
  return out;
}

// ---- group 5: fragmentation ------------------------------------------------------------------

function group5(): ConformanceCase[] {
  const fails = (
    id: string,
    description: string,
    frames: { opcode: number; fin: boolean; payload: string }[],
    options: { sync?: boolean; chop?: number } = {},
    expectation = "The connection is failed immediately, since there is no message to continue.",
  ) =>
    def(id, description, expectation, expect([], PEER_FAILS), async (f, { profile }) => {
      for (const frame of frames) await f.sendFrame(frame, options);
      await f.killAfter(profile.killAfterMs);
    });
  const echoed = (
    id: string,
    description: string,
    options: { sync?: boolean; chop?: number },
    ping: boolean,
  ) =>
    def(
      id,
      description,
      ping
        ? "A pong is received, then the message is echo'ed back to us."
        : "Message is processed and echo'ed back to us.",
      expect(
        ping ? [pong("ping payload"), msg("fragment1fragment2")] : [msg("fragment1fragment2")],
        NORMAL,
      ),
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.TEXT, fin: false, payload: "fragment1" }, options);
        if (ping) await f.sendFrame({ opcode: OP.PING, payload: "ping payload" }, options);
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: true, payload: "fragment2" }, options);
        await f.closeAfter(profile.killAfterMs);
      },
    );
  const nothingToContinue = (fin: boolean) => [
    { opcode: OP.CONTINUATION, fin, payload: "non-continuation payload" },
    { opcode: OP.TEXT, fin: true, payload: "Hello, world!" },
  ];
  const interleaved = (id: string, sync: boolean) =>
    def(
      id,
      sync
        ? "Same as Case 5.19, but send all frames with SYNC = True. Note, this does not change the octets sent in any way, only how the stream is chopped up on the wire."
        : "A fragmented text message is sent in multiple frames. After sending the first 2 frames of the text message, a Ping is sent. Then we wait 1s, then we send 2 more text fragments, another Ping and then the final text fragment. Everything is legal.",
      "The peer immediately answers the first Ping before it has received the last text message fragment. The peer pong's back the Ping's payload exactly, and echo's the payload of the fragmented message back to us.",
      expect(
        [
          pong("pongme 1!"),
          pong("pongme 2!"),
          msg("fragment1fragment2fragment3fragment4fragment5"),
        ],
        NORMAL,
      ),
      async (f, { profile }) => {
        const o = { sync };
        await f.sendFrame({ opcode: OP.TEXT, fin: false, payload: "fragment1" }, o);
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: false, payload: "fragment2" }, o);
        await f.sendFrame({ opcode: OP.PING, payload: "pongme 1!" }, o);
        await f.wait(profile.pauseMs);
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: false, payload: "fragment3" }, o);
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: false, payload: "fragment4" }, o);
        await f.sendFrame({ opcode: OP.PING, payload: "pongme 2!" }, o);
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: true, payload: "fragment5" }, o);
        await f.closeAfter(profile.killAfterMs);
      },
    );
  return [
    fails(
      "5.1",
      "Send Ping fragmented into 2 fragments.",
      [
        { opcode: OP.PING, fin: false, payload: "fragment1" },
        { opcode: OP.CONTINUATION, fin: true, payload: "fragment2" },
      ],
      {},
      "Connection is failed immediately, since control message MUST NOT be fragmented.",
    ),
    fails(
      "5.2",
      "Send Pong fragmented into 2 fragments.",
      [
        { opcode: OP.PONG, fin: false, payload: "fragment1" },
        { opcode: OP.CONTINUATION, fin: true, payload: "fragment2" },
      ],
      {},
      "Connection is failed immediately, since control message MUST NOT be fragmented.",
    ),
    echoed("5.3", "Send text Message fragmented into 2 fragments.", {}, false),
    echoed(
      "5.4",
      "Send text Message fragmented into 2 fragments, octets are sent in frame-wise chops.",
      { sync: true },
      false,
    ),
    echoed(
      "5.5",
      "Send text Message fragmented into 2 fragments, octets are sent in octet-wise chops.",
      { chop: 1 },
      false,
    ),
    echoed(
      "5.6",
      "Send text Message fragmented into 2 fragments, one ping with payload in-between.",
      {},
      true,
    ),
    echoed(
      "5.7",
      "Send text Message fragmented into 2 fragments, one ping with payload in-between. Octets are sent in frame-wise chops.",
      { sync: true },
      true,
    ),
    echoed(
      "5.8",
      "Send text Message fragmented into 2 fragments, one ping with payload in-between. Octets are sent in octet-wise chops.",
      { chop: 1 },
      true,
    ),
    fails(
      "5.9",
      "Send unfragmented Text Message after Continuation Frame with FIN = true, where there is nothing to continue, sent in one chop.",
      nothingToContinue(true),
    ),
    fails(
      "5.10",
      "Send unfragmented Text Message after Continuation Frame with FIN = true, where there is nothing to continue, sent in per-frame chops.",
      nothingToContinue(true),
      { sync: true },
    ),
    fails(
      "5.11",
      "Send unfragmented Text Message after Continuation Frame with FIN = true, where there is nothing to continue, sent in octet-wise chops.",
      nothingToContinue(true),
      { chop: 1 },
    ),
    fails(
      "5.12",
      "Send unfragmented Text Message after Continuation Frame with FIN = false, where there is nothing to continue, sent in one chop.",
      nothingToContinue(false),
    ),
    fails(
      "5.13",
      "Send unfragmented Text Message after Continuation Frame with FIN = false, where there is nothing to continue, sent in per-frame chops.",
      nothingToContinue(false),
      { sync: true },
    ),
    fails(
      "5.14",
      "Send unfragmented Text Message after Continuation Frame with FIN = false, where there is nothing to continue, sent in octet-wise chops.",
      nothingToContinue(false),
      { chop: 1 },
    ),
    def(
      "5.15",
      "Send text Message fragmented into 2 fragments, then Continuation Frame with FIN = false where there is nothing to continue, then unfragmented Text Message, all sent in one chop.",
      "The connection is failed immediately, since there is no message to continue.",
      expect([msg("fragment1fragment2")], PEER_FAILS, {
        nonStrict: { events: [], reason: EARLY_FAIL_REASON },
      }),
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.TEXT, fin: false, payload: "fragment1" });
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: true, payload: "fragment2" });
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: false, payload: "fragment3" });
        await f.sendFrame({ opcode: OP.TEXT, fin: true, payload: "fragment4" });
        await f.killAfter(profile.killAfterMs);
      },
    ),
    ...[false, true].map((fin, i) =>
      fails(
        `5.${16 + i}`,
        `Repeated 2x: Continuation Frame with FIN = ${fin} (where there is nothing to continue), then text Message fragmented into 2 fragments.`,
        [0, 1].flatMap(() => [
          { opcode: OP.CONTINUATION, fin, payload: "fragment1" },
          { opcode: OP.TEXT, fin: false, payload: "fragment2" },
          { opcode: OP.CONTINUATION, fin: true, payload: "fragment3" },
        ]),
      ),
    ),
    fails(
      "5.18",
      "Send text Message fragmented into 2 fragments, with both frame opcodes set to text, sent in one chop.",
      [
        { opcode: OP.TEXT, fin: false, payload: "fragment1" },
        { opcode: OP.TEXT, fin: true, payload: "fragment2" },
      ],
      {},
      "The connection is failed immediately, since all data frames after the initial data frame must have opcode 0.",
    ),
    interleaved("5.19", false),
    interleaved("5.20", true),
  ];
}

// ---- group 6: UTF-8 handling -----------------------------------------------------------------

const HELLO_UTF8 = Buffer.from("Hello-µ@ßöäüàá-UTF-8!!", "utf8");
const KOSME = hex("cebae1bdb9cf83cebcceb5");
const INVALID_6_3 = Buffer.concat([KOSME, hex("eda080"), hex("656469746564")]);

function utf8Case(
  id: string,
  description: string,
  payload: Buffer,
  valid: boolean,
  fragmentSize?: number,
): ConformanceCase {
  return def(
    id,
    description,
    valid
      ? "The message is echo'ed back to us."
      : "The connection is failed immediately, since the payload is not valid UTF-8.",
    valid ? expect([msg(payload)], NORMAL) : expect([], PEER_FAILS_UTF8),
    async (f, { profile }) => {
      await f.sendMessage(payload, false, fragmentSize ? { fragmentSize } : {});
      await f.killAfter(profile.killAfterMs);
    },
  );
}

function failFast(
  id: string,
  description: string,
  parts: [Buffer, Buffer, Buffer],
  oneFrame: boolean,
): ConformanceCase {
  return def(
    id,
    `${description} Parts: ${parts.map((p) => p.toString("hex")).join(" | ")}.`,
    "The first part is accepted, we expect to timeout on the first wait. The 2nd part should be rejected immediately (fail fast on UTF-8). If we timeout, we expect the connection is failed at least then, since the complete message payload is not valid UTF-8.",
    expect([marker("A")], PEER_FAILS_UTF8, {
      nonStrict: { events: [marker("A"), marker("B")], reason: FAIL_FAST_REASON },
    }),
    async (f, { profile }) => {
      const [p1, p2, p3] = parts;
      if (oneFrame) {
        const frame = f.beginFrame(OP.TEXT, p1.length + p2.length + p3.length);
        f.sendFramePart(frame, p1);
        await f.wait(profile.pauseMs);
        if (!f.open) return f.killAfter(profile.killAfterMs);
        f.mark("A");
        f.sendFramePart(frame, p2);
        await f.wait(profile.pauseMs);
        if (!f.open) return f.killAfter(profile.killAfterMs);
        f.mark("B");
        f.sendFramePart(frame, p3);
      } else {
        await f.sendFrame({ opcode: OP.TEXT, fin: false, payload: p1 });
        await f.wait(profile.pauseMs);
        if (!f.open) return f.killAfter(profile.killAfterMs);
        f.mark("A");
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: false, payload: p2 });
        await f.wait(profile.pauseMs);
        if (!f.open) return f.killAfter(profile.killAfterMs);
        f.mark("B");
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: true, payload: p3 });
      }
      await f.killAfter(profile.killAfterMs);
    },
  );
}

function group6(): ConformanceCase[] {
  const out: ConformanceCase[] = [
    utf8Case("6.1.1", "Send text message of length 0.", Buffer.alloc(0), true),
    def(
      "6.1.2",
      "Send fragmented text message, 3 fragments each of length 0.",
      "A message is echo'ed back to us (with empty payload).",
      expect([msg("")], NORMAL),
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.TEXT, fin: false });
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: false });
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: true });
        await f.closeAfter(profile.killAfterMs);
      },
    ),
    def(
      "6.1.3",
      "Send fragmented text message, 3 fragments, first and last of length 0, middle non-empty.",
      "A message is echo'ed back to us (with payload = payload of middle fragment).",
      expect([msg("middle frame payload")], NORMAL),
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.TEXT, fin: false });
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: false, payload: "middle frame payload" });
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: true });
        await f.closeAfter(profile.killAfterMs);
      },
    ),
    utf8Case(
      "6.2.1",
      `Send a valid UTF-8 text message in one fragment. MESSAGE: ${HELLO_UTF8.toString("hex")}`,
      HELLO_UTF8,
      true,
    ),
    def(
      "6.2.2",
      "Send a valid UTF-8 text message in two fragments, fragmented on UTF-8 code point boundary.",
      "The message is echo'ed back to us.",
      expect([msg(HELLO_UTF8)], NORMAL),
      async (f, { profile }) => {
        const cut = Buffer.from("Hello-µ@ßöä", "utf8").length;
        await f.sendFrame({ opcode: OP.TEXT, fin: false, payload: HELLO_UTF8.subarray(0, cut) });
        await f.sendFrame({
          opcode: OP.CONTINUATION,
          fin: true,
          payload: HELLO_UTF8.subarray(cut),
        });
        await f.closeAfter(profile.killAfterMs);
      },
    ),
    utf8Case(
      "6.2.3",
      "Send a valid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends.",
      HELLO_UTF8,
      true,
      1,
    ),
    utf8Case(
      "6.2.4",
      `Send a valid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends. MESSAGE: ${KOSME.toString("hex")}`,
      KOSME,
      true,
      1,
    ),
    utf8Case(
      "6.3.1",
      `Send invalid UTF-8 text message unfragmented. MESSAGE: ${INVALID_6_3.toString("hex")}`,
      INVALID_6_3,
      false,
    ),
    utf8Case(
      "6.3.2",
      "Send invalid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends.",
      INVALID_6_3,
      false,
      1,
    ),
  ];
  // 6.4.x: KOSME, then U+110000 in the UTF-8 integer scheme (invalid on its second octet), then "edited".
  const bad = hex("f4908080");
  const tail = hex("656469746564");
  const whole = Buffer.concat([KOSME, bad, tail]);
  const byOctet: [Buffer, Buffer, Buffer] = [
    whole.subarray(0, 12),
    whole.subarray(12, 13),
    whole.subarray(13),
  ];
  out.push(
    failFast(
      "6.4.1",
      "Send invalid UTF-8 text message in 3 fragments (frames). First frame payload is valid, then wait, then 2nd frame which contains the payload making the sequence invalid, then wait, then 3rd frame with rest.",
      [KOSME, bad, tail],
      false,
    ),
    failFast(
      "6.4.2",
      "Same as Case 6.4.1, but in 2nd frame, we send only up to and including the octet making the complete payload invalid.",
      byOctet,
      false,
    ),
    failFast(
      "6.4.3",
      "Same as Case 6.4.1, but we send message not in 3 frames, but in 3 chops of the same message frame.",
      [KOSME, bad, tail],
      true,
    ),
    failFast(
      "6.4.4",
      "Same as Case 6.4.2, but we send message not in 3 frames, but in 3 chops of the same message frame.",
      byOctet,
      true,
    ),
  );
  UTF8_GROUPS.forEach((group, gi) => {
    group.sequences.forEach((seq, si) => {
      const id = `6.${UTF8_FIRST_SUBGROUP + gi}.${si + 1}`;
      const what = seq.valid ? "which is valid UTF-8" : "which is not valid UTF-8";
      out.push(
        utf8Case(
          id,
          `${group.title}: send a text message with payload ${what} in one fragment. Payload: 0x${seq.hex}`,
          hex(seq.hex),
          seq.valid,
        ),
      );
    });
  });
  return out;
}

// ---- group 7: close handling -----------------------------------------------------------------

function group7(): ConformanceCase[] {
  const closeFirst = (
    id: string,
    description: string,
    expectation: string,
    close: CloseExpectation,
    run: Script,
    more: Partial<ConformanceCase> = {},
  ) => def(id, description, expectation, expect([], close, { suppressAutoClose: true }), run, more);
  const protocolErrorOrDrop: CloseExpectation = {
    closedByFuzzer: true,
    codes: [1002],
    requireClean: false,
  };
  const out: ConformanceCase[] = [
    def(
      "7.1.1",
      "Send a message followed by a close frame",
      "Echoed message followed by clean close with normal code.",
      expect([msg("Hello World!")], NORMAL),
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.TEXT, payload: "Hello World!" });
        await f.killAfter(profile.killAfterMs);
      },
    ),
    closeFirst(
      "7.1.2",
      "Send two close frames",
      "Clean close with normal code. Second close frame ignored.",
      NORMAL,
      async (f, { profile }) => {
        await f.sendClose(1000);
        await f.sendFrame({ opcode: OP.CLOSE });
        await f.killAfter(profile.killAfterMs);
      },
    ),
    closeFirst(
      "7.1.3",
      "Send a ping after close message",
      "Clean close with normal code, no pong.",
      NORMAL,
      async (f, { profile }) => {
        await f.sendClose(1000);
        await f.sendFrame({ opcode: OP.PING });
        await f.killAfter(profile.killAfterMs);
      },
    ),
    closeFirst(
      "7.1.4",
      "Send text message after sending a close frame.",
      "Clean close with normal code. Text message ignored.",
      NORMAL,
      async (f, { profile }) => {
        await f.sendClose(1000);
        await f.sendFrame({ opcode: OP.TEXT, payload: "Hello World!" });
        await f.killAfter(profile.killAfterMs);
      },
    ),
    closeFirst(
      "7.1.5",
      "Send message fragment1 followed by close then fragment",
      "Clean close with normal code.",
      NORMAL,
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.TEXT, fin: false, payload: "fragment1" });
        await f.sendClose(1000);
        await f.sendFrame({ opcode: OP.CONTINUATION, fin: true, payload: "fragment2" });
        await f.killAfter(profile.killAfterMs);
      },
    ),
    closeFirst(
      "7.1.6",
      "Send 256K message followed by close then a ping",
      "Case outcome depends on implementation defined close behavior. Message and close frame are sent back to back. If the close frame is processed before the text message write is complete (as can happen in asynchronous processing models) the close frame is processed first and the text message may not be received or may only be partially received.",
      NORMAL,
      async (f, { profile }) => {
        await f.sendFrame({ opcode: OP.TEXT, payload: repeat("BAsd7&jh23", 256 * KiB) });
        await f.sendFrame({ opcode: OP.TEXT, payload: "Hello World!" });
        await f.sendClose(1000);
        await f.sendFrame({ opcode: OP.PING });
        await f.killAfter(profile.killAfterMs);
      },
      {
        informational: (f) => {
          const got = f.events.filter((e) => e.kind === "message").length;
          return got === 2
            ? "Text message was processed before close: both messages were echoed before the closing handshake."
            : `Close was processed before the text messages could be returned (${got} of 2 echoed).`;
        },
      },
    ),
    closeFirst(
      "7.3.1",
      "Send a close frame with payload length 0 (no close code, no close reason)",
      "Clean close with normal code.",
      NORMAL,
      async (f, { profile }) => {
        await f.sendClose(null);
        await f.killAfter(profile.killAfterMs);
      },
    ),
    closeFirst(
      "7.3.2",
      "Send a close frame with payload length 1",
      "Clean close with protocol error or drop TCP.",
      protocolErrorOrDrop,
      async (f, { profile }) => {
        await f.sendClose(null, "a");
        await f.killAfter(profile.killAfterMs);
      },
    ),
    closeFirst(
      "7.3.3",
      "Send a close frame with payload length 2 (regular close with a code)",
      "Clean close with normal code.",
      NORMAL,
      async (f, { profile }) => {
        await f.sendClose(1000);
        await f.killAfter(profile.killAfterMs);
      },
    ),
    closeFirst(
      "7.3.4",
      "Send a close frame with close code and close reason",
      "Clean close with normal code.",
      NORMAL,
      async (f, { profile }) => {
        await f.sendClose(1000, "Hello World!");
        await f.killAfter(profile.killAfterMs);
      },
    ),
    closeFirst(
      "7.3.5",
      "Send a close frame with close code and close reason of maximum length (123)",
      "Clean close with normal code.",
      NORMAL,
      async (f, { profile }) => {
        await f.sendClose(1000, "*".repeat(123));
        await f.killAfter(profile.killAfterMs);
      },
    ),
    closeFirst(
      "7.3.6",
      "Send a close frame with close code and close reason which is too long (124) - total frame payload 126 octets",
      "Clean close with protocol error code or dropped TCP connection.",
      protocolErrorOrDrop,
      async (f, { profile }) => {
        await f.sendClose(1000, "*".repeat(124));
        await f.killAfter(profile.killAfterMs);
      },
    ),
    closeFirst(
      "7.5.1",
      "Send a close frame with invalid UTF8 payload",
      "Clean close with protocol error or invalid utf8 code or dropped TCP.",
      { closedByFuzzer: true, codes: [1002, 1007], requireClean: false },
      async (f, { profile }) => {
        await f.sendClose(1000, INVALID_6_3_WITH_EDITED);
        await f.killAfter(profile.killAfterMs);
      },
    ),
  ];
  const valid = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999, 1012, 1013, 1014,
  ];
  valid.forEach((code, i) => {
    out.push(
      closeFirst(
        `7.7.${i + 1}`,
        `Send close with valid close code ${code}${i >= 13 ? " (extra case: code registered after Autobahn's list)" : ""}`,
        "Clean close with normal or echoed code",
        { closedByFuzzer: true, codes: [1000, code], requireClean: true },
        async (f, { profile }) => {
          await f.sendClose(code);
          await f.killAfter(profile.killAfterMs);
        },
        i >= 13 ? { extra: true } : {},
      ),
    );
  });
  const invalid = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 1015];
  invalid.forEach((code, i) => {
    out.push(
      closeFirst(
        `7.9.${i + 1}`,
        `Send close with invalid close code ${code}${i >= 9 ? " (extra case: 1015 is reserved for local use and must never be sent)" : ""}`,
        "Clean close with protocol error code or drop TCP",
        protocolErrorOrDrop,
        async (f, { profile }) => {
          await f.sendClose(code);
          await f.killAfter(profile.killAfterMs);
        },
        i >= 9 ? { extra: true } : {},
      ),
    );
  });
  [5000, 65535].forEach((code, i) => {
    out.push(
      closeFirst(
        `7.13.${i + 1}`,
        `Send close with close code ${code}`,
        "Actual events are undefined by the spec.",
        { closedByFuzzer: true, codes: [1000, code, 1002], requireClean: false },
        async (f, { profile }) => {
          await f.sendClose(code);
          await f.killAfter(profile.killAfterMs);
        },
        {
          informational: (f) =>
            `Actual events are undefined by the spec. The peer answered ${f.peerCloseCode === null ? "without a close code (or dropped TCP)" : `with close code ${f.peerCloseCode}`}.`,
        },
      ),
    );
  });
  return out;
}

const INVALID_6_3_WITH_EDITED = hex("cebae1bdb9cf83cebcceb5eda080656469746564");

// ---- group 9: limits and performance ---------------------------------------------------------

/** Send `payload` (already framed by `send`), wait for one echo, judge it, then close. */
async function echoOnce(
  f: Fuzzer,
  send: () => Promise<void>,
  payload: Buffer,
  binary: boolean,
  waitMs: number,
  profile: Profile,
): Promise<void> {
  const kind = binary ? "binary" : "text";
  const started = performance.now();
  await send();
  const got = await withTimeout(f.nextMessage(), waitMs);
  const ms = Math.round(performance.now() - started);
  if (got === null || got.kind !== "message") {
    f.outcome = {
      verdict: "FAILED",
      text: `Did not receive message within ${waitMs / 1000} seconds.`,
    };
  } else if (got.binary !== binary) {
    f.outcome = {
      verdict: "FAILED",
      text: `Expected ${kind} message with payload, but got ${got.binary ? "binary" : "text"}.`,
    };
  } else if (got.data.length !== payload.length) {
    f.outcome = {
      verdict: "FAILED",
      text: `Expected ${kind} message with payload of length ${payload.length}, but got ${got.data.length}.`,
    };
  } else if (!got.data.equals(payload)) {
    f.outcome = {
      verdict: "FAILED",
      text: `Echoed ${kind} message of length ${payload.length} differs from what was sent.`,
    };
  } else {
    f.outcome = {
      verdict: "OK",
      text: `Received ${kind} message of length ${payload.length} in ${ms} ms.`,
    };
  }
  f.notes.push(`round trip ${ms} ms`);
  await f.sendClose(1000);
  await f.killAfter(profile.killAfterMs * 2);
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  const ac = new AbortController();
  const timer = sleep(ms, null, { signal: ac.signal }).catch(() => null);
  try {
    return await Promise.race([promise, timer]);
  } finally {
    ac.abort();
  }
}

function group9(profile: Profile): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  const script = { script: true as const, close: NORMAL };
  const big = [64 * KiB, 256 * KiB, MiB, 4 * MiB, 8 * MiB, 16 * MiB];
  for (const binary of [false, true]) {
    const kind = binary ? "binary" : "text";
    big.forEach((length, i) => {
      const pattern = binary ? hex("00fe23faf0") : "BAsd7&jh23";
      out.push(
        def(
          `9.${binary ? 2 : 1}.${i + 1}`,
          `Send ${kind} message message with payload of length ${size(length)}.`,
          `Receive echo'ed ${kind} message (with payload as sent).`,
          script,
          async (f) => {
            const payload = repeat(pattern, length);
            await echoOnce(
              f,
              () => f.sendFrame({ opcode: binary ? OP.BINARY : OP.TEXT, payload }),
              payload,
              binary,
              100_000,
              profile,
            );
          },
          { heavy: true, timeoutMs: 120_000 },
        ),
      );
    });
  }
  const fragments = [64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB];
  for (const binary of [false, true]) {
    const kind = binary ? "binary" : "text";
    fragments.forEach((fragmentSize, i) => {
      const length = profile.fragmentedBytes;
      out.push(
        def(
          `9.${binary ? 4 : 3}.${i + 1}`,
          `Send fragmented ${kind} message message with message payload of length ${size(length)}. Sent out in fragments of ${size(fragmentSize)}.`,
          `Receive echo'ed ${kind} message (with payload as sent).`,
          script,
          async (f) => {
            const payload = repeat(binary ? "\xfe" : "*", length);
            await echoOnce(
              f,
              () => f.sendMessage(payload, binary, { fragmentSize }),
              payload,
              binary,
              100_000,
              profile,
            );
          },
          { heavy: true, timeoutMs: 120_000 },
        ),
      );
    });
  }
  const chops = [64, 128, 256, 512, 1024, 2048];
  for (const binary of [false, true]) {
    const kind = binary ? "binary" : "text";
    chops.forEach((chop, i) => {
      const length = profile.choppedBytes;
      out.push(
        def(
          `9.${binary ? 6 : 5}.${i + 1}`,
          `Send ${kind} message message with payload of length ${size(length)}. Sent out data in chops of ${chop} octets.`,
          `Receive echo'ed ${kind} message (with payload as sent).`,
          script,
          async (f) => {
            const payload = repeat(binary ? hex("00fe23faf0") : "BAsd7&jh23", length);
            await echoOnce(
              f,
              () => f.sendFrame({ opcode: binary ? OP.BINARY : OP.TEXT, payload }, { chop }),
              payload,
              binary,
              100_000,
              profile,
            );
          },
          { heavy: true, timeoutMs: 120_000 },
        ),
      );
    });
  }
  const rtt = [0, 16, 64, 256, 1024, 4096];
  for (const binary of [false, true]) {
    const kind = binary ? "binary" : "text";
    rtt.forEach((length, i) => {
      const count = profile.roundTrips;
      out.push(
        def(
          `9.${binary ? 8 : 7}.${i + 1}`,
          `Send ${count} ${kind} messages of payload size ${length} to measure implementation/network RTT (round trip time) / latency.`,
          `Receive echo'ed ${kind} messages (with payload as sent). Timeout case after 60 secs.`,
          script,
          async (f) => {
            const payload = repeat(binary ? "\xfe" : "*", length);
            const started = performance.now();
            for (let n = 0; n < count; n++) {
              await f.sendFrame({ opcode: binary ? OP.BINARY : OP.TEXT, payload });
              const got = await withTimeout(f.nextMessage(), 60_000);
              if (
                got === null ||
                got.kind !== "message" ||
                got.binary !== binary ||
                !got.data.equals(payload)
              ) {
                f.outcome = {
                  verdict: "FAILED",
                  text:
                    got === null
                      ? `No echo for message ${n + 1} within 60 seconds.`
                      : `Echo of message ${n + 1} differs from what was sent.`,
                };
                break;
              }
            }
            const ms = Math.round(performance.now() - started);
            f.outcome ??= {
              verdict: "OK",
              text: `Ok, received all ${count} echo'ed messages in ${ms} ms.`,
            };
            f.notes.push(`${count} round trips in ${ms} ms`);
            await f.sendClose(1000);
            await f.killAfter(profile.killAfterMs * 2);
          },
          { heavy: true, timeoutMs: 120_000 },
        ),
      );
    });
  }
  return out;
}

// ---- group 10: auto-fragmentation ------------------------------------------------------------

function group10(): ConformanceCase[] {
  const payload = repeat("*", 65536);
  const fragment = 1300;
  return [
    def(
      "10.1.1",
      `Send text message with payload of length 65536 auto-fragmented with autoFragmentSize = ${fragment}.`,
      "Receive echo'ed text message (with payload as sent and transmitted frame counts as expected). Clean close with normal code.",
      expect([msg(payload)], NORMAL),
      async (f) => {
        await f.sendMessage(payload, false, { fragmentSize: fragment });
        f.notes.push(
          `sent ${Math.ceil(payload.length / fragment)} frames (${Math.floor(payload.length / fragment)} of ${fragment} octets and one of ${payload.length % fragment})`,
        );
        await f.killAfter(10_000);
      },
    ),
  ];
}

// ---- groups 12 and 13: permessage-deflate ------------------------------------------------------

/** (payload length, auto-fragment size) of each case in a subgroup (Autobahn's MSG_SIZES). */
const MSG_SIZES: readonly (readonly [number, number])[] = [
  [16, 0],
  [64, 0],
  [256, 0],
  [1024, 0],
  [4096, 0],
  [8192, 0],
  [16384, 0],
  [32768, 0],
  [65536, 0],
  [131072, 0],
  [8192, 256],
  [16384, 256],
  [32768, 256],
  [65536, 256],
  [131072, 256],
  [131072, 1024],
  [131072, 4096],
  [131072, 32768],
];

function deflateScript(
  doc: TestDocument,
  length: number,
  autoFragment: number,
  count: number,
  profile: Profile,
): Script {
  return async (f) => {
    if (f.deflate === null) {
      f.outcome = { verdict: "UNIMPLEMENTED", text: "permessage-deflate was not negotiated." };
      await f.sendClose(1000);
      await f.killAfter(profile.killAfterMs);
      return;
    }
    const cursor = new MessageCursor(doc, length);
    let sent = 0;
    let compressed = 0;
    const started = performance.now();
    for (let n = 0; n < count; n++) {
      const payload = cursor.next();
      sent += payload.length;
      compressed += await f.sendCompressed(payload, doc.binary, autoFragment);
      const got = await withTimeout(f.nextMessage(), 30_000);
      if (got === null || got.kind !== "message") {
        f.outcome = { verdict: "FAILED", text: `No echo for message ${n + 1} within 30 seconds.` };
        break;
      }
      if (got.binary !== doc.binary) {
        f.outcome = {
          verdict: "FAILED",
          text: `Echo'ed message type differs from what I sent (got binary ${got.binary}, expected binary ${doc.binary}).`,
        };
        break;
      }
      if (!got.data.equals(payload)) {
        f.outcome = {
          verdict: "FAILED",
          text: `Echo'ed message ${n + 1} differs from what I sent (length ${got.data.length}, expected ${payload.length}).`,
        };
        break;
      }
    }
    const ms = Math.round(performance.now() - started);
    f.outcome ??= {
      verdict: "OK",
      text: `Ok, received all ${count} echo'ed messages in ${ms} ms.`,
    };
    if (sent > 0)
      f.notes.push(
        `fuzzer compression ratio ${(compressed / sent).toFixed(3)} (${sent} → ${compressed} bytes)`,
      );
    await f.sendClose(1000);
    await f.killAfter(profile.killAfterMs * 2);
  };
}

const ACCEPT_DEFAULT: AcceptRule = { requestNoContextTakeover: false, requestMaxWindowBits: 0 };

function deflateCases(
  subgroup: string,
  doc: TestDocument,
  offers: readonly Offer[],
  accept: readonly AcceptRule[],
  setting: string,
  profile: Profile,
): ConformanceCase[] {
  return MSG_SIZES.map(([length, autoFragment], i) => {
    const count = deflateCount(profile, length);
    return def(
      `${subgroup}.${i + 1}`,
      `Send ${count} compressed messages each of payload size ${length}, auto-fragment to ${autoFragment} octets. ${doc.description}, ${doc.binary ? "binary" : "text"}. ${setting}`,
      "Receive echo'ed messages (with payload as sent).",
      { script: true, close: NORMAL },
      deflateScript(doc, length, autoFragment, count, profile),
      { deflate: { offers, accept }, heavy: length * count >= 8 * MiB, timeoutMs: 240_000 },
    );
  });
}

function group12(profile: Profile): ConformanceCase[] {
  return testDocuments().flatMap((doc, j) =>
    deflateCases(
      `12.${j + 1}`,
      doc,
      [DEFAULT_OFFER],
      [ACCEPT_DEFAULT],
      "Use default permessage-deflate offer.",
      profile,
    ),
  );
}

/** Group 13 parameter sets: client offers and the fuzzing server's answer, as in Autobahn. */
export const DEFLATE_PARAMETER_SETS: readonly {
  offers: readonly Offer[];
  accept: readonly AcceptRule[];
  text: string;
}[] = (() => {
  const o = (nct: boolean, bits: number): Offer => ({
    requestNoContextTakeover: nct,
    requestMaxWindowBits: bits,
    clientNoContextTakeover: nct,
    clientMaxWindowBits: bits,
  });
  const a = (nct: boolean, bits: number): AcceptRule => ({
    requestNoContextTakeover: nct,
    requestMaxWindowBits: bits,
  });
  const describe = (offers: readonly Offer[], accept: readonly AcceptRule[]): string =>
    `Client offers (no_context_takeover, max_window_bits) for both directions: ${offers
      .map((x) => `(${x.requestNoContextTakeover}, ${x.requestMaxWindowBits})`)
      .join(", ")}; server accepts (requestNoContextTakeover, requestMaxWindowBits): ${accept
      .map((x) => `(${x.requestNoContextTakeover}, ${x.requestMaxWindowBits})`)
      .join(", ")}.`;
  const sets: { offers: Offer[]; accept: AcceptRule[] }[] = [
    { offers: [DEFAULT_OFFER], accept: [a(false, 0)] },
    { offers: [o(true, 0)], accept: [a(true, 0)] },
    { offers: [o(false, 9)], accept: [a(false, 9)] },
    { offers: [o(false, 15)], accept: [a(false, 15)] },
    { offers: [o(true, 9)], accept: [a(true, 9)] },
    { offers: [o(true, 15)], accept: [a(true, 15)] },
    {
      offers: [o(true, 9), o(true, 0), DEFAULT_OFFER],
      accept: [a(true, 9), a(true, 0), a(false, 0)],
    },
  ];
  return sets.map((s) => ({ ...s, text: describe(s.offers, s.accept) }));
})();

function group13(profile: Profile): ConformanceCase[] {
  const doc = testDocuments()[0]!;
  return DEFLATE_PARAMETER_SETS.flatMap((set, j) =>
    deflateCases(`13.${j + 1}`, doc, set.offers, set.accept, set.text, profile),
  );
}

/** Every case, in Autobahn order, for a profile. */
export function buildCases(profile: Profile): ConformanceCase[] {
  return [
    ...group1(),
    ...group2(),
    ...group3(),
    ...group4(),
    ...group5(),
    ...group6(),
    ...group7(),
    ...group9(profile),
    ...group10(),
    ...group12(profile),
    ...group13(profile),
  ];
}

/** The groups and their Autobahn titles. */
export const GROUP_TITLES: Readonly<Record<string, string>> = {
  "1": "Framing",
  "2": "Pings/Pongs",
  "3": "Reserved Bits",
  "4": "Opcodes",
  "5": "Fragmentation",
  "6": "UTF-8 Handling",
  "7": "Close Handling",
  "9": "Limits/Performance",
  "10": "Auto-Fragmentation",
  "12": "WebSocket Compression (different payloads)",
  "13": "WebSocket Compression (different parameters)",
};
