/**
 * The case model of the conformance suite, after the Autobahn|Testsuite: a case is an Autobahn
 * id, a description, a script that speaks raw bytes (see fuzzer.ts) and an expectation. After
 * the connection ends, what the fuzzer observed is evaluated into Autobahn's verdicts.
 *
 * Two judgements, as in Autobahn:
 * - behaviour: the events received (messages, pongs, markers) against the expected sequences —
 *   OK, NON-STRICT (an allowed but weaker behaviour; it always carries a written reason),
 *   INFORMATIONAL (the spec leaves the outcome open), UNIMPLEMENTED (an optional feature, e.g.
 *   permessage-deflate, was not negotiated) or FAILED;
 * - close behaviour: which endpoint started the close, the peer's close code, and whether the
 *   closing handshake completed — OK, or FAILED / WRONG CODE / UNCLEAN / FAILED BY CLIENT.
 * The case verdict is FAILED when either judgement failed (WRONG CODE and UNCLEAN count as FAILED
 * here), otherwise the behaviour verdict.
 *
 * One deliberate difference from Autobahn: when a case expects the peer to fail the connection
 * and the peer does nothing until the fuzzer gives up and drops TCP, Autobahn can still pass the
 * close check (no close code received is accepted as "empty"). Here a fuzzer timeout counts as
 * the fuzzer closing, so such a peer fails the "closed by the wrong endpoint" check.
 */
import type { Fuzzer } from "./fuzzer.js";

export type Verdict = "OK" | "NON-STRICT" | "INFORMATIONAL" | "UNIMPLEMENTED" | "FAILED";
export type CloseVerdict =
  | "OK"
  | "INFORMATIONAL"
  | "FAILED"
  | "WRONG CODE"
  | "UNCLEAN"
  | "FAILED BY CLIENT";

/** The implementation role under test: "server" is tested by a fuzzing client, and vice versa. */
export type Role = "server" | "client";

/** Something the fuzzer received (or a marker it set), in order. */
export type Event =
  | { readonly kind: "message"; readonly binary: boolean; readonly data: Buffer }
  | { readonly kind: "ping" | "pong"; readonly data: Buffer }
  | { readonly kind: "marker"; readonly label: string };

export const msg = (data: Buffer | string, binary = false): Event => ({
  kind: "message",
  binary,
  data: typeof data === "string" ? Buffer.from(data, "utf8") : data,
});
export const pong = (data: Buffer | string = ""): Event => ({
  kind: "pong",
  data: typeof data === "string" ? Buffer.from(data, "utf8") : data,
});
export const marker = (label: string): Event => ({ kind: "marker", label });

export function sameEvents(a: readonly Event[], b: readonly Event[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i];
    if (y === undefined || x.kind !== y.kind) return false;
    if (x.kind === "marker") return y.kind === "marker" && x.label === y.label;
    if (x.kind === "message") {
      return y.kind === "message" && x.binary === y.binary && x.data.equals(y.data);
    }
    return y.kind !== "marker" && y.kind !== "message" && x.data.equals(y.data);
  });
}

export function describeEvent(e: Event): string {
  if (e.kind === "marker") return `marker ${e.label}`;
  const shown = e.data.length <= 32 ? e.data.toString("hex") : `${e.data.length} bytes`;
  if (e.kind === "message") return `${e.binary ? "binary" : "text"} message (${shown || "empty"})`;
  return `${e.kind} (${shown || "empty"})`;
}

export interface CloseExpectation {
  /** True: the fuzzer starts the closing handshake; false: the peer must fail/close. */
  readonly closedByFuzzer: boolean;
  /** Close codes accepted from the peer (a Close without a code is always accepted). */
  readonly codes: readonly number[];
  /** The closing handshake must complete (Close frames both ways). */
  readonly requireClean: boolean;
  /**
   * UTF-8 cases: if the wrong endpoint closed, the peer never detected the problem, so the
   * behaviour fails too.
   */
  readonly wrongEndpointFatal?: boolean;
}

export interface Expectation {
  /** Events for OK. */
  readonly ok: readonly Event[];
  /** Events accepted as NON-STRICT, with the reason that justifies them. */
  readonly nonStrict?: { readonly events: readonly Event[]; readonly reason: string };
  readonly close: CloseExpectation;
  /**
   * Do not start the closing handshake when the events match (Autobahn's suppressClose: the
   * script itself sends a special Close).
   */
  readonly suppressAutoClose?: boolean;
}

export interface CaseContext {
  readonly role: Role;
  readonly profile: Profile;
}

/** What the script says when it judges the behaviour itself (groups 9, 10, 12, 13). */
export interface ScriptOutcome {
  readonly verdict: Verdict;
  readonly text: string;
}

export interface ConformanceCase {
  /** Autobahn id, e.g. "6.4.2". */
  readonly id: string;
  readonly description: string;
  readonly expectation: string;
  /** Roles the case runs for. @default both */
  readonly roles?: readonly Role[];
  /** Not in Autobahn's list: an addition of this suite (numbered after Autobahn's cases). */
  readonly extra?: boolean;
  /** Large or long: runs with less concurrency. */
  readonly heavy?: boolean;
  /** Upper bound for the whole case, in ms (the fuzzer drops the connection then). */
  readonly timeoutMs?: number;
  /** permessage-deflate setup (groups 12 and 13). */
  readonly deflate?: import("./fuzzer.js").DeflateSetup;
  /** The generic expectation; or "script" when the script reports its own outcome. */
  readonly expect: Expectation | ScriptExpectation;
  /** Drive the connection; resolve when the fuzzer is done with it (usually after kill/close). */
  readonly run: (f: Fuzzer, ctx: CaseContext) => Promise<void>;
  /** Informational cases: a function that describes what happened instead of judging it. */
  readonly informational?: (f: Fuzzer) => string;
}

export interface ScriptExpectation {
  readonly script: true;
  readonly close: CloseExpectation;
}

/** Settings that trade run time against thoroughness (docs/conformance.md lists both). */
export interface Profile {
  readonly name: "full" | "quick";
  /** Messages per 9.7.x / 9.8.x case (Autobahn: 1000). */
  readonly roundTrips: number;
  /** Message size of 9.3.x / 9.4.x (Autobahn: 4 MiB). */
  readonly fragmentedBytes: number;
  /** Message size of 9.5.x / 9.6.x (Autobahn: 1 MiB). */
  readonly choppedBytes: number;
  /** Messages per 12.x / 13.x case (Autobahn: 1000), but see deflateBytes. */
  readonly deflateMessages: number;
  /**
   * Payload budget of one 12.x / 13.x case: large messages are sent fewer times (at least 2, so
   * context takeover is exercised). Infinity: always deflateMessages (Autobahn's numbers).
   */
  readonly deflateBytes: number;
  /** The waits of 5.19/5.20 and 6.4.x (Autobahn: 1 s). */
  readonly pauseMs: number;
  /** How long the fuzzer waits for a peer that should react (Autobahn: killAfter(1)). */
  readonly killAfterMs: number;
}

export const FULL: Profile = {
  name: "full",
  roundTrips: 1000,
  fragmentedBytes: 4 * 1024 * 1024,
  choppedBytes: 1024 * 1024,
  deflateMessages: 1000,
  deflateBytes: 4 * 1024 * 1024,
  pauseMs: 1000,
  killAfterMs: 1000,
};

/** Messages sent by a 12.x / 13.x case of this payload length. */
export function deflateCount(profile: Profile, length: number): number {
  if (length === 0 || !Number.isFinite(profile.deflateBytes)) return profile.deflateMessages;
  return Math.max(2, Math.min(profile.deflateMessages, Math.floor(profile.deflateBytes / length)));
}

export const QUICK: Profile = {
  name: "quick",
  roundTrips: 100,
  fragmentedBytes: 1024 * 1024,
  choppedBytes: 256 * 1024,
  deflateMessages: 20,
  deflateBytes: 256 * 1024,
  pauseMs: 500,
  // More margin than Autobahn's 1 s: the gate runs next to CPU-heavy cases. Passing cases do not
  // wait for it (they end when the peer closes); only a peer that fails to react does.
  killAfterMs: 2000,
};

/** What the fuzzer saw, kept in the report. */
export interface Observed {
  readonly handshake: string;
  readonly extensions: string;
  readonly events: string[];
  readonly eventCount: number;
  /** Who started the close: "fuzzer" (Close first, or gave up and dropped TCP) or "peer". */
  readonly closedBy: "fuzzer" | "peer";
  readonly closeSent: string | null;
  readonly closeReceived: string | null;
  readonly remoteCloseCode: number | null;
  readonly wasClean: boolean;
  /** The fuzzer gave up waiting and dropped the TCP connection. */
  readonly killed: boolean;
  /** The fuzzing client had to drop TCP after the closing handshake (the server did not). */
  readonly droppedByFuzzerClient: boolean;
  readonly tcpReset: boolean;
  readonly violations: string[];
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly trace: string[];
  readonly notes: string[];
}

export interface CaseResult {
  readonly id: string;
  readonly group: string;
  readonly role: Role;
  readonly extra: boolean;
  readonly description: string;
  readonly expectation: string;
  readonly verdict: Verdict;
  readonly behavior: Verdict;
  readonly behaviorClose: CloseVerdict;
  readonly result: string;
  readonly resultClose: string;
  /** Set for NON-STRICT verdicts: why the weaker behaviour is allowed. */
  readonly nonStrictReason?: string;
  readonly durationMs: number;
  readonly observed: Observed;
}

/** Top-level group of an id ("6.4.2" → "6"). */
export function groupOf(id: string): string {
  return id.split(".")[0] ?? id;
}

/** Compare ids numerically ("6.10.1" after "6.9.4"). */
export function compareIds(a: string, b: string): number {
  const x = a.split(".").map(Number);
  const y = b.split(".").map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

interface Judgement {
  behavior: Verdict;
  result: string;
  behaviorClose: CloseVerdict;
  resultClose: string;
  nonStrictReason?: string;
}

/** Evaluate an observation against a case (see the header comment). */
export function evaluate(c: ConformanceCase, f: Fuzzer, role: Role): Judgement {
  const obs = f.observation();
  if (!f.opened) {
    return {
      behavior: "FAILED",
      result: `The WebSocket opening handshake was never completed: ${obs.handshake}`,
      behaviorClose: "FAILED",
      resultClose: "The WebSocket opening handshake was never completed",
    };
  }
  const expect = c.expect;
  let behavior: Verdict = "FAILED";
  let result = "Actual events differ from any expected.";
  let nonStrictReason: string | undefined;
  if ("script" in expect) {
    const outcome = f.outcome ?? { verdict: "FAILED", text: "The case did not finish in time." };
    behavior = outcome.verdict;
    result = outcome.text;
  } else if (sameEvents(f.events, expect.ok)) {
    behavior = "OK";
    result = "Actual events match at least one expected.";
  } else if (expect.nonStrict !== undefined && sameEvents(f.events, expect.nonStrict.events)) {
    behavior = "NON-STRICT";
    result = "Actual events match the non-strict expectation.";
    nonStrictReason = expect.nonStrict.reason;
  }

  const close = expect.close;
  const closedByFuzzer = obs.closedBy === "fuzzer";
  let behaviorClose: CloseVerdict = "OK";
  let resultClose = "Connection was properly closed";
  if (close.closedByFuzzer !== closedByFuzzer) {
    behaviorClose = "FAILED";
    resultClose = close.closedByFuzzer
      ? "The connection was failed by the wrong endpoint (the peer closed first)"
      : obs.killed
        ? "The peer never failed the connection: the fuzzer gave up and dropped TCP"
        : "The connection was failed by the wrong endpoint (the fuzzer closed first)";
  } else if (close.requireClean && !obs.wasClean) {
    behaviorClose = "UNCLEAN";
    resultClose = "The spec requires the connection to be closed cleanly here";
  } else if (obs.remoteCloseCode !== null && !close.codes.includes(obs.remoteCloseCode)) {
    behaviorClose = "WRONG CODE";
    resultClose = `The close code should have been ${close.codes.join(",")} or empty, got ${obs.remoteCloseCode}`;
  } else if (role === "server" && obs.droppedByFuzzerClient) {
    behaviorClose = "FAILED BY CLIENT";
    resultClose = "The server did not close the TCP connection after the closing handshake";
  }
  if (close.wrongEndpointFatal === true && close.closedByFuzzer !== closedByFuzzer) {
    behavior = "FAILED";
    result = `${result} The peer did not fail the connection itself.`;
  }
  if (obs.violations.length > 0) {
    behavior = "FAILED";
    result = `Protocol violation by the peer: ${obs.violations.join("; ")}`;
  }
  if (c.informational !== undefined && obs.violations.length === 0) {
    return {
      behavior: "INFORMATIONAL",
      result: c.informational(f),
      behaviorClose: "INFORMATIONAL",
      resultClose,
    };
  }
  if (behavior === "UNIMPLEMENTED") {
    return { behavior, result, behaviorClose, resultClose };
  }
  return {
    behavior,
    result,
    behaviorClose,
    resultClose,
    ...(nonStrictReason === undefined ? {} : { nonStrictReason }),
  };
}

/** The case verdict from the two judgements. */
export function finalVerdict(behavior: Verdict, behaviorClose: CloseVerdict): Verdict {
  if (behavior === "FAILED") return "FAILED";
  if (behaviorClose !== "OK" && behaviorClose !== "INFORMATIONAL") return "FAILED";
  return behavior;
}
