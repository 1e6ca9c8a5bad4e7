/**
 * `npm run bench:realtime` — realtime fan-out: delivery latency, CPU and memory of Duplex's
 * RealtimeServer (MemoryBroker, duplex.v1) against a plain `ws` broadcast server, with and
 * without subscribers that stopped reading. Method and results: docs/benchmarks-realtime.md.
 *
 *   npm run bench:realtime                  every scenario, 7 measurements (about 1.5 minutes;
 *                                           never more than 3: what does not fit is skipped)
 *   npm run bench:realtime -- --quick       2 s measurements instead of 5 s (about 35 s, at most
 *                                           1 minute; no late memory sample)
 *   npm run bench:realtime -- --rate 500    publications per second in the fan-out scenarios
 *   npm run bench:realtime -- --subs 1000   healthy subscribers in the fan-out scenarios
 *   npm run bench:realtime -- --only stalled  only scenarios whose id is or contains the text
 *   npm run bench:realtime -- --json out.json write the JSON report elsewhere
 *   npm run bench:realtime -- --stalled 50  stalled subscribers in fanout+stalled (default 20)
 *   npm run bench:realtime -- --fill 0      do not pre-fill the stalled subscribers' TCP path
 *   npm run bench:realtime -- --quiet-wait 20  wait up to 20 s (default 10) for idle cores
 *   npm run bench:realtime -- --rounds 3    repeat everything; the table shows the median round
 *                                           (p50) per scenario and server, notes the ranges
 *
 * Layout: the server under test runs pinned to core 0 (`taskset -c 0`), bundled by esbuild into
 * reports/.bench-realtime/ and run with plain `node --expose-gc`; this process is the load
 * generator and pins itself (every thread) to core 1. All subscribers and the publisher are `ws`
 * clients in this process, so the client side costs the same for both servers. Only 127.0.0.1.
 *
 * Scenarios (one fresh server process each, one after another):
 *   fanout          N subscribers (500) on bench:feed, one publisher at a fixed rate (200/s),
 *                   ~256 B JSON with a send timestamp; latency = receive time - send time
 *   fanout+stalled  the same plus K (20) subscribers that subscribe and then never read
 *                   (ws._socket.pause()); Duplex once with slowConsumer "drop", once with
 *                   "disconnect". Before the warm-up the stalled subscribers' TCP path is filled
 *                   (--fill, 6 MiB each, on a channel only they are on), as for a client that
 *                   stopped reading a while ago: loopback's kernel buffers alone take ~4 MB per
 *                   connection, a minute of this feed. Without --quick the server's memory is
 *                   sampled once more 10.5 s after the pre-fill (Duplex's closeTimeoutMs).
 *   throughput      100 subscribers; Duplex's publisher keeps 64 publishes in flight (acks), ws's
 *                   (no acks) publishes at the rate Duplex achieved
 */
import { readFileSync } from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { stop as stopEsbuild } from "esbuild";
import WebSocket from "ws";
import { usageHandler } from "../lib/args.js";
import { bundleForNode } from "../lib/bundle.js";
import {
  busyShare,
  CLK_TCK,
  canPin,
  coreTimes,
  LOADGEN_CPU,
  pinProcess,
  processTicks,
  SERVER_CPU,
  waitQuiet,
} from "../lib/cpu.js";
import { ROOT } from "../lib/paths.js";
import { type Mem, ServerProcess } from "../lib/process.js";
import {
  loadAverage,
  machine,
  machineSummary,
  markdownTable,
  memoryGiB,
  pct,
  ratio,
  writeJson,
} from "../lib/report.js";
import { sleep } from "../lib/time.js";
import { wsVersion } from "../ws-internals.js";

const BUNDLE_DIR = join(ROOT, "reports/.bench-realtime");
const MIB = 1024 * 1024;

const FEED = "bench:feed";
/** Only the stalled subscribers subscribe to it: the pre-fill goes there. */
const FILL = "bench:fill";
/** Publication data of the pre-fill: ~48 KiB each (Duplex's maxPublishBytes is 64 KiB). */
const FILL_CHUNK = 48 * 1024;
const PAYLOAD_BYTES = 256;
const THROUGHPUT_SUBS = 100;
const THROUGHPUT_WINDOW = 64;
/** Duplex's closeTimeoutMs (10 s) plus a margin. */
const LATE_SAMPLE_MS = 10_500;
/** Above this CPU share the load generator may be what limits the measurement. */
const LOADGEN_BUSY = 0.85;

type ServerId = "duplex-drop" | "duplex-disconnect" | "ws";
type ScenarioId = "fanout" | "fanout+stalled" | "throughput";

const SERVERS: Record<
  ServerId,
  { label: string; script: string; mode: string; protocol: "duplex" | "ws" }
> = {
  "duplex-drop": {
    label: "Duplex (drop)",
    script: "server-duplex.mjs",
    mode: "drop",
    protocol: "duplex",
  },
  "duplex-disconnect": {
    label: "Duplex (disconnect)",
    script: "server-duplex.mjs",
    mode: "disconnect",
    protocol: "duplex",
  },
  ws: { label: "ws", script: "server-ws.mjs", mode: "naive", protocol: "ws" },
};

interface Args {
  readonly quick: boolean;
  readonly rate: number;
  readonly subs: number;
  readonly stalled: number;
  /** Bytes published to each stalled subscriber before the warm-up (0: none). */
  readonly fillBytes: number;
  readonly only: string | null;
  readonly json: string;
  readonly quietWaitMs: number;
  /** Sample the server once more after closeTimeoutMs in the stalled scenarios. */
  readonly lateSample: boolean;
  /** Repeat every measurement; the table shows the median round (--rounds). */
  readonly rounds: number;
}

interface Scenario {
  readonly id: ScenarioId;
  readonly label: string;
  readonly servers: readonly ServerId[];
  readonly subs: number;
  readonly stalled: number;
  /** Publications per second; null = as fast as acks allow (Duplex) / Duplex's rate (ws). */
  readonly rate: number | null;
}

const usage: (message?: string) => never = usageHandler(
  "bench:realtime",
  [
    "usage: npm run bench:realtime -- [--quick] [--rate <msg/s>] [--subs <n>] [--only <text>]",
    "         [--json <path>] [--stalled <n>] [--fill <MiB>] [--quiet-wait <s>] [--rounds <n>]",
  ].join("\n"),
);

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let rate = 200;
  let subs = 500;
  let stalled = 20;
  let fillMiB = 6;
  let only: string | null = null;
  let json = join(ROOT, "reports/bench-realtime.json");
  let quietWait = 10;
  let rounds = 1;
  const positive = (name: string, value: string, integer: boolean, min = 1): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      usage(`${name} needs a number >= ${min}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--quick") {
      quick = true;
      continue;
    }
    if (arg === "--help" || arg === "-h") usage();
    const known = [
      "--rate",
      "--subs",
      "--only",
      "--json",
      "--stalled",
      "--fill",
      "--quiet-wait",
      "--rounds",
    ];
    if (!known.includes(arg)) usage(`unknown argument ${arg}`);
    const value = argv[++i];
    if (value === undefined || value === "") usage(`${arg} needs a value`);
    if (arg === "--rate") rate = positive(arg, value, false);
    else if (arg === "--subs") subs = positive(arg, value, true);
    else if (arg === "--stalled") stalled = positive(arg, value, true);
    else if (arg === "--fill") fillMiB = positive(arg, value, false, 0);
    else if (arg === "--quiet-wait") quietWait = positive(arg, value, false, 0);
    else if (arg === "--rounds") rounds = positive(arg, value, true);
    else if (arg === "--only") only = value;
    else json = value;
  }
  return {
    quick,
    rate,
    subs,
    stalled,
    fillBytes: Math.round(fillMiB * MIB),
    only,
    json,
    quietWaitMs: quietWait * 1000,
    lateSample: !quick,
    rounds,
  };
}

function scenarios(args: Args): Scenario[] {
  const list: Scenario[] = [
    {
      id: "fanout",
      label: `${args.subs} subscribers, ${args.rate} msg/s`,
      servers: ["duplex-drop", "ws"],
      subs: args.subs,
      stalled: 0,
      rate: args.rate,
    },
    {
      id: "fanout+stalled",
      label: `${args.subs} subscribers + ${args.stalled} stalled, ${args.rate} msg/s`,
      servers: ["duplex-drop", "duplex-disconnect", "ws"],
      subs: args.subs,
      stalled: args.stalled,
      rate: args.rate,
    },
    {
      id: "throughput",
      label: `${THROUGHPUT_SUBS} subscribers, max rate`,
      servers: ["duplex-drop", "ws"],
      subs: THROUGHPUT_SUBS,
      stalled: 0,
      rate: null,
    },
  ];
  if (args.only === null) return list;
  // An exact id selects just that scenario ("fanout"), otherwise every id containing the text.
  const exact = list.filter((s) => s.id === args.only);
  return exact.length > 0 ? exact : list.filter((s) => s.id.includes(args.only!));
}

// ---- machine -------------------------------------------------------------------------------

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m !== null) return m[1]!.trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? "unknown";
}

interface CpuSample {
  readonly at: number;
  readonly server: { user: number; system: number } | null;
  readonly self: NodeJS.CpuUsage;
  readonly cores: readonly { busy: number; total: number }[];
}

function cpuSample(pid: number): CpuSample {
  return {
    at: performance.now(),
    server: processTicks(pid),
    self: process.cpuUsage(),
    cores: coreTimes(),
  };
}

interface CpuShares {
  /** Server utime+stime over the interval / wall time. */
  readonly server: number | null;
  /**
   * The stime part of it. On loopback a write system call also runs the receiving side's TCP
   * processing, so this includes kernel work done on behalf of the subscribers.
   */
  readonly serverSystem: number | null;
  /** This process (load generator), user+system / wall time. */
  readonly loadgen: number;
  /** Busy share of each pinned core not accounted to the server / the load generator. */
  readonly serverCoreOther: number | null;
  readonly loadgenCoreOther: number | null;
}

function cpuShares(a: CpuSample, b: CpuSample): CpuShares {
  const wall = (b.at - a.at) / 1000;
  const sa = a.server;
  const sb = b.server;
  const server =
    sa === null || sb === null
      ? null
      : (sb.user + sb.system - sa.user - sa.system) / CLK_TCK / wall;
  const serverSystem = sa === null || sb === null ? null : (sb.system - sa.system) / CLK_TCK / wall;
  const loadgen = (b.self.user - a.self.user + b.self.system - a.self.system) / 1e6 / wall;
  const s = busyShare(a.cores[Number(SERVER_CPU)], b.cores[Number(SERVER_CPU)]);
  const l = busyShare(a.cores[Number(LOADGEN_CPU)], b.cores[Number(LOADGEN_CPU)]);
  return {
    server,
    serverSystem,
    loadgen,
    serverCoreOther: s === null || server === null ? null : Math.max(0, s - server),
    loadgenCoreOther: l === null ? null : Math.max(0, l - loadgen),
  };
}

// ---- server processes ----------------------------------------------------------------------

async function bundleServers(): Promise<void> {
  await bundleForNode({
    entryPoints: ["server-duplex", "server-ws"].map((n) => join(ROOT, `bench/realtime/${n}.ts`)),
    outdir: BUNDLE_DIR,
    outExtension: { ".js": ".mjs" },
  });
  await stopEsbuild();
}

// ---- latency histogram ---------------------------------------------------------------------

/** Latencies in 10 µs bins up to 30 s (the last bin collects anything slower); exact max. */
class Histogram {
  private static readonly BIN_MS = 0.01;
  private readonly bins = new Uint32Array(3_000_000);
  count = 0;
  max = 0;

  add(ms: number): void {
    const v = ms < 0 ? 0 : ms;
    const i = Math.min(this.bins.length - 1, Math.floor(v / Histogram.BIN_MS));
    this.bins[i]!++;
    this.count++;
    if (v > this.max) this.max = v;
  }

  /** The q-quantile (upper edge of its bin, capped at the max). */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i]!;
      if (seen >= rank) return Math.min(this.max, (i + 1) * Histogram.BIN_MS);
    }
    return this.max;
  }
}

// ---- clients -------------------------------------------------------------------------------

const PUB_PREFIX = Buffer.from(`{"type":"pub","channel":${JSON.stringify(FEED)}`);
const T_KEY = Buffer.from('"t":');

/** The measured window, in the clock of `now()`; shared by the publisher and the subscribers. */
interface Window {
  start: number;
  end: number;
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

/** The send timestamp `t` of a feed publication (both servers keep the data's key order). */
function sendTime(data: Buffer): number {
  const i = data.indexOf(T_KEY, PUB_PREFIX.length);
  if (i < 0) return Number.NaN;
  let j = i + T_KEY.length;
  while (j < data.length && data[j] !== 0x2c && data[j] !== 0x7d) j++;
  return Number(data.toString("latin1", i + T_KEY.length, j));
}

// biome-ignore lint/suspicious/noExplicitAny: replies are arbitrary JSON.
type Msg = Record<string, any>;

/** One `ws` client connection speaking either duplex.v1 or the plain ws server's JSON. */
class Client {
  private nextId = 1;
  private readonly replies = new Map<number, (m: Msg) => void>();
  private readonly subscribed = new Map<string, () => void>();
  /** Set on healthy subscribers: every feed publication goes here. */
  onFeed: ((data: Buffer) => void) | null = null;
  closed = false;
  closeCode = 0;
  pushes = { disconnect: 0, error: 0, unsubscribed: 0 };

  private constructor(
    readonly ws: WebSocket,
    readonly protocol: "duplex" | "ws",
  ) {
    ws.on("message", (data: Buffer) => {
      if (
        data.length > PUB_PREFIX.length &&
        data.compare(PUB_PREFIX, 0, PUB_PREFIX.length, 0, PUB_PREFIX.length) === 0
      ) {
        this.onFeed?.(data);
        return;
      }
      if (
        data[0] === 0x7b &&
        data.length > 8 &&
        data.toString("latin1", 0, 13) === '{"type":"pub"'
      ) {
        return; // another channel's publication (the pre-fill)
      }
      let m: Msg;
      try {
        m = JSON.parse(data.toString()) as Msg;
      } catch {
        return;
      }
      if (typeof m.id === "number") {
        const r = this.replies.get(m.id);
        this.replies.delete(m.id);
        r?.(m);
      } else if (m.type === "subscribed" && typeof m.channel === "string") {
        this.subscribed.get(m.channel)?.();
        this.subscribed.delete(m.channel);
      } else if (m.type === "disconnect" || m.type === "error" || m.type === "unsubscribed") {
        this.pushes[m.type as "disconnect" | "error" | "unsubscribed"]++;
      }
    });
    ws.on("close", (code) => {
      this.closed = true;
      this.closeCode = code;
    });
  }

  static async open(port: number, protocol: "duplex" | "ws"): Promise<Client> {
    const options: WebSocket.ClientOptions = { perMessageDeflate: false, skipUTF8Validation: true };
    const ws =
      protocol === "duplex"
        ? new WebSocket(`ws://127.0.0.1:${port}/realtime`, "duplex.v1", options)
        : new WebSocket(`ws://127.0.0.1:${port}/`, options);
    ws.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const client = new Client(ws, protocol);
    if (protocol === "duplex") {
      const reply = await client.request({ type: "connect" });
      if (reply.error !== undefined) throw new Error(`connect: ${JSON.stringify(reply.error)}`);
    }
    return client;
  }

  /** Send a duplex.v1 command with the next id; resolves with its reply. */
  request(command: Msg): Promise<Msg> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.replies.set(id, resolve);
      this.ws.send(JSON.stringify({ ...command, id }));
    });
  }

  async subscribe(channel: string): Promise<void> {
    if (this.protocol === "duplex") {
      const reply = await this.request({ type: "subscribe", channel });
      if (reply.error !== undefined) throw new Error(`subscribe: ${JSON.stringify(reply.error)}`);
      return;
    }
    await new Promise<void>((resolve) => {
      this.subscribed.set(channel, resolve);
      this.ws.send(JSON.stringify({ type: "subscribe", channel }));
    });
  }

  /** Publish without waiting (duplex.v1: returns the reply promise). */
  publish(channel: string, dataJson: string): Promise<Msg> | null {
    if (this.protocol === "duplex") {
      const id = this.nextId++;
      const reply = new Promise<Msg>((resolve) => this.replies.set(id, resolve));
      this.ws.send(
        `{"type":"publish","id":${id},"channel":${JSON.stringify(channel)},"data":${dataJson}}`,
      );
      return reply;
    }
    this.ws.send(`{"type":"publish","channel":${JSON.stringify(channel)},"data":${dataJson}}`);
    return null;
  }

  /** Returns once the server processed everything this client sent before. */
  async sync(): Promise<void> {
    if (this.protocol === "duplex") await this.request({ type: "ping" });
    else await this.subscribe("bench:sync");
  }

  /** Stop reading: the kernel buffers fill, then the server's queue for this client grows. */
  stall(): void {
    (this.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  terminate(): void {
    this.ws.terminate();
  }
}

async function openMany(
  n: number,
  open: () => Promise<Client>,
  concurrency = 50,
): Promise<Client[]> {
  const out: Client[] = [];
  for (let i = 0; i < n; i += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, n - i) }, open);
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

const PAD = "x".repeat(PAYLOAD_BYTES);

/** ~256 bytes of JSON: the send time, a sequence number, padding. */
function payload(seq: number): string {
  const head = `{"t":${now()},"seq":${seq},"pad":"`;
  return `${head}${PAD.slice(0, Math.max(0, PAYLOAD_BYTES - head.length - 2))}"}`;
}

// ---- one measurement -----------------------------------------------------------------------

interface Timing {
  readonly warmup: number;
  readonly duration: number;
}

interface Result {
  readonly scenario: ScenarioId;
  readonly server: ServerId;
  readonly label: string;
  readonly ok: boolean;
  readonly problems: readonly string[];
  readonly command: string;
  readonly subscribers: number;
  readonly stalled: number;
  /** Publications per second in the measured window (the target rate, or what acks allowed). */
  readonly targetRate: number | null;
  readonly pubRate: number | null;
  readonly published: number;
  readonly expected: number;
  readonly delivered: number;
  /** Feed publications the subscribers received per second during the window (any send time). */
  readonly deliveriesPerSecond: number | null;
  /** Worst latency per second of the measured window (by send time). */
  readonly maxPerSecondMs: readonly number[];
  readonly latencyMs: {
    p50: number | null;
    p90: number | null;
    p99: number | null;
    max: number | null;
  };
  readonly cpu: CpuShares | null;
  readonly memBefore: Mem | null;
  readonly memAfter: Mem | null;
  /** Stalled scenarios: right after the pre-fill, before the warm-up. */
  readonly memFilled: Mem | null;
  /** Stalled scenarios (not with --quick): once more, 10.5 s after the pre-fill. */
  readonly memLate: Mem | null;
  readonly fill: { bytes: number; publications: number; seconds: number } | null;
  /** Bytes of one feed publication as the subscribers receive it (payload of the frame). */
  readonly pushBytes: number | null;
  readonly healthyClosed: number;
  readonly busyBefore: readonly number[];
  readonly seconds: number;
  /** Publishing time, warm-up included (feed only). */
  readonly publishSeconds: number | null;
  /** 2 when the first attempt was disturbed by other processes and this is the re-run. */
  readonly attempt: number;
  /** 1-based round (--rounds). */
  readonly round?: number;
}

async function runOne(
  scenario: Scenario,
  serverId: ServerId,
  timing: Timing,
  args: Args,
  pinned: boolean,
  wsRate: number | null,
  quietWaitMs: number,
): Promise<Result> {
  const started = performance.now();
  const busyBefore = await waitQuiet(quietWaitMs, 500);
  const proto = SERVERS[serverId].protocol;
  const { script, mode } = SERVERS[serverId];
  const server = new ServerProcess(join(BUNDLE_DIR, script), mode, pinned);
  const clients: Client[] = [];
  const problems: string[] = [];
  const hist = new Histogram();
  /** Worst latency of the publications sent in each second of the measured window. */
  const timeline: number[] = [];
  const win: Window = { start: Number.POSITIVE_INFINITY, end: Number.POSITIVE_INFINITY };
  let delivered = 0;
  /** Feed publications received during the window, whenever they were sent. */
  let receivedInWindow = 0;
  let published = 0;
  let pushBytes: number | null = null;
  let cpu: CpuShares | null = null;
  let memBefore: Mem | null = null;
  let memAfter: Mem | null = null;
  let memLate: Mem | null = null;
  let memFilled: Mem | null = null;
  let fillEnd: number | null = null;
  let fill: Result["fill"] = null;
  let healthyClosed = 0;
  let publishSeconds: number | null = null;
  const targetRate = scenario.rate ?? (proto === "ws" ? wsRate : null);
  let hardTimer: ReturnType<typeof setTimeout> | undefined;
  /** The publisher runs while this is true (also cleared when the run ends early). */
  let running = false;
  /** The result with what there is so far, and what only a finished measurement has. */
  const result = (
    measured: Pick<
      Result,
      "pubRate" | "expected" | "deliveriesPerSecond" | "maxPerSecondMs" | "latencyMs"
    >,
  ): Result => ({
    scenario: scenario.id,
    server: serverId,
    label: SERVERS[serverId].label,
    ok: problems.length === 0,
    problems,
    command: server.command,
    subscribers: scenario.subs,
    stalled: scenario.stalled,
    targetRate,
    pubRate: measured.pubRate,
    published,
    expected: measured.expected,
    delivered,
    deliveriesPerSecond: measured.deliveriesPerSecond,
    maxPerSecondMs: measured.maxPerSecondMs,
    latencyMs: measured.latencyMs,
    cpu,
    memBefore,
    memAfter,
    memFilled,
    memLate,
    fill,
    pushBytes,
    healthyClosed,
    busyBefore,
    seconds: (performance.now() - started) / 1000,
    publishSeconds,
    attempt: 1,
  });
  try {
    const measure = async (): Promise<Result> => {
      const port = await server.ready();
      const healthy = await openMany(scenario.subs, () => Client.open(port, proto));
      clients.push(...healthy);
      const onFeed = (data: Buffer): void => {
        const at = now();
        if (at >= win.start && at < win.end) receivedInWindow++;
        const t = sendTime(data);
        if (!(t >= win.start && t < win.end)) return;
        const latency = at - t;
        hist.add(latency);
        const second = Math.floor((t - win.start) / 1000);
        if (latency > (timeline[second] ?? 0)) timeline[second] = latency;
        delivered++;
        pushBytes ??= data.length;
      };
      await Promise.all(healthy.map((c) => c.subscribe(FEED)));
      for (const c of healthy) c.onFeed = onFeed;
      const stalled = await openMany(scenario.stalled, () => Client.open(port, proto));
      clients.push(...stalled);
      await Promise.all(
        stalled.map(async (c) => {
          await c.subscribe(FEED);
          if (args.fillBytes > 0) await c.subscribe(FILL);
          c.stall();
        }),
      );
      const publisher = await Client.open(port, proto);
      clients.push(publisher);
      memBefore = await server.mem();

      if (scenario.stalled > 0 && args.fillBytes > 0) {
        // A client that stopped reading a while ago has full kernel buffers (several MiB on
        // loopback) and whatever the server queued beyond them. At 200 msg/s that takes a minute
        // or more to reach, so it is put in place here: big publications on a channel only the
        // stalled subscribers are on.
        const chunk = `{"fill":"${"f".repeat(FILL_CHUNK)}"}`;
        const n = Math.ceil(args.fillBytes / FILL_CHUNK);
        const t0 = performance.now();
        const acks: Promise<Msg>[] = [];
        for (let i = 0; i < n; i++) {
          const ack = publisher.publish(FILL, chunk);
          if (ack !== null) acks.push(ack);
        }
        const replies = await Promise.all(acks);
        const failed = replies.filter((r) => r.error !== undefined).length;
        if (failed > 0) problems.push(`${failed} fill publishes failed`);
        await publisher.sync();
        await sleep(300);
        fillEnd = performance.now();
        fill = { bytes: n * FILL_CHUNK, publications: n, seconds: (fillEnd - t0) / 1000 };
        // What the stalled subscribers cost before the feed starts: the growth from here to the
        // end is what publishing to them costs over time.
        memFilled = await server.mem();
      }

      // Publishing: warm-up, then the measured window.
      let seq = 0;
      running = true;
      let publishErrors = 0;
      const send = (): Promise<Msg> | null => {
        const measuring = now() >= win.start;
        const ack = publisher.publish(FEED, payload(seq++));
        if (measuring) published++;
        return ack;
      };
      const checkAck = (m: Msg): void => {
        if (m.error !== undefined) publishErrors++;
      };
      let timer: ReturnType<typeof setTimeout> | undefined;
      const publishStart = performance.now();
      const rate = targetRate;
      if (rate !== null) {
        const t0 = performance.now();
        let sent = 0;
        const tick = (): void => {
          if (!running) return;
          const due = Math.floor(((performance.now() - t0) * rate) / 1000) + 1;
          while (sent < due) {
            send()?.then(checkAck);
            sent++;
          }
          timer = setTimeout(tick, Math.max(0, t0 + (sent * 1000) / rate - performance.now()));
        };
        tick();
      } else {
        // As fast as acks allow, THROUGHPUT_WINDOW publishes in flight.
        const loop = (): void => {
          if (!running) return;
          const ack = send();
          if (ack === null) throw new Error("throughput needs acks");
          void ack.then((m) => {
            checkAck(m);
            loop();
          });
        };
        for (let i = 0; i < THROUGHPUT_WINDOW; i++) loop();
      }
      await sleep(timing.warmup * 1000);
      const a = cpuSample(server.pid);
      win.start = now();
      await sleep(timing.duration * 1000);
      win.end = now();
      running = false;
      clearTimeout(timer);
      publishSeconds = (performance.now() - publishStart) / 1000;
      const b = cpuSample(server.pid);
      cpu = cpuShares(a, b);

      // Let the last publications arrive (or give up after 3 s: some never will).
      const expected = published * scenario.subs;
      const drainUntil = performance.now() + 3_000;
      while (delivered < expected && performance.now() < drainUntil) await sleep(20);
      memAfter = await server.mem();

      if (scenario.stalled > 0 && args.lateSample) {
        // A connection Duplex closes for being slow keeps its queue until the closing handshake
        // times out (closeTimeoutMs, 10 s): the close frame waits behind the queue. Look again
        // once that has passed.
        const from = fillEnd ?? performance.now();
        await sleep(Math.max(0, from + LATE_SAMPLE_MS - performance.now()));
        memLate = { ...(await server.mem()), afterFillSeconds: (performance.now() - from) / 1000 };
      }

      healthyClosed = healthy.filter((c) => c.closed).length;
      if (healthyClosed > 0) problems.push(`${healthyClosed} healthy subscribers were closed`);
      if (publishErrors > 0) problems.push(`${publishErrors} publishes failed`);
      if (publisher.closed) problems.push(`publisher closed (${publisher.closeCode})`);
      if (delivered < expected) problems.push(`${expected - delivered} deliveries missing`);
      const seconds = (win.end - win.start) / 1000;
      return result({
        pubRate: published / seconds,
        expected,
        deliveriesPerSecond: receivedInWindow / seconds,
        maxPerSecondMs: Array.from(timeline, (v) => Math.round((v ?? 0) * 100) / 100),
        latencyMs: {
          p50: hist.quantile(0.5),
          p90: hist.quantile(0.9),
          p99: hist.quantile(0.99),
          max: hist.count === 0 ? null : hist.max,
        },
      });
    };
    // Whatever happens (a server that died, a reply that never comes), a run ends.
    const limitMs = (timing.warmup + timing.duration) * 1000 + 90_000;
    const hardLimit = new Promise<never>((_, reject) => {
      hardTimer = setTimeout(() => reject(new Error(`gave up after ${limitMs / 1000} s`)), limitMs);
    });
    const measured = measure();
    measured.catch(() => undefined); // after a timeout nobody awaits it any more
    return await Promise.race([measured, hardLimit]);
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
    return result({
      pubRate: null,
      expected: 0,
      deliveriesPerSecond: null,
      maxPerSecondMs: [],
      latencyMs: { p50: null, p90: null, p99: null, max: null },
    });
  } finally {
    running = false;
    clearTimeout(hardTimer);
    for (const c of clients) c.terminate();
    await server.stop(5_000);
  }
}

function others(r: Result): number {
  return (r.cpu?.serverCoreOther ?? 1) + (r.cpu?.loadgenCoreOther ?? 0);
}

function disturbed(r: Result): boolean {
  return (r.cpu?.serverCoreOther ?? 0) > 0.1 || (r.cpu?.loadgenCoreOther ?? 0) > 0.2;
}

// ---- report --------------------------------------------------------------------------------

function ms(v: number | null): string {
  if (v === null) return "—";
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function mib(v: number | null | undefined): string {
  return v == null ? "—" : (v / MIB).toFixed(1);
}

function rss(m: Mem | null): number | null {
  return m?.vmRss ?? m?.rss ?? null;
}

function signed(v: number): string {
  return `${v >= 0 ? "+" : ""}${v.toFixed(1)}`;
}

function count(v: number): string {
  return v.toLocaleString("en-US");
}

function rate(v: number | null): string {
  if (v === null) return "—";
  return v >= 1e4 ? `${(v / 1e3).toFixed(1)} k` : v.toFixed(0);
}

/** What happened to the stalled subscribers (and what the server queued for anyone). */
function stalledNote(r: Result): string {
  const m = r.memAfter;
  if (r.stalled === 0 || m === null) return "—";
  const queued = `${mib(m.queuedBytes)} MiB queued`;
  if (SERVERS[r.server].protocol === "ws") return `${r.stalled} kept, ${queued}`;
  const hit = m.sessionsOverQueue ?? 0;
  if (r.server === "duplex-disconnect") {
    return `${m.slowDisconnects ?? 0}/${r.stalled} disconnected, ${queued}`;
  }
  return `${hit}/${r.stalled} over 1 MiB, ${count(m.overQueue ?? 0)} deliveries dropped, ${queued}`;
}

function renderTable(results: readonly Result[]): string {
  const header = [
    "scenario",
    "server",
    "pub/s",
    "deliveries/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "delivered/expected",
    "server CPU",
    "loadgen CPU",
    "server RSS MiB",
    "RSS Δ MiB",
    "heap used MiB",
    "stalled subscribers",
  ];
  const rows = results.map((r) => {
    const after = rss(r.memAfter);
    const before = rss(r.memBefore);
    return [
      r.scenario,
      r.label,
      rate(r.pubRate),
      rate(r.deliveriesPerSecond),
      ms(r.latencyMs.p50),
      ms(r.latencyMs.p90),
      ms(r.latencyMs.p99),
      ms(r.latencyMs.max),
      `${count(r.delivered)}/${count(r.expected)}`,
      r.cpu?.server == null ? "—" : `${pct(r.cpu.server)} (${pct(r.cpu.serverSystem)} sys)`,
      pct(r.cpu?.loadgen),
      mib(after),
      after === null || before === null ? "—" : mib(after - before),
      mib(r.memAfter?.heapUsed),
      stalledNote(r),
    ];
  });
  return markdownTable(header, rows);
}

interface Ratio {
  readonly scenario: ScenarioId;
  readonly duplex: ServerId;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly rss: number | null;
}

/** Per scenario and server, the round with the median p50 (failed rounds count as slowest). */
function medians(results: readonly Result[]): Result[] {
  const out: Result[] = [];
  const seen = new Set<string>();
  for (const r of results) {
    const key = `${r.scenario}/${r.server}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const all = results
      .filter((x) => x.scenario === r.scenario && x.server === r.server)
      .sort(
        (a, b) =>
          (a.latencyMs.p50 ?? Number.POSITIVE_INFINITY) -
          (b.latencyMs.p50 ?? Number.POSITIVE_INFINITY),
      );
    out.push(all[Math.floor((all.length - 1) / 2)]!);
  }
  return out;
}

/** The range of p50, p99 and server CPU over the rounds, per scenario and server. */
function spreads(results: readonly Result[]): string[] {
  const out: string[] = [];
  for (const m of medians(results)) {
    const all = results.filter((x) => x.scenario === m.scenario && x.server === m.server);
    if (all.length < 2) continue;
    const range = (pick: (x: Result) => number | null | undefined, f: (v: number) => string) => {
      const v = all.map(pick).filter((x): x is number => x != null);
      return v.length === 0 ? "—" : `${f(Math.min(...v))}–${f(Math.max(...v))}`;
    };
    out.push(
      `${m.scenario} ${m.label}: over ${all.length} rounds p50 ${range((x) => x.latencyMs.p50, ms)} ms, p99 ${range((x) => x.latencyMs.p99, ms)} ms, server CPU ${range(
        (x) => x.cpu?.server,
        (v) => pct(v),
      )}, RSS ${range((x) => rss(x.memAfter), mib)} MiB`,
    );
  }
  return out;
}

function ratios(results: readonly Result[]): Ratio[] {
  const out: Ratio[] = [];
  for (const w of results.filter((r) => r.server === "ws")) {
    for (const d of results.filter((r) => r.scenario === w.scenario && r.server !== "ws")) {
      out.push({
        scenario: w.scenario,
        duplex: d.server,
        p50: ratio(d.latencyMs.p50, w.latencyMs.p50),
        p99: ratio(d.latencyMs.p99, w.latencyMs.p99),
        rss: ratio(rss(d.memAfter), rss(w.memAfter)),
      });
    }
  }
  return out;
}

function renderRatios(list: readonly Ratio[]): string {
  const x = (v: number | null): string => (v === null ? "—" : `${v.toFixed(2)}x`);
  return list
    .map(
      (r) =>
        `  ${r.scenario}, ${SERVERS[r.duplex].label} / ws: p50 ${x(r.p50)}, p99 ${x(r.p99)}, RSS ${x(r.rss)}`,
    )
    .join("\n");
}

function notes(results: readonly Result[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    const tag = `${r.scenario} ${r.label}${r.round !== undefined && r.round > 1 ? ` (round ${r.round})` : ""}`;
    for (const p of r.problems) out.push(`${tag}: ${p}`);
    const c = r.cpu;
    if (c !== null && c.loadgen > LOADGEN_BUSY) {
      out.push(`${tag}: load generator at ${pct(c.loadgen)} CPU: it may be what limits this run`);
    }
    if (c?.serverCoreOther != null && c.serverCoreOther > 0.1) {
      out.push(`${tag}: ${pct(c.serverCoreOther)} of core ${SERVER_CPU} used by other processes`);
    }
    if (c?.loadgenCoreOther != null && c.loadgenCoreOther > 0.2) {
      out.push(`${tag}: ${pct(c.loadgenCoreOther)} of core ${LOADGEN_CPU} used by others`);
    }
    if (r.targetRate !== null && r.pubRate !== null && r.pubRate < r.targetRate * 0.97) {
      out.push(`${tag}: published ${rate(r.pubRate)}/s of the ${rate(r.targetRate)}/s asked`);
    }
  }
  return out;
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const list = scenarios(args);
  if (list.length === 0) usage(`no scenario id contains "${args.only}"`);
  const timing: Timing = args.quick ? { warmup: 1, duration: 2 } : { warmup: 1, duration: 5 };
  // The whole run stays within 3 minutes (1 with --quick) per round.
  const budgetMs = (args.quick ? 60 : 180) * 1000 * args.rounds;
  const started = Date.now();
  await bundleServers();
  // Every thread of this process (the load generator) on the load generator's core.
  const pinned = canPin() && pinProcess(process.pid, LOADGEN_CPU);

  const meta = {
    ...machine(cpuModel()),
    memoryGiB: memoryGiB(),
    pinning: pinned
      ? `server taskset -c ${SERVER_CPU}, load generator (this process) taskset -c ${LOADGEN_CPU}`
      : "not pinned (taskset missing or fewer than 2 CPUs)",
    loadAverageAtStart: loadAverage(),
    ws: wsVersion,
    settings: {
      quick: args.quick,
      timing,
      rate: args.rate,
      subs: args.subs,
      stalled: args.stalled,
      fillBytes: args.fillBytes,
      fillChunkBytes: FILL_CHUNK,
      payloadBytes: PAYLOAD_BYTES,
      throughput: { subs: THROUGHPUT_SUBS, window: THROUGHPUT_WINDOW },
      duplexNamespace: {
        publish: "all",
        historySize: 100,
        maxQueueBytes: MIB,
        slowConsumer: "drop | disconnect (per server row)",
      },
      quietWaitMs: args.quietWaitMs,
      rounds: args.rounds,
    },
  };
  console.log("Realtime fan-out: Duplex RealtimeServer vs a plain ws broadcast server");
  console.log(machineSummary(meta));
  console.log(
    `  each measurement: fresh server, ${timing.warmup} s warm-up, ${timing.duration} s measured; payload ~${PAYLOAD_BYTES} B JSON\n`,
  );

  // Rounds repeat the whole list (each scenario's servers side by side in every round).
  const runs = Array.from({ length: args.rounds }, (_, round) =>
    list.flatMap((s) => s.servers.map((id) => [s, id, round + 1] as const)),
  ).flat();
  const results: Result[] = [];
  const skipped: string[] = [];
  let duplexThroughput: number | null = null;
  /** What one measurement takes, roughly (without waiting for quiet cores). */
  const estimate = (s: Scenario): number => {
    const late = s.stalled > 0 && args.lateSample ? LATE_SAMPLE_MS / 1000 - timing.duration : 0;
    return (timing.warmup + timing.duration + 8 + Math.max(0, late)) * 1000;
  };
  /** Time left in the budget once runs[from...] are done: for quiet waits and re-runs. */
  const slack = (from: number): number =>
    budgetMs - (Date.now() - started) - runs.slice(from).reduce((a, [x]) => a + estimate(x), 0);
  for (const [i, [s, id, round]] of runs.entries()) {
    const tag = `${s.id} ${SERVERS[id].label}${args.rounds > 1 ? ` (round ${round})` : ""}`;
    if (s.rate === null && SERVERS[id].protocol === "duplex") duplexThroughput = null;
    if (Date.now() - started + estimate(s) > budgetMs) {
      skipped.push(`${tag}: skipped (time budget of ${budgetMs / 1000} s)`);
      continue;
    }
    let wsRate: number | null = null;
    if (s.rate === null && SERVERS[id].protocol === "ws") {
      wsRate = duplexThroughput;
      if (wsRate === null) {
        skipped.push(`${tag}: skipped (needs Duplex's throughput run for its rate)`);
        continue;
      }
    }
    process.stderr.write(`[${i + 1}/${runs.length}] ${tag} ...`);
    const quiet = (from: number): number => Math.min(args.quietWaitMs, Math.max(0, slack(from)));
    let r = await runOne(s, id, timing, args, pinned, wsRate, quiet(i));
    if (disturbed(r) && slack(i + 1) >= estimate(s)) {
      // Other processes took CPU on our cores meanwhile: once more, keep the quieter one.
      process.stderr.write(" (disturbed by other processes: re-running)");
      const rerunQuiet = Math.min(args.quietWaitMs, Math.max(0, slack(i + 1) - estimate(s)));
      const again = {
        ...(await runOne(s, id, timing, args, pinned, wsRate, rerunQuiet)),
        attempt: 2,
      };
      if (again.ok === r.ok && others(again) < others(r)) r = again;
    }
    results.push({ ...r, round });
    if (s.rate === null && SERVERS[id].protocol === "duplex" && r.pubRate !== null) {
      duplexThroughput = r.pubRate;
    }
    process.stderr.write(
      ` p50 ${ms(r.latencyMs.p50)} ms, p99 ${ms(r.latencyMs.p99)} ms, ${count(r.delivered)}/${count(r.expected)} (${r.seconds.toFixed(1)} s)${r.ok ? "" : ` PROBLEM: ${r.problems.join("; ")}`}\n`,
    );
  }

  const shown = args.rounds > 1 ? medians(results) : results;
  const table = renderTable(shown);
  const ratioList = ratios(shown);
  if (args.rounds > 1)
    console.log(`Medians of ${args.rounds} rounds (the round with the median p50):`);
  console.log(table);
  console.log("\nDuplex / ws:");
  console.log(renderRatios(ratioList));
  const details = results.map((r) => {
    const fill =
      r.fill === null
        ? ""
        : `; pre-fill ${mib(r.fill.bytes)} MiB to each stalled subscriber in ${r.fill.seconds.toFixed(2)} s`;
    const heap = `heap used ${mib(r.memBefore?.heapUsed)} → ${mib(r.memAfter?.heapUsed)} MiB, heap total ${mib(r.memBefore?.heapTotal)} → ${mib(r.memAfter?.heapTotal)} MiB`;
    const f = r.memFilled;
    const a = r.memAfter;
    const growth =
      f === null || a === null || f.heapUsed == null || a.heapUsed == null
        ? ""
        : `\n    from the pre-fill to the end (${(r.publishSeconds ?? 0).toFixed(1)} s of publishing): heap used ${signed((a.heapUsed - f.heapUsed) / MIB)} MiB (${signed((a.heapUsed - f.heapUsed) / MIB / (r.publishSeconds ?? 1))} MiB/s), queued ${signed(((a.queuedBytes ?? 0) - (f.queuedBytes ?? 0)) / MIB)} MiB, RSS ${signed(((rss(a) ?? 0) - (rss(f) ?? 0)) / MIB)} MiB`;
    const l = r.memLate;
    const late =
      l === null
        ? ""
        : `\n    ${(l.afterFillSeconds ?? 0).toFixed(1)} s after the pre-fill: ${l.connections} connections${l.sessions == null ? "" : ` (${l.sessions} sessions)`}, ${mib(l.queuedBytes)} MiB queued, heap used ${mib(l.heapUsed)} MiB, RSS ${mib(rss(l))} MiB`;
    return `  ${r.scenario} ${r.label}${r.round !== undefined && args.rounds > 1 ? ` (round ${r.round})` : ""}: ${count(r.published)} publications measured at ${rate(r.pubRate)}/s, ${rate(r.deliveriesPerSecond)} deliveries/s received during it, ${r.pushBytes ?? "—"} B per push; ${heap}${fill}${r.attempt > 1 ? " (second attempt)" : ""}\n    worst latency per second of the window: ${r.maxPerSecondMs.map(ms).join(", ")} ms${growth}${late}`;
  });
  console.log(`\n${details.join("\n")}`);
  const allNotes = [...spreads(results), ...notes(results), ...skipped];
  if (allNotes.length > 0) console.log(`\nnotes:\n${allNotes.map((n) => `  ${n}`).join("\n")}`);
  const elapsed = (Date.now() - started) / 1000;
  console.log(`\n${results.length} measurements in ${elapsed.toFixed(0)} s`);

  writeJson(args.json, {
    meta: { ...meta, loadAverageAtEnd: loadAverage(), elapsedSeconds: elapsed },
    scenarios: list,
    results,
    ratios: ratioList,
    notes: allNotes,
    table,
  });
  console.log(`wrote ${args.json}`);
}

await main();
