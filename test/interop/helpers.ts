/** Shared pieces of the interop tests: our server with a recording echo, payloads, child peers. */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import type * as http from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import {
  type ServerOptions,
  type WebSocketConnection,
  WebSocketServer,
} from "../../src/server/index.js";

export const ASCII = "hello, interop";
export const EMOJI = "héllo wörld — 😀🎉 ✓ 漢字 𝄞";
/** A UTF-8 close reason (well under the 123-byte limit). */
export const CLOSE_REASON = "bye ✓ — 😀";

export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Deterministic bytes that do not compress (xorshift32). */
export function noise(size: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Text that compresses well (JSON-like lines, ASCII and a little UTF-8). */
export function compressibleText(bytes: number): string {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = `{"id":${i},"name":"user-${i % 97}","tags":["a","b","ç"]}\n`;
    parts.push(line);
    size += Buffer.byteLength(line);
  }
  const text = parts.join("");
  // Cut to exactly `bytes` bytes on an ASCII character.
  return Buffer.from(text).subarray(0, bytes).toString("utf8");
}

export interface Received {
  readonly binary: boolean;
  readonly size: number;
  readonly sha256: string;
}

export interface ClosedInfo {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
  /** Bytes the peer sent us / we sent the peer on the TCP connection (handshake included). */
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

/** What our server saw of one connection. */
export interface Observed {
  readonly conn: WebSocketConnection;
  readonly req: http.IncomingMessage;
  readonly received: Received[];
  readonly closed: Promise<ClosedInfo>;
}

export interface Started {
  readonly server: WebSocketServer;
  readonly url: string;
  readonly port: number;
  /** The next connection our server accepts (in order of acceptance). */
  next(): Promise<Observed>;
}

/**
 * Our server on an ephemeral loopback port. Every message is recorded and echoed with its type
 * (unless `echo` is false); `onConnection` runs first for each connection.
 */
export async function startDuplex(
  options: Omit<ServerOptions, "port">,
  behaviour: { echo?: boolean; onConnection?: (o: Observed) => void } = {},
): Promise<Started> {
  const server = await new Promise<WebSocketServer>((resolve) => {
    const s: WebSocketServer = new WebSocketServer(
      { port: 0, host: "127.0.0.1", pingIntervalMs: 0, ...options },
      () => resolve(s),
    );
  });
  const ready: Observed[] = [];
  const waiting: ((o: Observed) => void)[] = [];
  server.on("connection", (conn: WebSocketConnection, req: http.IncomingMessage) => {
    const received: Received[] = [];
    const socket = req.socket;
    const closed = new Promise<ClosedInfo>((resolve) => {
      conn.on("close", (code: number, reason: string, wasClean: boolean) => {
        resolve({
          code,
          reason,
          wasClean,
          bytesRead: socket.bytesRead,
          bytesWritten: socket.bytesWritten,
        });
      });
    });
    conn.on("error", () => {});
    conn.on("message", (data: Buffer, isBinary: boolean) => {
      received.push({ binary: isBinary, size: data.length, sha256: sha256(data) });
      if (behaviour.echo !== false) conn.send(data, { binary: isBinary });
    });
    const observed: Observed = { conn, req, received, closed };
    behaviour.onConnection?.(observed);
    const waiter = waiting.shift();
    if (waiter !== undefined) waiter(observed);
    else ready.push(observed);
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `ws://127.0.0.1:${port}`,
    next: () => {
      const first = ready.shift();
      if (first !== undefined) return Promise.resolve(first);
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}

/** The record our side expects for a message. */
export function expected(data: string | Uint8Array): Received {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  return { binary: typeof data !== "string", size: bytes.length, sha256: sha256(bytes) };
}

/** Reject after `ms` with a message naming what was awaited. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A child process whose stdout is read as JSON lines. */
export interface JsonChild {
  readonly child: ChildProcess;
  /** The next JSON line printed (in order). */
  nextLine(): Promise<Record<string, unknown>>;
  readonly stderr: () => string;
  /** End stdin, wait for exit (up to 3 s), then kill by PID if still running. */
  stop(): Promise<void>;
}

export function spawnJson(command: string, args: string[]): JsonChild {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    stderr += d;
  });
  const lines: Record<string, unknown>[] = [];
  const waiting: { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }[] =
    [];
  let ended = false;
  const rl = createInterface({ input: child.stdout! });
  rl.on("line", (line) => {
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(line) as Record<string, unknown>;
    } catch {
      value = { unparsed: line };
    }
    const w = waiting.shift();
    if (w !== undefined) w.resolve(value);
    else lines.push(value);
  });
  // "close" (not "exit"): stdout has been read to its end by then.
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  child.once("close", (code, signal) => {
    ended = true;
    for (const w of waiting.splice(0)) {
      w.reject(
        new Error(`${command} exited (${code ?? signal}) without output; stderr:\n${stderr}`),
      );
    }
  });
  return {
    child,
    stderr: () => stderr,
    nextLine: () => {
      const first = lines.shift();
      if (first !== undefined) return Promise.resolve(first);
      if (ended) return Promise.reject(new Error(`${command} has exited; stderr:\n${stderr}`));
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin?.end();
      const timer = setTimeout(() => child.kill(), 3_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The parts of a WHATWG WebSocket (ours, undici's) the interop tests use. */
interface EventSource {
  addEventListener(
    type: string,
    listener: (event: Event) => void,
    options?: { once?: boolean },
  ): void;
}

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

/** Messages of a WHATWG WebSocket in arrival order. */
export function inbox(ws: EventSource): { next(what?: string): Promise<unknown> } {
  const ready: unknown[] = [];
  const waiting: ((data: unknown) => void)[] = [];
  ws.addEventListener("message", (event) => {
    const data = (event as MessageEvent).data as unknown;
    const w = waiting.shift();
    if (w !== undefined) w(data);
    else ready.push(data);
  });
  return {
    next: (what = "a message") => {
      if (ready.length > 0) return Promise.resolve(ready.shift());
      return within(15_000, what, new Promise((resolve) => waiting.push(resolve)));
    },
  };
}

/** Resolves on `open`, rejects on an `error` first. */
export function whenOpen(ws: EventSource): Promise<void> {
  return within(
    10_000,
    "open",
    new Promise((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", (e) => reject(new Error(`error before open: ${e.type}`)), {
        once: true,
      });
    }),
  );
}

/** The close event, and the event types seen before it (e.g. ["error"]). */
export function whenClosed(ws: EventSource): Promise<CloseInfo & { before: string[] }> {
  const before: string[] = [];
  ws.addEventListener("error", () => before.push("error"));
  return within(
    30_000,
    "close",
    new Promise((resolve) => {
      ws.addEventListener(
        "close",
        (event) => {
          const e = event as Event & CloseInfo;
          resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean, before });
        },
        { once: true },
      );
    }),
  );
}

/** A memoized async value: every case of a session awaits the same run. */
export function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= fn();
    return value;
  };
}

/** True when a received message (string, Buffer, ArrayBuffer, typed array) equals what was sent. */
export function sameData(received: unknown, sent: string | Uint8Array): boolean {
  if (typeof sent === "string") return received === sent;
  let bytes: Buffer;
  if (received instanceof ArrayBuffer) bytes = Buffer.from(received);
  else if (ArrayBuffer.isView(received))
    bytes = Buffer.from(received.buffer, received.byteOffset, received.byteLength);
  else return false;
  return bytes.equals(sent);
}
