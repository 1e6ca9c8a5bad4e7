/**
 * `npm run bench:transports` — what each transport of the realtime client costs: bytes on the
 * wire per message and latency, for WebSocket, SSE (+ POSTs) and long-polling (+ POSTs).
 * Method and results: docs/transports.md.
 *
 *   npm run bench:transports                    500 messages per scenario, 100 B payloads
 *   npm run bench:transports -- --messages 2000 more messages
 *   npm run bench:transports -- --payload 1000  payload size (bytes of the JSON `pad` string)
 *   npm run bench:transports -- --rate 200      deliveries per second in the "deliver" scenario
 *   npm run bench:transports -- --json out.json also write the results as JSON
 *   npm run bench:transports -- --compression   the server compresses: permessage-deflate for
 *                                               WebSocket, gzip for SSE and long-polling
 *
 * Layout: one process, loopback only. A RealtimeServer (MemoryBroker, default options but
 * publish "all") and the
 * SDK client (RealtimeClient from the Node entry, the transport forced with `transports`)
 * talk through a TCP relay that counts the bytes each way (TCP payload: HTTP and WebSocket
 * framing included, TCP/IP headers not). Latency is read on one clock (performance.now()).
 *
 * Scenarios, per transport, each on a fresh server:
 *   setup     connect() until the first subscription is subscribed: bytes and time (the
 *             median of 5 connections)
 *   deliver   the server publishes N messages at --rate per second to the subscribed client;
 *             latency = delivery - publish; bytes per message
 *   publish   the client publishes N messages one after another, each awaiting its ack; latency
 *             = ack - publish(); bytes per message
 *   burst     the client publishes N (at most 1000, the outbox) messages at once (the outbox sends them as it can: one
 *             message per WebSocket frame, batches of up to 50 per POST); bytes per message and
 *             the time until the last ack
 *   idle      a connection with one subscription and no traffic for 5 s with every keepalive
 *             interval divided by 25 (client ping, WebSocket ping, SSE comment, poll timeout),
 *             scaled back to bytes per hour at the default intervals
 */
import { writeFileSync } from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { parseArgs } from "node:util";
import { MemoryBroker } from "../../src/broker/index.js";
import {
  type PublicationEvent,
  RealtimeClient,
  type TransportKind,
} from "../../src/realtime/client/node.js";
import { RealtimeServer, type RealtimeServerOptions } from "../../src/realtime/index.js";
import { markdownTable } from "../lib/report.js";
import { quantile } from "../lib/stats.js";
import { sleep, until } from "../lib/time.js";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "500" },
    payload: { type: "string", default: "100" },
    rate: { type: "string", default: "100" },
    json: { type: "string" },
    compression: { type: "boolean", default: false },
  },
});
const COMPRESSION = values.compression === true;
const N = Number(values.messages);
const PAD = "x".repeat(Number(values.payload));
const RATE = Number(values.rate);
const TRANSPORTS: readonly TransportKind[] = ["websocket", "sse", "polling"];
/** The idle scenario runs every keepalive 25 times faster and scales back. */
const IDLE_SPEEDUP = 25;
const IDLE_MS = 5000;
const SETUPS = 5;
/** Publishes of the burst scenario: N, at most the client's default outbox size. */
const BURST = Math.min(N, 1000);

interface Counter {
  up: number;
  down: number;
}

/** A TCP relay that counts the bytes going up (client → server) and down. */
async function countingRelay(target: number): Promise<{
  port: number;
  count: Counter;
  /** Start counting from 0 again. */
  reset(): void;
  close(): Promise<void>;
}> {
  const count: Counter = { up: 0, down: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(target, "127.0.0.1");
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("error", () => {
        inbound.destroy();
        outbound.destroy();
      });
      s.on("close", () => {
        sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.on("data", (d: Buffer) => {
      count.up += d.length;
      outbound.write(d);
    });
    outbound.on("data", (d: Buffer) => {
      count.down += d.length;
      inbound.write(d);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    count,
    reset() {
      count.up = 0;
      count.down = 0;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface Setup {
  rt: RealtimeServer;
  relay: Awaited<ReturnType<typeof countingRelay>>;
  close(): Promise<void>;
}

async function start(options: Partial<RealtimeServerOptions> = {}, ping = {}): Promise<Setup> {
  const broker = new MemoryBroker();
  // Publishing to a channel one is not subscribed to is allowed (the "publish" scenarios).
  const rt = new RealtimeServer({
    broker,
    namespaces: { "": { publish: "all" } },
    ...options,
    httpTransports: { ...options.httpTransports, compression: COMPRESSION },
  });
  await rt.start();
  const server = http.createServer((req, res) => {
    if (!rt.handleHttp(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  rt.attach(server, "/realtime", { ...ping, perMessageDeflate: COMPRESSION });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const relay = await countingRelay((server.address() as net.AddressInfo).port);
  return {
    rt,
    relay,
    async close() {
      await rt.close(500);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await relay.close();
      await broker.close();
    },
  };
}

function client(s: Setup, transport: TransportKind): RealtimeClient {
  return new RealtimeClient(`ws://127.0.0.1:${s.relay.port}/realtime`, {
    transports: [transport],
    probeIntervalMs: 0,
    onlineEvents: null,
  });
}

async function connectAndSubscribe(c: RealtimeClient, channel: string): Promise<void> {
  const sub = c.channel(channel);
  const subscribed = new Promise<void>((resolve) => {
    const off = sub.on("subscribed", () => {
      off();
      resolve();
    });
  });
  sub.subscribe();
  c.connect();
  await subscribed;
}

interface Latency {
  p50: number;
  p99: number;
  max: number;
}

function latency(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? 0 };
}

interface Traffic {
  bytesPerMessage: number;
  up: number;
  down: number;
  latency: Latency;
}

/** Bytes per message (both ways, up, down) of `n` messages, and their latency. */
function traffic(count: Counter, n: number, samples: number[]): Traffic {
  return {
    bytesPerMessage: (count.up + count.down) / n,
    up: count.up / n,
    down: count.down / n,
    latency: latency(samples),
  };
}

interface Result {
  transport: TransportKind;
  setup: { bytes: number; ms: number };
  deliver: Traffic;
  publish: Traffic;
  burst: { bytesPerMessage: number; ms: number };
  idle: { bytesPerHour: number };
}

async function measure(transport: TransportKind): Promise<Result> {
  // setup + deliver
  let s = await start();
  // Setup: the median of SETUPS connections (the first fetch() of a process loads undici).
  const setups: Array<{ bytes: number; ms: number }> = [];
  for (let k = 0; k < SETUPS; k++) {
    const warm = client(s, transport);
    s.relay.reset();
    const t0 = performance.now();
    await connectAndSubscribe(warm, `setup-${k}`);
    setups.push({ bytes: s.relay.count.up + s.relay.count.down, ms: performance.now() - t0 });
    warm.close();
    await sleep(100); // its goodbye (HTTP transports) is not the next one's setup
  }
  setups.sort((a, b) => a.ms - b.ms);
  const setup = setups[Math.floor(SETUPS / 2)]!;
  let c = client(s, transport);
  await connectAndSubscribe(c, "feed");
  await sleep(100);
  const got: number[] = [];
  c.channel<{ t: number; pad: string }>("feed").on(
    "publication",
    (p: PublicationEvent<{ t: number; pad: string }>) => got.push(performance.now() - p.data.t),
  );
  s.relay.reset();
  const every = 1000 / RATE;
  const begin = performance.now();
  for (let i = 0; i < N; i++) {
    const due = begin + i * every;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    await s.rt.publish("feed", { t: performance.now(), pad: PAD });
  }
  await until(() => got.length >= N, 30_000, "deliveries", 2);
  const deliver = traffic(s.relay.count, N, got);

  // publish (sequential, acked), on a channel the client is not subscribed to
  s.relay.reset();
  const acks: number[] = [];
  for (let i = 0; i < N; i++) {
    const at = performance.now();
    await c.publish("sink", { pad: PAD });
    acks.push(performance.now() - at);
  }
  const publish = traffic(s.relay.count, N, acks);

  // burst
  s.relay.reset();
  const b0 = performance.now();
  await Promise.all(Array.from({ length: BURST }, () => c.publish("sink", { pad: PAD })));
  const burst = {
    bytesPerMessage: (s.relay.count.up + s.relay.count.down) / BURST,
    ms: performance.now() - b0,
  };
  c.close();
  await s.close();

  // idle, every keepalive IDLE_SPEEDUP times faster
  s = await start(
    {
      clientPingMs: 25_000 / IDLE_SPEEDUP,
      httpTransports: {
        keepaliveMs: 15_000 / IDLE_SPEEDUP,
        pollTimeoutMs: 25_000 / IDLE_SPEEDUP,
      },
    },
    { pingIntervalMs: 30_000 / IDLE_SPEEDUP },
  );
  c = client(s, transport);
  await connectAndSubscribe(c, "quiet");
  await sleep(200);
  s.relay.reset();
  await sleep(IDLE_MS);
  const idleBytes = s.relay.count.up + s.relay.count.down;
  const idle = { bytesPerHour: (idleBytes / IDLE_SPEEDUP) * (3_600_000 / IDLE_MS) };
  c.close();
  await s.close();
  return { transport, setup, deliver, publish, burst, idle };
}

const f0 = (n: number): string => n.toFixed(0);
const f1 = (n: number): string => n.toFixed(1);
const f2 = (n: number): string => n.toFixed(2);

const results: Result[] = [];
for (const t of TRANSPORTS) {
  process.stderr.write(`measuring ${t}…\n`);
  results.push(await measure(t));
}

const payload = JSON.stringify({ t: 0, pad: PAD }).length;
console.log(
  `\n${N} messages per scenario, payload ${PAD.length} B of pad (${payload} B of JSON data), ` +
    `deliveries at ${RATE}/s, Node ${process.version}, loopback` +
    (COMPRESSION
      ? ", compression on (the pad is one repeated character: a best case for deflate)\n"
      : "\n"),
);
/** "bytes/msg (up+down)" and "p50 / p99 / max ms" of a deliver or publish measurement. */
const bytes = (t: Traffic): string => `${f0(t.bytesPerMessage)} (${f0(t.up)}+${f0(t.down)})`;
const lat = (t: Traffic): string =>
  `${f2(t.latency.p50)} / ${f2(t.latency.p99)} / ${f2(t.latency.max)}`;
console.log(
  markdownTable(
    [
      "transport",
      "setup: bytes, ms",
      "deliver: bytes/msg (up+down)",
      "deliver latency p50 / p99 / max ms",
      "publish+ack: bytes/msg (up+down)",
      "ack latency p50 / p99 / max ms",
      "burst: bytes/msg, ms for all",
      "idle: bytes/hour",
    ],
    results.map((r) => [
      r.transport,
      `${f0(r.setup.bytes)}, ${f1(r.setup.ms)}`,
      bytes(r.deliver),
      lat(r.deliver),
      bytes(r.publish),
      lat(r.publish),
      `${f0(r.burst.bytesPerMessage)}, ${f0(r.burst.ms)}`,
      f0(r.idle.bytesPerHour),
    ]),
  ),
);
if (values.json !== undefined) {
  writeFileSync(
    values.json,
    JSON.stringify({ messages: N, payload: PAD.length, rate: RATE, results }, null, 2),
  );
}
process.exit(0);
