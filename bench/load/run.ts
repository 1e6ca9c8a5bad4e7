/**
 * `npm run bench:load` — Duplex vs ws under load, over loopback, with a native load generator.
 * Method and results: docs/benchmarks-load.md.
 *
 *   npm run bench:load                    every scenario, once (about 2 minutes on a quiet box)
 *   npm run bench:load -- --quick         2 s measurements instead of 5 s (about 1 minute)
 *   npm run bench:load -- --rounds 3      repeat every measurement; the table shows medians
 *   npm run bench:load -- --raw           add a raw node:net server (no WebSocket): the ceiling
 *                                         for echo, the floor for idle memory per connection
 *   npm run bench:load -- --all           also the optional scenarios (echo-pingpong)
 *   npm run bench:load -- --only echo     only scenarios whose id contains the text
 *   npm run bench:load -- --impl duplex   only these servers (comma-separated: duplex,ws,...)
 *   npm run bench:load -- --quiet-wait 60 wait up to 60 s (default 20) for both cores to be idle
 *                                         before each measurement
 *   npm run bench:load -- --profile       then run Duplex's server again in the pipelined echo,
 *                                         broadcast and handshake scenarios, V8 CPU profiler on
 *                                         during the measured interval (reports/load-prof/), and
 *                                         print the functions with the most self time
 *                                         (--profile=ws: the same for the ws server)
 *   npm run bench:load -- --json out.json write the JSON report elsewhere
 *   npm run bench:load -- --duplex-src <dir>  build Duplex's server from another copy of src/
 *                                         (A/B a change with the same harness)
 *
 * Layout: the server under test runs pinned to core 0 (`taskset -c 0`), bench/load/loadgen.c
 * (compiled with `cc -O2` into reports/bin/) pinned to core 1. One fresh server process per
 * measurement, sequentially; the servers are bundled by esbuild into reports/.bench-load/ and
 * run with plain `node --expose-gc` (no loader in the process). CPU use is sampled between the
 * loadgen's MEASURE_START and MEASURE_END lines: the server's utime+stime from /proc/<pid>/stat,
 * each core's busy time from /proc/stat (CPU taken by other processes), the loadgen's own
 * getrusage. Before each measurement the runner waits for both cores to be idle; a measurement
 * disturbed by other processes anyway is run once more. Prints one Markdown table and writes
 * reports/bench-load.json.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Plugin } from "esbuild";
import { usageHandler } from "../lib/args.js";
import { bundleForNode } from "../lib/bundle.js";
import {
  busyShare,
  CLK_TCK,
  type CoreTime,
  canPin,
  coreTimes,
  LOADGEN_CPU,
  processTicks,
  SERVER_CPU,
  waitQuiet,
} from "../lib/cpu.js";
import { ROOT } from "../lib/paths.js";
import { exited, LineReader, type Mem, ServerProcess, stop } from "../lib/process.js";
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
import { formatTop, summarizeProfile } from "./profile-top.js";

const LOADGEN_SRC = join(ROOT, "bench/load/loadgen.c");
const LOADGEN_BIN = join(ROOT, "reports/bin/loadgen");
const BUNDLE_DIR = join(ROOT, "reports/.bench-load");
const PROFILE_DIR = join(ROOT, "reports/load-prof");
/** Above this CPU share the loadgen may be what limits a measurement. */
const LOADGEN_BUSY = 0.85;
/** Below this CPU share the server is not the bottleneck of a throughput measurement. */
const SERVER_BUSY = 0.9;

type Impl = "duplex" | "ws" | "ws-preframed" | "raw";
type Kind = "rate" | "memory";

interface Scenario {
  readonly id: string;
  readonly label: string;
  readonly kind: Kind;
  readonly unit: string;
  readonly loadgen: readonly string[];
  readonly impls: readonly Impl[];
  /** Target for duplex/ws: at least (rate) or at most (memory) this ratio; null for none. */
  readonly target: number | null;
  readonly profile?: boolean;
  /** Not in the default run: only with --all or an --only that names it. */
  readonly optional?: boolean;
}

interface Args {
  readonly quick: boolean;
  readonly raw: boolean;
  /** Include the optional scenarios (see Scenario.optional). */
  readonly all: boolean;
  readonly profile: boolean;
  readonly profileImpl: Impl;
  readonly duplexSrc: string | null;
  /** Only these servers (--impl duplex,ws). */
  readonly impls: readonly Impl[] | null;
  /** Repeat every measurement this many times; the table shows medians (--rounds). */
  readonly rounds: number;
  readonly only: string | null;
  readonly json: string;
}

interface CpuSample {
  readonly at: number;
  readonly serverTicks: number | null;
  readonly cores: readonly CoreTime[];
}

interface LoadgenResult {
  readonly mode: string;
  readonly conns: number;
  readonly open: number;
  readonly window: number;
  readonly size: number;
  readonly seconds: number;
  readonly count: number;
  readonly rate: number;
  readonly published: number;
  readonly loadgenCpu: number;
  readonly p50us: number;
  readonly p99us: number;
  readonly errors: number;
  readonly closedByServer: number;
  readonly badHandshakes: number;
  readonly connectSeconds: number;
  readonly ready: number;
}

interface RunResult {
  readonly scenario: string;
  readonly impl: Impl;
  readonly ok: boolean;
  readonly problem: string | null;
  /** Primary metric: msg/s, deliveries/s, handshakes/s, or KiB per connection (VmRSS). */
  readonly value: number | null;
  readonly serverCpu: number | null;
  readonly loadgenCpu: number | null;
  readonly serverCoreBusy: number | null;
  readonly loadgenCoreBusy: number | null;
  /** Busy share of the server's core not accounted to the server (other processes, IRQs). */
  readonly serverCoreOther: number | null;
  /** The same for the loadgen's core. */
  readonly loadgenCoreOther: number | null;
  /** Busy share of each core just before the measurement (nothing of ours running). */
  readonly busyBefore: readonly number[];
  /** 2 when the first attempt was disturbed by other processes and this is the re-run. */
  readonly attempt: number;
  /** 1-based round (--rounds). */
  readonly round?: number;
  readonly loadgen: LoadgenResult | null;
  readonly memory: {
    readonly before: Mem;
    readonly after: Mem;
    readonly connections: number;
    readonly kibPerConnection: Record<string, number | null>;
  } | null;
  readonly command: string;
  readonly loadgenArgs: readonly string[];
  readonly profile: string | null;
}

const usage: (message?: string) => never = usageHandler(
  "bench:load",
  [
    "usage: npm run bench:load -- [--quick] [--raw] [--all] [--rounds <n>] [--only <text>]",
    "         [--impl <list>] [--quiet-wait <s>] [--profile[=ws]] [--json <path>]",
    "         [--duplex-src <dir>]",
  ].join("\n"),
);

const VALUE_OPTIONS = new Set([
  "--only",
  "--json",
  "--duplex-src",
  "--impl",
  "--quiet-wait",
  "--rounds",
]);

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let raw = false;
  let profile = false;
  let profileImpl: Impl = "duplex";
  let duplexSrc: string | null = null;
  let impls: Impl[] | null = null;
  let rounds = 1;
  let all = false;
  let only: string | null = null;
  let json = join(ROOT, "reports/bench-load.json");
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--quick") quick = true;
    else if (arg === "--raw") raw = true;
    else if (arg === "--all") all = true;
    else if (arg === "--profile") profile = true;
    else if (arg.startsWith("--profile=")) {
      const impl = arg.slice("--profile=".length);
      if (!(impl in SERVER_SCRIPT)) usage(`--profile=<${Object.keys(SERVER_SCRIPT).join("|")}>`);
      profile = true;
      profileImpl = impl as Impl;
    } else if (VALUE_OPTIONS.has(arg)) {
      const value = argv[++i];
      if (value === undefined || value === "") usage(`${arg} needs a value`);
      if (arg === "--only") only = value;
      else if (arg === "--rounds") {
        rounds = Number(value);
        if (!Number.isInteger(rounds) || rounds < 1) usage("--rounds <n>, n >= 1");
      } else if (arg === "--quiet-wait") {
        quietWaitMs = Number(value) * 1000;
        if (!Number.isFinite(quietWaitMs) || quietWaitMs < 0) usage("--quiet-wait <seconds>");
      } else if (arg === "--impl") {
        impls = value.split(",") as Impl[];
        for (const x of impls) if (!(x in SERVER_SCRIPT)) usage(`unknown server ${x}`);
      } else if (arg === "--duplex-src") duplexSrc = value;
      else json = value;
    } else if (arg === "--help" || arg === "-h") usage();
    else usage(`unknown argument ${arg}`);
  }
  return { quick, raw, all, profile, profileImpl, duplexSrc, impls, rounds, only, json };
}

function scenarios(args: Args): Scenario[] {
  const list: Scenario[] = [
    {
      id: "echo",
      label: "echo 64 conns x 64 in flight, 32 B text",
      kind: "rate",
      unit: "msg/s",
      loadgen: ["echo", "--conns", "64", "--window", "64", "--size", "32"],
      impls: args.raw ? ["duplex", "ws", "raw"] : ["duplex", "ws"],
      target: 3,
      profile: true,
    },
    {
      // One message in flight per connection: every message costs the server a wakeup, a read
      // and a write syscall, and on a VM those dominate (the raw node:net echo is no faster).
      // Run on request (--all), with the raw echo; no target.
      id: "echo-pingpong",
      label: "echo 64 conns x 1 in flight (ping-pong), 32 B text",
      kind: "rate",
      unit: "msg/s",
      loadgen: ["echo", "--conns", "64", "--window", "1", "--size", "32"],
      impls: ["duplex", "ws", "raw"],
      target: null,
      optional: true,
    },
    {
      id: "broadcast-1k",
      label: "broadcast to 1,000 conns, 32 B text",
      kind: "rate",
      unit: "deliveries/s",
      loadgen: ["broadcast-recv", "--conns", "1000", "--window", "32", "--size", "32"],
      impls: ["duplex", "ws", "ws-preframed"],
      target: 10,
      profile: true,
    },
    {
      id: "broadcast-10k",
      label: "broadcast to 10,000 conns, 32 B text",
      kind: "rate",
      unit: "deliveries/s",
      loadgen: ["broadcast-recv", "--conns", "10000", "--window", "32", "--size", "32"],
      impls: ["duplex", "ws", "ws-preframed"],
      target: 10,
      profile: true,
    },
    {
      id: "idle-10k",
      label: "idle memory, 10,000 conns (RSS)",
      kind: "memory",
      unit: "KiB/conn",
      loadgen: ["idle", "--conns", "10000"],
      impls: args.raw ? ["duplex", "ws", "raw"] : ["duplex", "ws"],
      target: 0.5,
    },
    {
      id: "handshake",
      label: "handshakes, 32 concurrent (connect, upgrade, 101, RST)",
      kind: "rate",
      unit: "handshakes/s",
      loadgen: ["handshake", "--concurrency", "32"],
      impls: ["duplex", "ws"],
      target: 1.5,
      profile: true,
    },
  ];
  const only = args.only;
  const chosen =
    only === null
      ? list.filter((s) => args.all || s.optional !== true)
      : list.filter(
          (s) => s.id.includes(only) && (args.all || s.optional !== true || s.id === only),
        );
  const keep = args.impls;
  return keep === null
    ? chosen
    : chosen
        .map((s) => ({ ...s, impls: s.impls.filter((x) => keep.includes(x)) }))
        .filter((s) => s.impls.length > 0);
}

// ---- preparation ---------------------------------------------------------------------------

function compileLoadgen(): void {
  const fresh =
    existsSync(LOADGEN_BIN) && statSync(LOADGEN_BIN).mtimeMs >= statSync(LOADGEN_SRC).mtimeMs;
  if (fresh) return;
  mkdirSync(dirname(LOADGEN_BIN), { recursive: true });
  const cc = spawnSync("cc", ["-O2", "-Wall", "-o", LOADGEN_BIN, LOADGEN_SRC], {
    stdio: "inherit",
  });
  if (cc.error !== undefined || cc.status !== 0) {
    throw new Error(`could not compile ${LOADGEN_SRC} with cc (is a C compiler installed?)`);
  }
}

/**
 * Bundle the servers. `duplexSrc` (--duplex-src) builds Duplex's server from another copy of
 * src/ (e.g. a branch checked out elsewhere) to A/B a change with the same harness.
 */
async function bundleServers(duplexSrc: string | null): Promise<void> {
  const srcDir = join(ROOT, "src");
  const redirect: Plugin = {
    name: "duplex-src",
    setup(b) {
      b.onResolve({ filter: /^\.\.?\// }, (a) => {
        if (duplexSrc === null) return undefined;
        const target = resolve(a.resolveDir, a.path);
        if (target !== srcDir && !target.startsWith(`${srcDir}/`)) return undefined;
        const swapped = join(resolve(duplexSrc), target.slice(srcDir.length));
        return { path: swapped.endsWith(".js") ? `${swapped.slice(0, -3)}.ts` : swapped };
      });
    },
  };
  await bundleForNode({
    plugins: [redirect],
    entryPoints: ["server-duplex", "server-ws", "server-raw"].map((n) =>
      join(ROOT, `bench/load/${n}.ts`),
    ),
    outdir: BUNDLE_DIR,
    outExtension: { ".js": ".mjs" },
  });
}

// ---- sampling ------------------------------------------------------------------------------

/** utime + stime of the server, in clock ticks. */
function serverTicks(pid: number): number | null {
  const t = processTicks(pid);
  return t === null ? null : t.user + t.system;
}

function sample(pid: number): CpuSample {
  return { at: performance.now(), serverTicks: serverTicks(pid), cores: coreTimes() };
}

function coreBusy(a: CpuSample, b: CpuSample, core: number): number | null {
  return busyShare(a.cores[core], b.cores[core]);
}

function vmRss(pid: number): number | null {
  try {
    const m = /^VmRSS:\s*(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

// ---- processes -----------------------------------------------------------------------------

const SERVER_SCRIPT: Record<Impl, [script: string, modeSuffix: string]> = {
  duplex: ["server-duplex.mjs", ""],
  ws: ["server-ws.mjs", ""],
  "ws-preframed": ["server-ws.mjs", "-preframed"],
  raw: ["server-raw.mjs", ""],
};

function serverMode(scenario: Scenario, impl: Impl): string {
  const mode = scenario.loadgen[0]!;
  const base = mode === "broadcast-recv" ? "broadcast" : impl === "raw" ? "echo" : mode;
  return base + SERVER_SCRIPT[impl][1];
}

function spawnLoadgen(args: readonly string[], pinned: boolean): ChildProcess {
  const argv = pinned
    ? ["taskset", "-c", LOADGEN_CPU, LOADGEN_BIN, ...args]
    : [LOADGEN_BIN, ...args];
  return spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
}

// ---- one measurement -----------------------------------------------------------------------

async function runOne(
  scenario: Scenario,
  impl: Impl,
  timing: { duration: number; warmup: number },
  pinned: boolean,
  profileFile: string | null,
): Promise<RunResult> {
  const script = join(BUNDLE_DIR, SERVER_SCRIPT[impl][0]);
  const server = new ServerProcess(script, serverMode(scenario, impl), pinned);
  const { command } = server;
  const loadgenArgs = [...scenario.loadgen, ...(impl === "raw" ? ["--raw"] : [])];
  let loadgen: ChildProcess | null = null;
  const base = {
    scenario: scenario.id,
    impl,
    command,
    loadgenArgs, // completed with the port and timing below
    profile: profileFile,
  };
  try {
    const port = await server.ready();
    const pid = server.pid;
    loadgenArgs.push(
      "--port",
      String(port),
      "--duration",
      String(timing.duration),
      "--warmup",
      String(timing.warmup),
      ...(scenario.kind === "rate" ? ["--wait-stdin"] : []),
    );

    let before: Mem | null = null;
    if (scenario.kind === "memory") {
      before = await server.mem();
      before.procVmRss = vmRss(pid);
    }

    loadgen = spawnLoadgen(loadgenArgs, pinned);
    const lg = loadgen;
    const lgOut = new LineReader(lg);
    let stderr = "";
    lg.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    let start: CpuSample | null = null;
    let end: CpuSample | null = null;
    lgOut.onLine((line) => {
      if (line === "MEASURE_START") {
        start = sample(pid);
        if (profileFile !== null) server.child.stdin?.write("prof-start\n");
      } else if (line === "MEASURE_END") {
        end = sample(pid);
        if (profileFile !== null) server.child.stdin?.write(`prof-stop ${profileFile}\n`);
      }
    });
    const profileWritten =
      profileFile === null ? null : server.out.next("PROF ", 120_000, "the server's profile");
    const budget = (timing.duration + timing.warmup + 90) * 1000;
    const resultLine = lgOut.next("RESULT ", budget, "the loadgen's RESULT line");
    // Awaited below; when something else fails first they must not become unhandled rejections.
    resultLine.catch(() => {});
    profileWritten?.catch(() => {});

    let after: Mem | null = null;
    if (scenario.kind === "memory") {
      const r = await Promise.race([
        lgOut.next("READY ", 90_000, "the loadgen's READY line"),
        resultLine,
      ]);
      if (!r.startsWith("READY ")) throw new Error(`loadgen ended early: ${stderr.trim()}`);
      await sleep(1_000); // let the handshakes settle
      after = await server.mem();
      after.procVmRss = vmRss(pid);
      lg.stdin?.write("\n"); // release the connections
    }
    const result = JSON.parse((await resultLine).slice(7)) as LoadgenResult;
    // The loadgen holds its connections until released (--wait-stdin): their teardown stays out
    // of the CPU profile.
    if (profileWritten !== null) await profileWritten;
    lg.stdin?.end();
    await exited(lg, 10_000);
    const problems: string[] = [];
    if (result.errors > 0) problems.push(`${result.errors} connection errors`);
    if (result.badHandshakes > 0) problems.push(`${result.badHandshakes} bad handshakes`);
    if (result.closedByServer > 0) problems.push(`${result.closedByServer} closed by server`);
    if (result.open < result.conns && result.mode !== "handshake")
      problems.push(`${result.open}/${result.conns} open`);
    if (problems.length > 0 && stderr.trim() !== "") problems.push(stderr.trim());

    let serverCpu: number | null = null;
    let serverCoreBusy: number | null = null;
    let loadgenCoreBusy: number | null = null;
    const s = start as CpuSample | null;
    const e = end as CpuSample | null;
    if (s !== null && e !== null && s.serverTicks !== null && e.serverTicks !== null) {
      serverCpu = (e.serverTicks - s.serverTicks) / CLK_TCK / ((e.at - s.at) / 1000);
      serverCoreBusy = coreBusy(s, e, Number(SERVER_CPU));
      loadgenCoreBusy = coreBusy(s, e, Number(LOADGEN_CPU));
    }
    let memory: RunResult["memory"] = null;
    let value: number | null = result.rate;
    if (before !== null && after !== null) {
      const n = result.open;
      const per = (k: string): number | null => {
        const a = after?.[k];
        const b = before?.[k];
        return a == null || b == null || n === 0 ? null : (a - b) / 1024 / n;
      };
      const kibPerConnection = {
        rss: per("procVmRss"),
        heapUsed: per("heapUsed"),
        external: per("external"),
        arrayBuffers: per("arrayBuffers"),
      };
      memory = { before, after, connections: n, kibPerConnection };
      value = kibPerConnection.rss;
    }
    return {
      ...base,
      ok: problems.length === 0,
      problem: problems.length === 0 ? null : problems.join("; "),
      value,
      serverCpu,
      loadgenCpu: scenario.kind === "rate" ? result.loadgenCpu : null,
      serverCoreBusy,
      loadgenCoreBusy,
      serverCoreOther:
        serverCoreBusy !== null && serverCpu !== null
          ? Math.max(0, serverCoreBusy - serverCpu)
          : null,
      loadgenCoreOther:
        loadgenCoreBusy !== null && scenario.kind === "rate"
          ? Math.max(0, loadgenCoreBusy - result.loadgenCpu)
          : null,
      busyBefore: [],
      attempt: 1,
      loadgen: result,
      memory,
    };
  } catch (error) {
    return {
      ...base,
      ok: false,
      problem: error instanceof Error ? error.message : String(error),
      value: null,
      serverCpu: null,
      loadgenCpu: null,
      serverCoreBusy: null,
      loadgenCoreBusy: null,
      serverCoreOther: null,
      loadgenCoreOther: null,
      busyBefore: [],
      attempt: 1,
      loadgen: null,
      memory: null,
    };
  } finally {
    if (loadgen !== null) await stop(loadgen, () => loadgen?.stdin?.end());
    await server.stop();
  }
}

/** How long to wait for a quiet machine before each measurement (--quiet-wait <s>). */
let quietWaitMs = 20_000;

/** Wait (up to --quiet-wait s) until cores 0 and 1 are nearly idle: others skew the results. */
function waitQuietCores(): Promise<number[]> {
  let announced = false;
  return waitQuiet(quietWaitMs, 1_000, () => {
    if (!announced) process.stderr.write(" (waiting for other processes to quiet down)");
    announced = true;
  });
}

function disturbed(r: RunResult): boolean {
  return (r.serverCoreOther ?? 0) > 0.1 || (r.loadgenCoreOther ?? 0) > 0.3;
}

/** One measurement on a quiet machine; re-run once when other processes took CPU meanwhile. */
async function measure(
  scenario: Scenario,
  impl: Impl,
  timing: { duration: number; warmup: number },
  pinned: boolean,
  profileFile: string | null,
): Promise<RunResult> {
  const busyBefore = await waitQuietCores();
  const first = { ...(await runOne(scenario, impl, timing, pinned, profileFile)), busyBefore };
  if (!disturbed(first) || profileFile !== null) return first;
  process.stderr.write(" (disturbed by other processes: re-running)");
  const quietAgain = await waitQuietCores();
  const again = {
    ...(await runOne(scenario, impl, timing, pinned, null)),
    busyBefore: quietAgain,
    attempt: 2,
  };
  const otherOf = (r: RunResult): number => (r.serverCoreOther ?? 1) + (r.loadgenCoreOther ?? 0);
  return again.ok && otherOf(again) < otherOf(first) ? again : first;
}

// ---- report --------------------------------------------------------------------------------

function fmtValue(v: number | null, kind: Kind): string {
  if (v === null) return "—";
  if (kind === "memory") return v.toFixed(2);
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k`;
  return v.toFixed(0);
}

interface Row {
  readonly scenario: string;
  readonly label: string;
  readonly unit: string;
  readonly kind: Kind;
  readonly duplex: number | null;
  readonly ws: number | null;
  readonly ratio: number | null;
  readonly target: string;
  readonly met: boolean | null;
  readonly wsPreframed: number | null;
  readonly ratioPreframed: number | null;
  readonly raw: number | null;
  readonly serverCpu: string;
  readonly loadgenCpu: string;
  readonly notes: string[];
}

/** The run with the median value (the lower middle one for an even count); failed runs last. */
function median(runs: readonly RunResult[]): RunResult | undefined {
  const ok = runs.filter((r) => r.value !== null).sort((a, b) => a.value! - b.value!);
  if (ok.length === 0) return runs[0];
  return ok[Math.floor((ok.length - 1) / 2)];
}

function spread(runs: readonly RunResult[], kind: Kind): string | null {
  const values = runs.map((r) => r.value).filter((v): v is number => v !== null);
  if (values.length < 2) return null;
  return `${fmtValue(Math.min(...values), kind)}–${fmtValue(Math.max(...values), kind)}`;
}

function rows(list: readonly Scenario[], results: readonly RunResult[]): Row[] {
  const out: Row[] = [];
  for (const s of list) {
    const get = (impl: Impl): RunResult | undefined =>
      median(results.filter((r) => r.scenario === s.id && r.impl === impl));
    const d = get("duplex");
    const w = get("ws");
    const wp = get("ws-preframed");
    const raw = get("raw");
    const present = [d, w, wp, raw].filter((x): x is RunResult => x !== undefined);
    const notes: string[] = [];
    for (const x of present) {
      const range = spread(
        results.filter((r) => r.scenario === s.id && r.impl === x.impl),
        s.kind,
      );
      if (range !== null) notes.push(`${x.impl}: median of rounds, range ${range}`);
    }
    for (const x of present) {
      if (!x.ok) notes.push(`${x.impl}: ${x.problem}`);
      if (x.serverCoreOther !== null && x.serverCoreOther > 0.1) {
        notes.push(`${x.impl}: ${pct(x.serverCoreOther)} of core ${SERVER_CPU} used by others`);
      }
      if (x.loadgenCoreOther !== null && x.loadgenCoreOther > 0.3) {
        notes.push(`${x.impl}: ${pct(x.loadgenCoreOther)} of core ${LOADGEN_CPU} used by others`);
      }
      if (x.loadgenCpu !== null && x.loadgenCpu > LOADGEN_BUSY) {
        notes.push(
          `${x.impl}: loadgen at ${pct(x.loadgenCpu)} CPU, near its own limit (a lower bound)`,
        );
      }
      if (x.serverCpu !== null && x.serverCpu < SERVER_BUSY && s.kind === "rate") {
        notes.push(`${x.impl}: server at ${pct(x.serverCpu)} CPU only: not the bottleneck`);
      }
    }
    const t = s.target;
    const row = (label: string, pick: (x: RunResult | undefined) => number | null): Row => {
      const r = ratio(pick(d), pick(w));
      return {
        scenario: s.id,
        label,
        unit: s.unit,
        kind: s.kind,
        duplex: pick(d),
        ws: pick(w),
        ratio: r,
        target: t === null ? "—" : `${s.kind === "memory" ? "≤" : "≥"} ${t}x`,
        met: r === null || t === null ? null : s.kind === "memory" ? r <= t : r >= t,
        wsPreframed: pick(wp),
        ratioPreframed: ratio(pick(d), pick(wp)),
        raw: pick(raw),
        serverCpu: s.kind === "rate" ? present.map((x) => pct(x.serverCpu)).join(" / ") : "—",
        loadgenCpu: s.kind === "rate" ? present.map((x) => pct(x.loadgenCpu)).join(" / ") : "—",
        notes,
      };
    };
    out.push(row(s.label, (x) => x?.value ?? null));
    if (s.kind === "memory") {
      // The V8 heap part alone: less noisy than RSS, which also holds Node's native socket state.
      const heapLabel = s.label.replace("(RSS)", "(V8 heap used)");
      out.push({
        ...row(heapLabel, (x) => x?.memory?.kibPerConnection.heapUsed ?? null),
        notes: [],
      });
    }
  }
  return out;
}

function renderTable(list: readonly Row[]): string {
  const header = [
    "scenario",
    "unit",
    "Duplex",
    "ws",
    "Duplex/ws",
    "target",
    "ws (preframed)",
    "Duplex/ws pre.",
    "raw net",
    "server CPU",
    "loadgen CPU",
  ];
  const rows = list.map((r) => [
    r.label,
    r.unit,
    fmtValue(r.duplex, r.kind),
    fmtValue(r.ws, r.kind),
    r.ratio === null ? "—" : `${r.ratio.toFixed(2)}x`,
    `${r.target} ${r.met === null ? "" : r.met ? "✅" : "❌"}`.trim(),
    fmtValue(r.wsPreframed, r.kind),
    r.ratioPreframed === null ? "—" : `${r.ratioPreframed.toFixed(2)}x`,
    fmtValue(r.raw, r.kind),
    r.serverCpu,
    r.loadgenCpu,
  ]);
  return markdownTable(header, rows);
}

function renderDetails(results: readonly RunResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    const lg = r.loadgen;
    const tag = r.round !== undefined && r.round > 1 ? ` (round ${r.round})` : "";
    if (r.memory !== null) {
      const k = r.memory.kibPerConnection;
      const f = (v: number | null | undefined): string => (v == null ? "—" : v.toFixed(2));
      lines.push(
        `  ${r.scenario} ${r.impl}${tag}: ${r.memory.connections} conns; per connection: RSS ${f(k.rss)} KiB, heapUsed ${f(k.heapUsed)} KiB, external ${f(k.external)} KiB (arrayBuffers ${f(k.arrayBuffers)} KiB)`,
      );
    } else if (lg !== null) {
      const extra =
        lg.mode === "echo"
          ? `, latency p50 ${(lg.p50us / 1000).toFixed(2)} ms p99 ${(lg.p99us / 1000).toFixed(2)} ms`
          : lg.mode === "broadcast-recv"
            ? `, published ${Math.round(lg.published / lg.seconds)} msg/s, delivered ${((lg.count / Math.max(1, lg.published * lg.conns)) * 100).toFixed(1)}% of published x conns`
            : "";
      lines.push(
        `  ${r.scenario} ${r.impl}${tag}: ${Math.round(lg.rate)} /s over ${lg.seconds.toFixed(2)} s${extra}; server CPU ${pct(r.serverCpu)} (core ${SERVER_CPU} busy ${pct(r.serverCoreBusy)}), loadgen CPU ${pct(r.loadgenCpu)} (core ${LOADGEN_CPU} busy ${pct(r.loadgenCoreBusy)})`,
      );
    }
    if (!r.ok) lines.push(`    problem: ${r.problem}`);
  }
  return lines.join("\n");
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const list = scenarios(args);
  if (list.length === 0) usage(`no scenario id contains "${args.only}"`);
  const timing = args.quick ? { duration: 2, warmup: 0.5 } : { duration: 5, warmup: 1 };
  compileLoadgen();
  await bundleServers(args.duplexSrc);
  const pinned = canPin();

  const meta = {
    ...machine(),
    memoryGiB: memoryGiB(),
    pinning: pinned
      ? `server taskset -c ${SERVER_CPU}, loadgen taskset -c ${LOADGEN_CPU}`
      : "not pinned (taskset missing or fewer than 2 CPUs)",
    loadAverageAtStart: loadAverage(),
    ws: wsVersion,
    timing,
    quick: args.quick,
    rounds: args.rounds,
    duplexSrc: args.duplexSrc === null ? "src" : resolve(args.duplexSrc),
  };
  console.log("Duplex vs ws under load (loopback, native loadgen)");
  console.log(machineSummary(meta));
  console.log(
    `  each measurement: fresh server, ${timing.warmup} s warm-up, ${timing.duration} s measured\n`,
  );

  const started = Date.now();
  const results: RunResult[] = [];
  // Rounds repeat the whole list (each scenario's servers side by side in every round).
  const runs = Array.from({ length: args.rounds }, (_, round) =>
    list.flatMap((s) => s.impls.map((impl) => [s, impl, round + 1] as const)),
  ).flat();
  for (const [i, [s, impl, round]] of runs.entries()) {
    const of = args.rounds > 1 ? ` (round ${round}/${args.rounds})` : "";
    process.stderr.write(`[${i + 1}/${runs.length}] ${s.id} ${impl}${of} ...`);
    const t = Date.now();
    const r = { ...(await measure(s, impl, timing, pinned, null)), round };
    results.push(r);
    process.stderr.write(
      ` ${fmtValue(r.value, s.kind)} ${s.unit} (${((Date.now() - t) / 1000).toFixed(1)} s)${r.ok ? "" : ` PROBLEM: ${r.problem}`}\n`,
    );
  }

  const profiles: {
    scenario: string;
    impl: Impl;
    file: string;
    rate: number | null;
    operations: number | null;
    top: ReturnType<typeof summarizeProfile>;
  }[] = [];
  if (args.profile) {
    for (const s of list.filter((x) => x.profile === true)) {
      mkdirSync(PROFILE_DIR, { recursive: true });
      const impl = args.profileImpl;
      if (!s.impls.includes(impl)) continue;
      const file = join(PROFILE_DIR, `${s.id}-${impl}.cpuprofile`);
      process.stderr.write(`[profile] ${s.id} ${impl}, CPU profile of the measured interval ...`);
      const r = await measure(s, impl, timing, pinned, file);
      process.stderr.write(
        ` ${fmtValue(r.value, s.kind)} ${s.unit}${r.ok ? "" : ` PROBLEM: ${r.problem}`}\n`,
      );
      if (!existsSync(file)) continue;
      profiles.push({
        scenario: s.id,
        impl,
        file,
        rate: r.value,
        operations: r.loadgen?.count ?? null,
        top: summarizeProfile(file, join(BUNDLE_DIR, SERVER_SCRIPT[impl][0])),
      });
    }
  }

  const table = rows(list, results);
  console.log(renderTable(table));
  console.log("");
  console.log(renderDetails(results));
  const notes = table.flatMap((r) => r.notes.map((n) => `  ${r.scenario}: ${n}`));
  if (notes.length > 0) console.log(`\nnotes:\n${notes.join("\n")}`);
  for (const p of profiles) {
    const under = `${fmtValue(p.rate, "rate")} ${p.operations === null ? "" : "/s under the profiler"}`;
    console.log(`\n${p.impl} server profile, ${p.scenario}, ${under} (${p.file}):`);
    console.log(formatTop(p.top, 20, p.operations ?? undefined));
  }
  const elapsed = (Date.now() - started) / 1000;
  if (args.rounds > 1) console.log(`\nTable: medians of ${args.rounds} rounds.`);
  console.log(`\n${runs.length} measurements in ${elapsed.toFixed(0)} s`);
  writeJson(args.json, {
    meta: { ...meta, loadAverageAtEnd: loadAverage() },
    scenarios: list,
    table,
    results,
    profiles: profiles.map((p) => ({ ...p, top: p.top.slice(0, 40) })),
  });
  console.log(`wrote ${args.json}`);
}

await main();
