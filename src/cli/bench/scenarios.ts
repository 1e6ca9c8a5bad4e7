/**
 * The three `duplex bench` load scenarios, driven by Duplex's own WHATWG client in this process:
 *
 *   echo       N connections, each with one message in flight (send, wait for the echo, send
 *              again): messages/s and round-trip latency.
 *   broadcast  N receivers and one sender; the sender publishes one message, the server sends it
 *              to every other connection, and the next message goes out once every receiver has
 *              it (one broadcast in flight): deliveries/s and send-to-receive latency.
 *   handshake  min(N, 64) slots that each open a connection, wait for `open`, close it, wait for
 *              `close`, and start again: handshakes/s and connect latency (constructor to open).
 *
 * Every scenario is bounded: connections are opened at most 64 at a time, the measurement ends
 * after the duration or on abort, and closing is given at most a few seconds.
 */
import { performance } from "node:perf_hooks";
import { WebSocket } from "../../client/index.js";
import { CliError } from "../command.js";
import { Histogram, type LatencySummary } from "./histogram.js";

export type ScenarioName = "echo" | "broadcast" | "handshake";

export const SCENARIO_UNITS: Readonly<Record<ScenarioName, string>> = {
  echo: "msg/s",
  broadcast: "deliveries/s",
  handshake: "handshakes/s",
};

/** At most this many opening handshakes in flight (no SYN floods). */
export const OPEN_CONCURRENCY = 64;
/** The handshake scenario's concurrency cap. */
export const HANDSHAKE_CONCURRENCY = 64;
/** A broadcast that not every receiver has after this long ends the scenario. */
const BROADCAST_STALL_MS = 5_000;
/** Time given to close the connections after a measurement. */
const CLOSE_GRACE_MS = 3_000;
const HANDSHAKE_TIMEOUT_MS = 5_000;

export interface ScenarioResult {
  readonly scenario: ScenarioName;
  /** Connections under load (echo), receivers (broadcast) or concurrent slots (handshake). */
  readonly connections: number;
  /** Message size in bytes (null for handshake). */
  readonly size: number | null;
  /** Measured time in seconds (shorter than asked when interrupted). */
  readonly durationS: number;
  /** Operations completed in the measured time: replies, deliveries or handshakes. */
  readonly count: number;
  /** count / durationS. */
  readonly rate: number;
  readonly unit: string;
  readonly latencyMs: LatencySummary;
  /** Connections that failed or closed unexpectedly, and deliveries that never came. */
  readonly errors: number;
  readonly interrupted: boolean;
}

/** What the progress bar reads while a scenario runs. */
export interface Live {
  phase: "connecting" | "measuring" | "closing";
  opened: number;
  toOpen: number;
  count: number;
  errors: number;
  /** performance.now() when the measurement started (0 before). */
  startedAt: number;
}

export function newLive(): Live {
  return { phase: "connecting", opened: 0, toOpen: 0, count: 0, errors: 0, startedAt: 0 };
}

/** Called when the measurement window opens and when it closes (e.g. to sample CPU time). */
export interface MeasureHooks {
  start(): void;
  end(): void;
}

export interface ScenarioOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationMs: number;
  readonly size: number;
  readonly signal: AbortSignal;
  readonly live: Live;
  readonly onMeasure?: MeasureHooks;
}

const CLIENT_OPTIONS = {
  // Measure the plain framing path: no compression, whatever the server offers.
  perMessageDeflate: false,
  handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  closeTimeoutMs: CLOSE_GRACE_MS,
} as const;

function errorMessage(event: Event): string {
  const e = event as Event & { error?: unknown; message?: string };
  if (e.error instanceof Error && e.error.message !== "") return e.error.message;
  return e.message !== undefined && e.message !== "" ? e.message : "connection failed";
}

/** Open one connection; rejects with the cause's message. */
export function openOne(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, CLIENT_OPTIONS);
    } catch (e) {
      reject(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    const onOpen = (): void => {
      ws.removeEventListener("error", onError);
      resolve(ws);
    };
    const onError = (event: Event): void => {
      ws.removeEventListener("open", onOpen);
      reject(new Error(errorMessage(event)));
    };
    ws.addEventListener("open", onOpen, { once: true });
    ws.addEventListener("error", onError, { once: true });
  });
}

/**
 * Open n connections, at most OPEN_CONCURRENCY at a time; failures are counted in live.errors.
 * Stops opening new ones on abort. Throws when not one could be opened.
 */
async function openMany(
  url: string,
  n: number,
  signal: AbortSignal,
  live: Live,
): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  let next = 0;
  let firstError: string | undefined;
  live.toOpen += n;
  const worker = async (): Promise<void> => {
    while (next < n && !signal.aborted) {
      next++;
      try {
        out.push(await openOne(url));
        live.opened++;
      } catch (e) {
        live.errors++;
        firstError ??= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, OPEN_CONCURRENCY) }, worker));
  if (out.length === 0 && !signal.aborted) {
    throw new CliError(`cannot connect to ${url}: ${firstError ?? "no connection opened"}`);
  }
  return out;
}

/** Resolves after ms, or earlier when the signal aborts; leaves no timer or listener behind. */
export function waitFor(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * The promise's value, or undefined after ms or on abort: whichever comes first. The timer and
 * the abort listener are removed either way (nothing keeps the process alive afterwards).
 */
export async function atMost<T>(
  promise: Promise<T>,
  ms: number,
  signal?: AbortSignal,
): Promise<T | undefined> {
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted === true) stop.abort();
  try {
    return await Promise.race([promise, waitFor(ms, stop.signal).then(() => undefined)]);
  } finally {
    signal?.removeEventListener("abort", onAbort);
    stop.abort();
  }
}

/** Close every connection and wait for their close events, for at most CLOSE_GRACE_MS. */
async function closeAll(sockets: readonly WebSocket[]): Promise<void> {
  const pending = sockets
    .filter((ws) => ws.readyState !== WebSocket.CLOSED)
    .map(
      (ws) =>
        new Promise<void>((resolve) => {
          ws.addEventListener("close", () => resolve(), { once: true });
          ws.close();
        }),
    );
  if (pending.length > 0) await atMost(Promise.all(pending), CLOSE_GRACE_MS + 500);
}

function result(
  scenario: ScenarioName,
  connections: number,
  size: number | null,
  measuredMs: number,
  histogram: Histogram,
  live: Live,
  interrupted: boolean,
): ScenarioResult {
  const durationS = measuredMs / 1000;
  return {
    scenario,
    connections,
    size,
    durationS,
    count: live.count,
    rate: durationS > 0 ? live.count / durationS : 0,
    unit: SCENARIO_UNITS[scenario],
    latencyMs: histogram.summary(),
    errors: live.errors,
    interrupted,
  };
}

/** A measurement window: ends after durationMs, on abort, or when stop() is called. */
class Window {
  readonly #stop = new AbortController();
  readonly #outer: AbortSignal;
  readonly #hooks: MeasureHooks | undefined;
  readonly startedAt: number;
  endedAt = 0;
  running = true;

  constructor(options: ScenarioOptions) {
    const outer = options.signal;
    this.#outer = outer;
    this.#hooks = options.onMeasure;
    this.#hooks?.start();
    this.startedAt = performance.now();
    options.live.phase = "measuring";
    options.live.startedAt = this.startedAt;
    if (outer.aborted) this.stop();
    else outer.addEventListener("abort", this.stop, { once: true });
  }

  readonly stop = (): void => {
    if (!this.running) return;
    this.running = false;
    this.endedAt = performance.now();
    this.#hooks?.end();
    this.#stop.abort();
  };

  async run(durationMs: number): Promise<{ measuredMs: number; interrupted: boolean }> {
    await waitFor(durationMs, this.#stop.signal);
    const interrupted = this.#outer.aborted;
    this.stop();
    this.#outer.removeEventListener("abort", this.stop);
    return { measuredMs: this.endedAt - this.startedAt, interrupted };
  }
}

export async function runEcho(options: ScenarioOptions): Promise<ScenarioResult> {
  const { live, signal } = options;
  const histogram = new Histogram();
  const sockets = await openMany(options.url, options.connections, signal, live);
  const payload = Buffer.alloc(options.size, 0x61);
  const window = new Window(options);
  for (const ws of sockets) {
    let sentAt = 0;
    ws.addEventListener("message", () => {
      if (!window.running) return;
      const now = performance.now();
      histogram.record(now - sentAt);
      live.count++;
      sentAt = now;
      ws.send(payload);
    });
    ws.addEventListener("close", () => {
      if (window.running) live.errors++;
    });
    sentAt = performance.now();
    ws.send(payload);
  }
  const { measuredMs, interrupted } = await window.run(options.durationMs);
  live.phase = "closing";
  await closeAll(sockets);
  return result("echo", sockets.length, options.size, measuredMs, histogram, live, interrupted);
}

export async function runBroadcast(options: ScenarioOptions): Promise<ScenarioResult> {
  const { live, signal } = options;
  const histogram = new Histogram();
  const receivers = await openMany(options.url, options.connections, signal, live);
  const [sender] = signal.aborted ? [] : await openMany(options.url, 1, signal, live);
  const sockets = sender === undefined ? receivers : [...receivers, sender];
  if (sender === undefined) {
    await closeAll(sockets);
    return result("broadcast", receivers.length, options.size, 0, histogram, live, true);
  }
  const payload = Buffer.alloc(options.size, 0x62);
  let alive = receivers.length;
  let expected = 0;
  let got = 0;
  let sentAt = 0;
  let stall: NodeJS.Timeout | undefined;
  const window = new Window(options);
  const publish = (): void => {
    if (!window.running) return;
    expected = alive;
    got = 0;
    sentAt = performance.now();
    sender.send(payload);
    clearTimeout(stall);
    stall = setTimeout(() => {
      live.errors += expected - got;
      window.stop();
    }, BROADCAST_STALL_MS);
  };
  const settle = (): void => {
    if (window.running && got >= Math.min(expected, alive)) publish();
  };
  for (const ws of receivers) {
    ws.addEventListener("message", () => {
      if (!window.running) return;
      histogram.record(performance.now() - sentAt);
      live.count++;
      got++;
      settle();
    });
    ws.addEventListener("close", () => {
      if (!window.running) return;
      live.errors++;
      alive--;
      if (alive === 0) window.stop();
      else settle();
    });
  }
  sender.addEventListener("close", () => {
    if (!window.running) return;
    live.errors++;
    window.stop();
  });
  publish();
  const { measuredMs, interrupted } = await window.run(options.durationMs);
  clearTimeout(stall);
  live.phase = "closing";
  await closeAll(sockets);
  return result(
    "broadcast",
    receivers.length,
    options.size,
    measuredMs,
    histogram,
    live,
    interrupted,
  );
}

export async function runHandshake(options: ScenarioOptions): Promise<ScenarioResult> {
  const { live, signal } = options;
  const histogram = new Histogram();
  const slots = Math.min(options.connections, HANDSHAKE_CONCURRENCY);
  const window = new Window(options);
  const open = new Set<WebSocket>();
  const slot = async (): Promise<void> => {
    while (window.running) {
      const t0 = performance.now();
      let ws: WebSocket;
      try {
        ws = new WebSocket(options.url, CLIENT_OPTIONS);
      } catch {
        live.errors++;
        return;
      }
      open.add(ws);
      const failed = await new Promise<boolean>((resolve) => {
        let error = false;
        ws.addEventListener("open", () => {
          if (window.running) {
            histogram.record(performance.now() - t0);
            live.count++;
          }
          ws.close();
        });
        ws.addEventListener("error", () => {
          error = true;
        });
        ws.addEventListener("close", () => resolve(error));
      });
      open.delete(ws);
      if (failed) {
        if (window.running) live.errors++;
        // Do not spin on a server that refuses: back off a little.
        await waitFor(10, signal);
      }
    }
  };
  const workers = Promise.all(Array.from({ length: slots }, slot));
  const { measuredMs, interrupted } = await window.run(options.durationMs);
  live.phase = "closing";
  // The slots finish their current connection; give them a bounded time.
  await atMost(workers, CLOSE_GRACE_MS + 500);
  await closeAll([...open]);
  return result("handshake", slots, null, measuredMs, histogram, live, interrupted);
}

export const SCENARIOS: Readonly<
  Record<ScenarioName, (options: ScenarioOptions) => Promise<ScenarioResult>>
> = {
  echo: runEcho,
  broadcast: runBroadcast,
  handshake: runHandshake,
};
