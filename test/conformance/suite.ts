/**
 * Runs the case list for both roles:
 *
 * - role "server": a fuzzing client (fuzzer.ts, masking) opens one connection per case to an echo
 *   server — by default Duplex's WebSocketServer, started in-process on 127.0.0.1:0 with
 *   permessage-deflate enabled and maxMessageBytes raised to 32 MiB for group 9;
 * - role "client": a fuzzing server (a raw net server that does the server side of the opening
 *   handshake itself) receives one connection per case from an echo agent — by default Duplex's
 *   WebSocket client, which sends back every message it receives, as Autobahn's client agents do.
 *
 * Independent cases run concurrently (a weighted semaphore keeps large ones few at a time).
 */
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "../../src/client/index.js";
import { type WebSocketConnection, WebSocketServer } from "../../src/server/index.js";
import { buildCases } from "./cases.js";
import {
  acceptOffers,
  checkResponse,
  clientOptionsFor,
  type DeflateParams,
  type Extension,
  formatExtension,
  offerExtension,
  parseExtensions,
} from "./deflate.js";
import { Fuzzer } from "./fuzzer.js";
import {
  type CaseResult,
  type ConformanceCase,
  compareIds,
  evaluate,
  finalVerdict,
  groupOf,
  type Profile,
  type Role,
  sameEvents,
} from "./model.js";
import { acceptFor, hasToken, header, parseHead, readHead } from "./wire.js";

/** A server under test, listening. */
export interface ServerTarget {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Options our echo agent needs per case (client role). */
export interface AgentOptions {
  readonly perMessageDeflate: boolean | ReturnType<typeof clientOptionsFor>;
  readonly maxMessageBytes: number;
}

/** Connect a client under test to `url` and echo every message; resolve once it is closed. */
export type ClientAgent = (url: string, options: AgentOptions) => Promise<void>;

export interface SuiteOptions {
  readonly profile: Profile;
  readonly roles: readonly Role[];
  /** Cases running at the same time (a heavy case counts for half of it). @default 12 */
  readonly concurrency?: number;
  readonly filter?: (c: ConformanceCase) => boolean;
  /** The server under test. @default Duplex's WebSocketServer echo */
  readonly startServer?: () => Promise<ServerTarget>;
  /** The client under test. @default Duplex's WebSocket echo agent */
  readonly clientAgent?: ClientAgent;
  /** Called after each case. */
  readonly onResult?: (result: CaseResult) => void;
  /** zlib level of the fuzzer's own compression (groups 12/13). @default 6 */
  readonly compressionLevel?: number;
}

export interface SuiteRun {
  readonly profile: Profile;
  readonly startedAt: string;
  readonly durationMs: number;
  /** Wall time per role (the roles run interleaved, so these overlap). */
  readonly roleDurationMs: Partial<Record<Role, number>>;
  readonly results: CaseResult[];
}

/** Largest message the suite's peers accept (group 9 sends 16 MiB). */
export const SUITE_MAX_MESSAGE = 32 * 1024 * 1024;

/** Duplex's WebSocketServer as an echo server on 127.0.0.1:0. */
export async function startDuplexServer(): Promise<ServerTarget> {
  const server = await new Promise<WebSocketServer>((resolve, reject) => {
    const s: WebSocketServer = new WebSocketServer(
      {
        port: 0,
        host: "127.0.0.1",
        perMessageDeflate: true,
        limits: { maxMessageBytes: SUITE_MAX_MESSAGE },
        pingIntervalMs: 0,
        closeTimeoutMs: 5000,
        maxOutboundBytes: 2 * SUITE_MAX_MESSAGE,
      },
      () => resolve(s),
    );
    s.once("error", reject);
  });
  server.on("connection", (conn: WebSocketConnection) => {
    conn.on("message", (data: Buffer, isBinary: boolean) => {
      if (conn.readyState === 1) conn.send(data, { binary: isBinary });
    });
  });
  const address = server.address() as net.AddressInfo;
  return {
    host: "127.0.0.1",
    port: address.port,
    close: () => server.close(1000),
  };
}

/** Duplex's WebSocket client as an echo agent. */
export const duplexAgent: ClientAgent = (url, options) =>
  new Promise<void>((resolve) => {
    const ws = new WebSocket(url, [], {
      perMessageDeflate: options.perMessageDeflate,
      limits: { maxMessageBytes: options.maxMessageBytes },
      handshakeTimeoutMs: 5000,
      closeTimeoutMs: 5000,
    });
    ws.binaryType = "nodebuffer";
    ws.onmessage = (event) => ws.send(event.data as string | Buffer);
    ws.onerror = () => {};
    ws.onclose = () => resolve();
  });

// ---- scheduling ------------------------------------------------------------------------------

class Semaphore {
  private free: number;
  private readonly waiting: { weight: number; go: () => void }[] = [];

  constructor(capacity: number) {
    this.free = capacity;
  }

  async run<T>(weight: number, task: () => Promise<T>): Promise<T> {
    if (this.free >= weight && this.waiting.length === 0) this.free -= weight;
    else await new Promise<void>((go) => this.waiting.push({ weight, go }));
    try {
      return await task();
    } finally {
      this.free += weight;
      while (this.waiting.length > 0 && this.free >= this.waiting[0]!.weight) {
        const next = this.waiting.shift()!;
        this.free -= next.weight;
        next.go();
      }
    }
  }
}

// ---- one case --------------------------------------------------------------------------------

const DEFAULT_TIMEOUT_MS = 30_000;

/** Run the case script on an attached fuzzer, with Autobahn's auto-close and a time limit. */
async function drive(c: ConformanceCase, f: Fuzzer, role: Role, profile: Profile): Promise<void> {
  const expect = c.expect;
  if (!("script" in expect) && expect.close.closedByFuzzer && expect.suppressAutoClose !== true) {
    // Autobahn's finishWhenDone: once the events match every expected outcome, close normally.
    const alternatives = [
      expect.ok,
      ...(expect.nonStrict === undefined ? [] : [expect.nonStrict.events]),
    ];
    f.onEvent = () => {
      if (alternatives.every((a) => sameEvents(f.events, a)))
        void f.sendClose(expect.close.codes[0] ?? 1000);
    };
  }
  const limit = c.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const ac = new AbortController();
  const timedOut = sleep(limit, "timeout", { signal: ac.signal }).catch(() => "aborted");
  const outcome = await Promise.race([
    c.run(f, { role, profile }).then(
      () => "done",
      (error: unknown) => {
        f.note(`script error: ${(error as Error).stack ?? String(error)}`);
        f.harnessError(`the case script threw: ${(error as Error).message}`);
        return "error";
      },
    ),
    timedOut,
  ]);
  ac.abort();
  if (outcome === "timeout") f.note(`case time limit of ${limit} ms reached`);
  if (!f.ended) f.kill(outcome === "timeout" ? "case time limit" : "script finished");
  await f.settled();
}

function makeResult(c: ConformanceCase, f: Fuzzer, role: Role, durationMs: number): CaseResult {
  const judged = evaluate(c, f, role);
  return {
    id: c.id,
    group: groupOf(c.id),
    role,
    extra: c.extra === true,
    description: c.description,
    expectation: c.expectation,
    verdict: finalVerdict(judged.behavior, judged.behaviorClose),
    behavior: judged.behavior,
    behaviorClose: judged.behaviorClose,
    result: judged.result,
    resultClose: judged.resultClose,
    ...(judged.nonStrictReason === undefined ? {} : { nonStrictReason: judged.nonStrictReason }),
    durationMs: Math.round(durationMs),
    observed: f.observation(),
  };
}

// ---- role "server": the fuzzer is a client ---------------------------------------------------

async function runAgainstServer(
  c: ConformanceCase,
  target: ServerTarget,
  profile: Profile,
  level: number,
): Promise<CaseResult> {
  const started = performance.now();
  const f = new Fuzzer("client");
  const socket = net.connect(target.port, target.host);
  socket.on("error", () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const key = randomBytes(16).toString("base64");
    const offers = c.deflate?.offers ?? [];
    const lines = [
      `GET /runCase?case=${encodeURIComponent(c.id)}&agent=fuzzer HTTP/1.1`,
      `Host: ${target.host}:${target.port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      ...(offers.length > 0
        ? [
            `Sec-WebSocket-Extensions: ${offers.map((o) => formatExtension(offerExtension(o))).join(", ")}`,
          ]
        : []),
    ];
    socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    const { head, rest } = await withDeadline(
      readHead(socket),
      5000,
      "no handshake response within 5 s",
    );
    const parsed = parseHead(head);
    if (parsed === null || !/^HTTP\/1\.1 101( |$)/.test(parsed.startLine)) {
      throw new Error(`expected 101, got "${parsed?.startLine ?? head.slice(0, 80)}"`);
    }
    if (header(parsed, "upgrade")?.toLowerCase() !== "websocket")
      throw new Error("Upgrade header is not websocket");
    if (!hasToken(header(parsed, "connection"), "upgrade"))
      throw new Error("Connection header lacks upgrade");
    if (header(parsed, "sec-websocket-accept") !== acceptFor(key))
      throw new Error("wrong Sec-WebSocket-Accept");
    const extHeader = header(parsed, "sec-websocket-extensions");
    let deflate: DeflateParams | null = null;
    if (extHeader !== undefined && extHeader !== "") {
      const exts = parseExtensions(extHeader);
      if (exts === null) throw new Error(`malformed Sec-WebSocket-Extensions "${extHeader}"`);
      if (offers.length === 0)
        throw new Error(`server accepted an extension that was not offered: ${extHeader}`);
      if (exts.length !== 1) throw new Error(`server accepted ${exts.length} extensions`);
      const checked = checkResponse(exts[0]!, offers);
      if (typeof checked === "string") throw new Error(checked);
      deflate = checked;
      f.extensions = extHeader;
    }
    f.handshake = parsed.startLine;
    f.attach(socket, rest, deflate, level);
  } catch (error) {
    f.handshake = (error as Error).message;
    socket.destroy();
    return makeResult(c, f, "server", performance.now() - started);
  }
  await drive(c, f, "server", profile);
  return makeResult(c, f, "server", performance.now() - started);
}

// ---- role "client": the fuzzer is a server ---------------------------------------------------

interface Pending {
  readonly c: ConformanceCase;
  readonly connected: (f: Fuzzer | Error) => void;
}

/** The fuzzing server: one listening socket, connections routed to cases by path. */
class FuzzingServer {
  private readonly server = net.createServer((socket) => void this.accept(socket));
  private readonly pending = new Map<string, Pending>();
  private level = 6;
  port = 0;

  async listen(level: number): Promise<void> {
    this.level = level;
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  expect(token: string, pending: Pending): void {
    this.pending.set(token, pending);
  }

  forget(token: string): void {
    this.pending.delete(token);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async accept(socket: net.Socket): Promise<void> {
    socket.on("error", () => {});
    let head: string;
    let rest: Buffer;
    try {
      ({ head, rest } = await withDeadline(readHead(socket), 5000, "no request"));
    } catch {
      socket.destroy();
      return;
    }
    const parsed = parseHead(head);
    const target = parsed?.startLine.split(" ")[1] ?? "";
    const token = target.split("/")[2] ?? "";
    const pending = this.pending.get(token);
    if (parsed === null || pending === undefined) {
      socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    this.pending.delete(token);
    const problem = checkRequest(parsed);
    if (problem !== null) {
      socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
      pending.connected(new Error(`invalid opening handshake request: ${problem}`));
      return;
    }
    let deflate: DeflateParams | null = null;
    let response: Extension | null = null;
    const setup = pending.c.deflate;
    const extHeader = header(parsed, "sec-websocket-extensions");
    if (setup !== undefined && extHeader !== undefined) {
      const offers = parseExtensions(extHeader);
      if (offers === null) {
        socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        pending.connected(new Error(`malformed Sec-WebSocket-Extensions "${extHeader}"`));
        return;
      }
      const accepted = acceptOffers(offers, setup.accept);
      if (accepted !== null) {
        deflate = accepted.params;
        response = accepted.response;
      }
    }
    const key = header(parsed, "sec-websocket-key") ?? "";
    const lines = [
      "HTTP/1.1 101 Switching Protocols",
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Accept: ${acceptFor(key)}`,
      ...(response === null ? [] : [`Sec-WebSocket-Extensions: ${formatExtension(response)}`]),
    ];
    socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    const f = new Fuzzer("server");
    f.handshake = `${parsed.startLine}${extHeader === undefined ? "" : ` (offered: ${extHeader})`}`;
    f.extensions = response === null ? "" : formatExtension(response);
    f.attach(socket, rest, deflate, this.level);
    pending.connected(f);
  }
}

/** RFC 6455 §4.1 requirements on a client's opening handshake; null when fine. */
function checkRequest(head: NonNullable<ReturnType<typeof parseHead>>): string | null {
  const [method, , version] = head.startLine.split(" ");
  if (method !== "GET") return `method ${method}`;
  if (version !== "HTTP/1.1") return `version ${version}`;
  if (header(head, "host") === undefined) return "no Host header";
  if (header(head, "upgrade")?.toLowerCase() !== "websocket") return "Upgrade is not websocket";
  if (!hasToken(header(head, "connection"), "upgrade")) return "Connection lacks upgrade";
  if (header(head, "sec-websocket-version") !== "13") return "Sec-WebSocket-Version is not 13";
  const key = header(head, "sec-websocket-key") ?? "";
  if (Buffer.from(key, "base64").length !== 16 || !/^[A-Za-z0-9+/]{22}==$/.test(key)) {
    return `Sec-WebSocket-Key "${key}" is not 16 bytes in base64`;
  }
  return null;
}

let tokens = 0;

async function runAgainstClient(
  c: ConformanceCase,
  fuzzing: FuzzingServer,
  agent: ClientAgent,
  profile: Profile,
): Promise<CaseResult> {
  const started = performance.now();
  const token = `c${++tokens}-${c.id}`;
  const connected = new Promise<Fuzzer | Error>((resolve) =>
    fuzzing.expect(token, { c, connected: resolve }),
  );
  const offer = c.deflate?.offers[0];
  const agentDone = agent(`ws://127.0.0.1:${fuzzing.port}/case/${token}`, {
    perMessageDeflate: offer === undefined ? true : clientOptionsFor(offer),
    maxMessageBytes: SUITE_MAX_MESSAGE,
  }).catch(() => {});
  const got = await withDeadline(connected, 5000, "the client did not connect within 5 s").catch(
    (e: Error) => e,
  );
  fuzzing.forget(token);
  let f: Fuzzer;
  if (got instanceof Error) {
    f = new Fuzzer("server");
    f.handshake = got.message;
  } else {
    f = got;
    await drive(c, f, "client", profile);
  }
  // The agent must be done too (its socket closed); do not wait forever.
  await withDeadline(agentDone, 10_000, "agent did not finish").catch(() =>
    f.note("the client did not report close within 10 s"),
  );
  return makeResult(c, f, "client", performance.now() - started);
}

// ---- the suite --------------------------------------------------------------------------------

export async function runSuite(options: SuiteOptions): Promise<SuiteRun> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const cases = buildCases(options.profile).filter(options.filter ?? (() => true));
  const capacity = options.concurrency ?? 12;
  const heavyWeight = Math.max(1, Math.ceil(capacity / 2));
  const sem = new Semaphore(capacity);
  const level = options.compressionLevel ?? 6;
  const results: CaseResult[] = [];
  const roleDurationMs: Partial<Record<Role, number>> = {};

  const jobs: Promise<void>[] = [];
  let target: ServerTarget | null = null;
  let fuzzing: FuzzingServer | null = null;
  try {
    for (const role of options.roles) {
      const runOne =
        role === "server"
          ? await (async () => {
              target = await (options.startServer ?? startDuplexServer)();
              const t = target;
              return (c: ConformanceCase) => runAgainstServer(c, t, options.profile, level);
            })()
          : await (async () => {
              fuzzing = new FuzzingServer();
              await fuzzing.listen(level);
              const fs = fuzzing;
              const agent = options.clientAgent ?? duplexAgent;
              return (c: ConformanceCase) => runAgainstClient(c, fs, agent, options.profile);
            })();
      const applicable = cases.filter((c) => (c.roles ?? ["server", "client"]).includes(role));
      // Long cases first, so they do not end up alone at the tail of the run.
      const ordered = [...applicable.filter((c) => c.heavy), ...applicable.filter((c) => !c.heavy)];
      const roleStart = performance.now();
      jobs.push(
        Promise.all(
          ordered.map((c) =>
            sem.run(c.heavy ? heavyWeight : 1, async () => {
              const result = await runOne(c);
              results.push(result);
              options.onResult?.(result);
            }),
          ),
        ).then(() => {
          roleDurationMs[role] = Math.round(performance.now() - roleStart);
        }),
      );
    }
    await Promise.all(jobs);
  } finally {
    const t = target as ServerTarget | null;
    const fz = fuzzing as FuzzingServer | null;
    await t?.close();
    await fz?.close();
  }
  results.sort((a, b) =>
    a.role === b.role ? compareIds(a.id, b.id) : a.role === "server" ? -1 : 1,
  );
  return {
    profile: options.profile,
    startedAt,
    durationMs: Math.round(performance.now() - started),
    roleDurationMs,
    results,
  };
}

async function withDeadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  const ac = new AbortController();
  try {
    return await Promise.race([
      promise,
      sleep(ms, null, { signal: ac.signal }).then(() => {
        throw new Error(message);
      }),
    ]);
  } finally {
    ac.abort();
  }
}
