/**
 * `npm run bench:cluster` — what scaling out over Redis costs, and how a node's clients come back
 * when it shuts down. Results go to reports/bench-cluster.json and the table printed at the end;
 * docs/scaling.md quotes them.
 *
 *   npm run bench:cluster                      everything (about a minute)
 *   npm run bench:cluster -- --rate 500        publications per second (default 200)
 *   npm run bench:cluster -- --seconds 5       measured seconds per latency run (default 10)
 *   npm run bench:cluster -- --subs 400        subscribers in the latency runs (default 200)
 *   npm run bench:cluster -- --drain-clients 2000   clients in the drain runs (default 1000)
 *   npm run bench:cluster -- --only latency    only the latency runs (or: drain)
 *
 * Latency runs (one after another, each on fresh processes):
 *   single node   one `duplex serve` on the memory broker; nginx in front (one upstream)
 *   3 nodes       three `duplex serve --broker redis://…` nodes; the publisher is connected to
 *                 node 1 directly, the subscribers through an nginx whose upstream is nodes 2
 *                 and 3 (round-robin), so every delivery crosses Redis from one node to another
 * One publisher sends `rate` publications per second (~200 B JSON with its send time) to one
 * channel for 2 s of warm-up and `seconds` measured; latency = receive time − send time, taken in
 * this process for every subscriber and publication. Publish acknowledgements are timed too.
 *
 * Drain runs: 3 nodes behind nginx, N idle clients (the Node SDK, one channel each of four),
 * node 1 gets SIGTERM; once with `--drain-ms 0` (every client told at once) and once with
 * `--drain-ms 1000`. Reported: how long its clients were disconnected and how long their new
 * connection took to open (nginx → another node → connect reply), and when the last was back.
 *
 * Layout: servers (nodes, nginx, redis-server) are pinned to core 0 and this process — the load
 * generator — to core 1 with `taskset` when it works (2-core machines: server side and client side
 * do not steal each other's CPU). Everything on 127.0.0.1.
 */
import { readFileSync } from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { RealtimeClient } from "../../src/realtime/client/node.js";
import { type Cluster, startCluster } from "../../test/support/cluster.js";
import { type Nginx, startNginx } from "../../test/support/nginx.js";
import { busyShare, LOADGEN_CPU, pinProcess, SERVER_CPU, tasksetWorks } from "../lib/cpu.js";
import { ROOT } from "../lib/paths.js";
import { writeJson } from "../lib/report.js";
import { quantile } from "../lib/stats.js";
import { sleep, until } from "../lib/time.js";

const WARMUP_MS = 2000;
const CHANNEL = "rooms:bench";

interface Args {
  rate: number;
  seconds: number;
  subs: number;
  drainClients: number;
  only: "latency" | "drain" | undefined;
  json: string;
}

function usage(message: string): never {
  console.error(`bench:cluster: ${message}`);
  console.error(
    "usage: npm run bench:cluster -- [--rate N] [--seconds N] [--subs N] [--drain-clients N] [--only latency|drain] [--json FILE]",
  );
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    rate: 200,
    seconds: 10,
    subs: 200,
    drainClients: 1000,
    only: undefined,
    json: join(ROOT, "reports/bench-cluster.json"),
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    const n = Number(value);
    const positive = (): number => {
      if (!(n > 0) || !Number.isFinite(n)) usage(`${flag} needs a positive number`);
      return n;
    };
    if (flag === "--rate") args.rate = positive();
    else if (flag === "--seconds") args.seconds = positive();
    else if (flag === "--subs") args.subs = Math.round(positive());
    else if (flag === "--drain-clients") args.drainClients = Math.round(positive());
    else if (flag === "--json") args.json = value;
    else if (flag === "--only" && (value === "latency" || value === "drain")) args.only = value;
    else usage(`unknown argument ${flag} ${value}`);
  }
  return args;
}

// ---- pinning -------------------------------------------------------------------------------------

/** CPUs before this process pins itself. */
const CPUS = os.availableParallelism();
const canPin = CPUS >= 2 && tasksetWorks(LOADGEN_CPU);

/** Pin every thread of `pid` to `cpus` (threads started later inherit it). */
function pin(pid: number, cpus: string): void {
  if (canPin) pinProcess(pid, cpus);
}

/** Busy and total jiffies of one CPU, from /proc/stat (undefined where there is none). */
function cpuTimes(cpu: string): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8")
      .split("\n")
      .find((l) => l.startsWith(`cpu${cpu} `));
    if (line === undefined) return undefined;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** Share of time a CPU was busy between two samples (2 decimals). */
function busyCpu(
  a: ReturnType<typeof cpuTimes>,
  b: ReturnType<typeof cpuTimes>,
): number | undefined {
  const share = busyShare(a, b);
  return share === null ? undefined : round(share, 2);
}

// ---- helpers -------------------------------------------------------------------------------------

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

function client(url: string, name: string): RealtimeClient {
  const c = new RealtimeClient(url, {
    data: { name },
    onlineEvents: null,
    requestTimeoutMs: 30_000,
  });
  c.on("error", () => undefined);
  return c;
}

/** A growable Float64Array of samples. */
class Samples {
  #data = new Float64Array(1 << 16);
  length = 0;
  push(v: number): void {
    if (this.length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.length++] = v;
  }
  sorted(): Float64Array {
    return this.#data.slice(0, this.length).sort();
  }
}

// ---- latency runs ------------------------------------------------------------------------------

interface LatencyResult {
  readonly setup: string;
  readonly subscribers: number;
  readonly rate: number;
  readonly seconds: number;
  readonly published: number;
  readonly delivered: number;
  readonly expected: number;
  readonly deliveriesPerSecond: number;
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number };
  readonly ackMs: { p50: number; p99: number };
  /** Event-loop delay of the load generator (ms): high values mean the client side limits. */
  readonly loadgenLoopDelayP99Ms: number;
  readonly loadgenCpu: number;
  /** Busy share of the servers' CPU while measuring (when pinned). */
  readonly serverCpuBusy: number | undefined;
}

async function measureLatency(
  setup: string,
  publisherUrl: string,
  subscriberUrl: string,
  args: Args,
): Promise<LatencyResult> {
  const subs: RealtimeClient[] = [];
  const latencies = new Samples();
  const acks = new Samples();
  let measuring = false;
  let delivered = 0;
  for (let i = 0; i < args.subs; i++) {
    const c = client(subscriberUrl, `sub${i}`);
    c.channel<{ t: number; m: boolean; pad: string }>(CHANNEL).on("publication", (p) => {
      if (!p.data.m) return; // warm-up
      latencies.push(performance.now() - p.data.t);
      delivered++;
    });
    c.channel(CHANNEL).subscribe();
    c.connect();
    subs.push(c);
    if (i % 50 === 49)
      await until(
        () => subs.every((s) => s.channel(CHANNEL).state === "subscribed"),
        30_000,
        "subscribed",
      );
  }
  await until(
    () => subs.every((s) => s.channel(CHANNEL).state === "subscribed"),
    30_000,
    "subscribed",
  );
  const pub = client(publisherUrl, "publisher");
  pub.connect();
  await until(() => pub.state === "connected", 10_000, "publisher");

  const pad = "x".repeat(160);
  const interval = 1000 / args.rate;
  let published = 0;
  let stop = false;
  const publishing = (async () => {
    const start = performance.now();
    for (let n = 0; !stop; n++) {
      const due = start + n * interval;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const t = performance.now();
      const counted = measuring;
      if (counted) published++;
      pub.publish(CHANNEL, { t, m: counted, pad }).then(
        () => {
          if (counted) acks.push(performance.now() - t);
        },
        () => undefined,
      );
    }
  })();
  await sleep(WARMUP_MS);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const server0 = canPin ? cpuTimes(SERVER_CPU) : undefined;
  const t0 = performance.now();
  measuring = true;
  await sleep(args.seconds * 1000);
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const server1 = canPin ? cpuTimes(SERVER_CPU) : undefined;
  loop.disable();
  stop = true;
  await publishing;
  // Every publication of the measured window, to every subscriber (or give up after 10 s).
  const end = Date.now() + 10_000;
  while (delivered < published * args.subs && Date.now() < end) await sleep(20);
  for (const c of [...subs, pub]) c.close();
  const sorted = latencies.sorted();
  const ackSorted = acks.sorted();
  return {
    setup,
    subscribers: args.subs,
    rate: args.rate,
    seconds: round(elapsed, 2),
    published,
    delivered,
    expected: published * args.subs,
    deliveriesPerSecond: Math.round(delivered / elapsed),
    latencyMs: {
      p50: round(quantile(sorted, 0.5), 2),
      p90: round(quantile(sorted, 0.9), 2),
      p99: round(quantile(sorted, 0.99), 2),
      max: round(sorted[sorted.length - 1] ?? Number.NaN, 2),
    },
    ackMs: { p50: round(quantile(ackSorted, 0.5), 2), p99: round(quantile(ackSorted, 0.99), 2) },
    loadgenLoopDelayP99Ms: round(loop.percentile(99) / 1e6, 1),
    loadgenCpu: round((cpu.user + cpu.system) / 1e6 / elapsed, 2),
    serverCpuBusy: busyCpu(server0, server1),
  };
}

async function withCluster<T>(
  nodes: number,
  serveArgs: readonly string[],
  run: (cluster: Cluster) => Promise<T>,
): Promise<T> {
  const cluster = await startCluster({
    nodes,
    serveArgs,
    cpus: { nodes: SERVER_CPU, nginx: SERVER_CPU },
  });
  pin(cluster.redis.pid ?? -1, SERVER_CPU);
  try {
    return await run(cluster);
  } finally {
    await cluster.close();
  }
}

async function latencyRuns(args: Args): Promise<LatencyResult[]> {
  const results: LatencyResult[] = [];
  console.log(`latency: single node, memory broker, ${args.subs} subscribers, ${args.rate}/s…`);
  results.push(
    await withCluster(1, ["--broker", "memory"], (c) =>
      measureLatency("single node (memory broker)", c.nodes[0]!.realtimeUrl, c.realtimeUrl, args),
    ),
  );
  console.log(`latency: 3 nodes over Redis, publisher on n1, subscribers on n2–n3…`);
  results.push(
    await withCluster(3, [], async (c) => {
      let front: Nginx | undefined;
      try {
        front = await startNginx({
          backends: c.nodes.slice(1).map((n) => ({ host: "127.0.0.1", port: n.port })),
          cpus: SERVER_CPU,
        });
        return await measureLatency(
          "3 nodes over Redis (n1 → n2, n3)",
          c.nodes[0]!.realtimeUrl,
          `${front.url.replace("http", "ws")}/realtime`,
          args,
        );
      } finally {
        await front?.close();
      }
    }),
  );
  return results;
}

// ---- drain runs ------------------------------------------------------------------------------

interface DrainResult {
  readonly drainMs: number;
  readonly clients: number;
  readonly onNode: number;
  /** Client disconnected → connected again (backoff included), ms. */
  readonly disconnectedMs: { p50: number; p99: number; max: number };
  /** Attempt start → connect reply, ms. */
  readonly connectMs: { p50: number; p99: number; max: number };
  /** SIGTERM → the last client connected again, ms. */
  readonly allBackMs: number;
  readonly loadgenLoopDelayP99Ms: number;
}

async function drainRun(drainMs: number, clients: number): Promise<DrainResult> {
  return withCluster(3, ["--drain-ms", String(drainMs)], async (cluster) => {
    const channels = ["rooms:a", "rooms:b", "rooms:c", "rooms:d"];
    const all: Array<{
      c: RealtimeClient;
      node: string | undefined;
      attemptAt: number;
      connectedAt: number;
      downAt: number;
    }> = [];
    for (let i = 0; i < clients; i++) {
      const c = client(cluster.realtimeUrl, `c${i}`);
      const entry: (typeof all)[number] = {
        c,
        node: undefined,
        attemptAt: 0,
        connectedAt: 0,
        downAt: 0,
      };
      c.on("state", (e) => {
        if (e.state === "connecting") entry.attemptAt = performance.now();
      });
      c.on("connected", (r) => {
        entry.node = r.node;
        entry.connectedAt = performance.now();
      });
      c.on("disconnected", () => {
        entry.downAt = performance.now();
      });
      c.channel(channels[i % channels.length]!).subscribe();
      c.connect();
      all.push(entry);
      if (i % 100 === 99)
        await until(() => all.every((e) => e.node !== undefined), 30_000, "connected");
    }
    await until(() => all.every((e) => e.node !== undefined), 30_000, "connected");
    const victim = cluster.nodes[0]!.name;
    const moving = all.filter((e) => e.node === victim);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const t0 = performance.now();
    await cluster.kill(0, "SIGTERM");
    await until(
      () =>
        all.every(
          (e) =>
            e.node !== victim &&
            e.c.state === "connected" &&
            channels.some((ch) => e.c.channel(ch).state === "subscribed"),
        ),
      60_000,
      "every client back",
    );
    loop.disable();
    const down = moving.map((e) => e.connectedAt - e.downAt).sort((a, b) => a - b);
    const connect = moving.map((e) => e.connectedAt - e.attemptAt).sort((a, b) => a - b);
    const allBackMs = Math.round(Math.max(...moving.map((e) => e.connectedAt)) - t0);
    for (const e of all) e.c.close();
    return {
      drainMs,
      clients,
      onNode: moving.length,
      disconnectedMs: {
        p50: Math.round(quantile(down, 0.5)),
        p99: Math.round(quantile(down, 0.99)),
        max: Math.round(down.at(-1) ?? 0),
      },
      connectMs: {
        p50: Math.round(quantile(connect, 0.5)),
        p99: Math.round(quantile(connect, 0.99)),
        max: Math.round(connect.at(-1) ?? 0),
      },
      allBackMs,
      loadgenLoopDelayP99Ms: round(loop.percentile(99) / 1e6, 1),
    };
  });
}

// ---- main ------------------------------------------------------------------------------------

const args = parseArgs(process.argv.slice(2));
if (canPin) pin(process.pid, LOADGEN_CPU);
const pinning = canPin
  ? `servers (nodes, nginx, redis-server) on CPU ${SERVER_CPU}, load generator on CPU ${LOADGEN_CPU}`
  : "not pinned (taskset missing or fewer than 2 CPUs)";
console.log(`bench:cluster — ${os.cpus()[0]?.model ?? "cpu"} × ${CPUS}; ${pinning}`);

const latency = args.only === "drain" ? [] : await latencyRuns(args);
const drains: DrainResult[] = [];
if (args.only !== "latency") {
  for (const drainMs of [0, 1000]) {
    console.log(`drain: ${args.drainClients} clients, SIGTERM of n1 with --drain-ms ${drainMs}…`);
    drains.push(await drainRun(drainMs, args.drainClients));
  }
}

if (latency.length > 0) {
  console.log("\nCross-node delivery at a fixed publish rate");
  console.table(
    latency.map((r) => ({
      setup: r.setup,
      "msg/s": r.rate,
      subs: r.subscribers,
      "delivered/s": r.deliveriesPerSecond,
      "delivered/expected": `${r.delivered}/${r.expected}`,
      "p50 ms": r.latencyMs.p50,
      "p90 ms": r.latencyMs.p90,
      "p99 ms": r.latencyMs.p99,
      "max ms": r.latencyMs.max,
      "ack p50 ms": r.ackMs.p50,
      "ack p99 ms": r.ackMs.p99,
      "server CPU": r.serverCpuBusy ?? "-",
      "loadgen CPU": r.loadgenCpu,
    })),
  );
}
if (drains.length > 0) {
  console.log("\nSIGTERM of a node: its clients come back through nginx");
  console.table(
    drains.map((d) => ({
      "--drain-ms": d.drainMs,
      "clients on node": `${d.onNode} of ${d.clients}`,
      "disconnected p50 ms": d.disconnectedMs.p50,
      "disconnected p99 ms": d.disconnectedMs.p99,
      "connect p50 ms": d.connectMs.p50,
      "connect p99 ms": d.connectMs.p99,
      "all back ms": d.allBackMs,
      "loadgen loop p99 ms": d.loadgenLoopDelayP99Ms,
    })),
  );
}
writeJson(args.json, {
  date: new Date().toISOString(),
  node: process.version,
  cpu: os.cpus()[0]?.model,
  cpus: CPUS,
  pinning,
  latency,
  drains,
});
console.log(`\nwrote ${args.json}`);
