/**
 * `duplex bench`: a bounded load benchmark a user can run anywhere the package is installed.
 * Without --url it starts its own Duplex servers as child processes (pinned to one CPU, the load
 * generator — this process — to another; see ./bench/servers.ts), runs the scenarios of
 * ./bench/scenarios.ts with Duplex's own client, prints a table and writes a JSON report with an
 * SVG chart (./bench/report.ts). SIGINT stops early and still reports what was measured.
 *
 * The developer benchmark with a native load generator and `ws` side by side stays
 * `npm run bench:load` (bench/load/run.ts); this command depends on nothing but src/.
 */

import { performance } from "node:perf_hooks";
import { ProgressBar } from "./bench/progress.js";
import {
  type BenchReport,
  type CpuUse,
  describeSetup,
  formatTable,
  type MeasuredScenario,
  machineInfo,
  packageVersion,
  rounded,
  writeReport,
} from "./bench/report.js";
import {
  atMost,
  HANDSHAKE_CONCURRENCY,
  type MeasureHooks,
  newLive,
  OPEN_CONCURRENCY,
  openOne,
  SCENARIO_UNITS,
  SCENARIOS,
  type ScenarioName,
} from "./bench/scenarios.js";
import {
  type ChildServer,
  type Pinning,
  pinLoadGenerator,
  processCpuSeconds,
  startServer,
} from "./bench/servers.js";
import { CliError, type Command, type Io, integer, parseFlags, UsageError } from "./command.js";

export const BENCH_USAGE = `Usage: duplex bench [options]

Measures a WebSocket server under a bounded load from this process, prints a results table
and writes a JSON report with an SVG chart.

Scenarios:
  echo        N connections, each sending a message and waiting for its echo, again and
              again: messages/s and round-trip latency
  broadcast   one sender, N receivers on the built-in broadcast server, one message in flight:
              deliveries/s and send-to-delivery latency (built-in server only)
  handshake   open and close connections, at most min(N, ${HANDSHAKE_CONCURRENCY}) at a time: handshakes/s and
              connect latency

Options:
  --url URL           measure this server (ws:// or wss://; it must echo for 'echo') instead
                      of starting the built-in Duplex servers
  --scenario NAME     echo, broadcast, handshake or all (default all; with --url, all means
                      echo and handshake)
  --connections N     connections per scenario, 1-10000 (default 100)
  --duration S        seconds measured per scenario, 1-600 (default 5)
  --size BYTES        message size, 1-1048576 (default 32)
  --out DIR           where to write the JSON report and the SVG chart (default ./duplex-bench)
  --json              print the JSON report on stdout instead of the table
  -h, --help          print this help

The built-in servers run in child processes pinned with taskset to the first CPU this process
may use; the load runs in this process, pinned to the second (when taskset and two CPUs exist).
Connections are opened at most ${OPEN_CONCURRENCY} at a time. A progress bar is drawn on stderr when it is a
terminal. Ctrl-C stops early, prints what was measured and exits with 130.`;

const SCENARIO_ORDER: readonly ScenarioName[] = ["echo", "broadcast", "handshake"];
const PREFLIGHT_MS = 3_000;

export interface BenchOptions {
  readonly url?: string;
  readonly scenarios: readonly ScenarioName[];
  readonly connections: number;
  readonly durationS: number;
  readonly size: number;
  readonly out: string;
  readonly json: boolean;
}

/** Parse `duplex bench` flags; throws a UsageError with a one-line message on bad input. */
export function parseBenchArgs(args: readonly string[]): BenchOptions | "help" {
  const { values } = parseFlags(args, {
    url: { type: "string" },
    scenario: { type: "string", default: "all" },
    connections: { type: "string", default: "100" },
    duration: { type: "string", default: "5" },
    size: { type: "string", default: "32" },
    out: { type: "string", default: "duplex-bench" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help === true) return "help";
  const url = values.url;
  if (url !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--url must be a ws:// or wss:// URL, got '${url}'`);
    }
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      throw new UsageError(`--url must be a ws:// or wss:// URL, got '${url}'`);
    }
  }
  const scenario = values.scenario ?? "all";
  let scenarios: ScenarioName[];
  if (scenario === "all") {
    scenarios = SCENARIO_ORDER.filter((s) => url === undefined || s !== "broadcast");
  } else if ((SCENARIO_ORDER as readonly string[]).includes(scenario)) {
    scenarios = [scenario as ScenarioName];
  } else {
    throw new UsageError(
      `--scenario must be one of echo, broadcast, handshake, all, got '${scenario}'`,
    );
  }
  if (url !== undefined && scenarios.includes("broadcast")) {
    throw new UsageError("--scenario broadcast needs the built-in server: leave out --url");
  }
  const out = values.out ?? "duplex-bench";
  if (out === "") throw new UsageError("--out must not be empty");
  return {
    ...(url === undefined ? {} : { url }),
    scenarios,
    connections: integer("--connections", values.connections ?? "", 1, 10_000),
    durationS: integer("--duration", values.duration ?? "", 1, 600),
    size: integer("--size", values.size ?? "", 1, 1_048_576),
    out,
    json: values.json === true,
  };
}

/** Check that --url answers (and echoes, when an echo scenario will run), in one line. */
async function preflight(url: string, echo: boolean, signal: AbortSignal): Promise<void> {
  let ws: Awaited<ReturnType<typeof openOne>>;
  try {
    ws = await openOne(url);
  } catch (e) {
    throw new CliError(`cannot connect to ${url}: ${(e as Error).message}`);
  }
  try {
    if (!echo) return;
    const echoed = new Promise<boolean>((resolve) => {
      ws.addEventListener("message", () => resolve(true), { once: true });
      ws.addEventListener("close", () => resolve(false), { once: true });
    });
    ws.send(Buffer.from("duplex bench"));
    if ((await atMost(echoed, PREFLIGHT_MS, signal)) !== true && !signal.aborted) {
      throw new CliError(
        `${url} did not echo a test message within ${PREFLIGHT_MS / 1000} s (the echo scenario needs an echo server; try --scenario handshake)`,
      );
    }
  } finally {
    ws.close();
  }
}

/** Samples this process's CPU time, and the server's when it is ours, over a measurement. */
function cpuMeter(serverPid: number | null): { hooks: MeasureHooks; result(): CpuUse | null } {
  let t0 = 0;
  let load0 = process.cpuUsage();
  let server0: number | null = null;
  let out: CpuUse | null = null;
  const percent = (seconds: number, wall: number): number => Math.round((seconds / wall) * 100);
  return {
    hooks: {
      start() {
        t0 = performance.now();
        load0 = process.cpuUsage();
        server0 = serverPid === null ? null : processCpuSeconds(serverPid);
      },
      end() {
        const wall = (performance.now() - t0) / 1000;
        if (wall < 0.2) return; // too short to mean anything (interrupted at once)
        const load = process.cpuUsage(load0);
        const server1 = serverPid === null ? null : processCpuSeconds(serverPid);
        out = {
          load: percent((load.user + load.system) / 1e6, wall),
          server: server0 === null || server1 === null ? null : percent(server1 - server0, wall),
        };
      },
    },
    result: () => out,
  };
}

export const benchCommand: Command = {
  name: "bench",
  summary: "load benchmark with a results table and chart",
  usage: BENCH_USAGE,
  async run(args: readonly string[], io: Io): Promise<number> {
    const options = parseBenchArgs(args);
    if (options === "help") {
      io.stdout.write(`${BENCH_USAGE}\n`);
      return 0;
    }
    const { signal } = io;
    const date = new Date().toISOString();
    const progress = io.stderr.isTTY === true ? new ProgressBar(io.stderr) : null;
    const results: MeasuredScenario[] = [];
    const servers: ChildServer[] = [];
    let pinning: Pinning | null = null;
    let targetUrl = options.url ?? "";
    try {
      if (options.url !== undefined) {
        progress?.note(`connecting to ${options.url}`);
        await preflight(options.url, options.scenarios.includes("echo"), signal);
      } else {
        pinning = pinLoadGenerator();
      }
      for (const scenario of options.scenarios) {
        if (signal.aborted) break;
        let url = options.url;
        let serverPid: number | null = null;
        if (url === undefined) {
          const kind = scenario === "broadcast" ? "broadcast" : "echo";
          let server = servers.find((s) => s.kind === kind);
          if (server === undefined) {
            progress?.note(`starting the built-in ${kind} server`);
            server = await startServer(kind, pinning?.server ?? null, signal);
            servers.push(server);
          }
          url = server.url;
          serverPid = server.pid;
          if (targetUrl === "") targetUrl = server.url;
        }
        const live = newLive();
        const cpu = cpuMeter(serverPid);
        progress?.start(scenario, options.durationS * 1000, SCENARIO_UNITS[scenario], live);
        const result = await SCENARIOS[scenario]({
          url,
          connections: options.connections,
          durationMs: options.durationS * 1000,
          size: options.size,
          signal,
          live,
          onMeasure: cpu.hooks,
        });
        progress?.stop();
        results.push(rounded({ ...result, cpuPercent: cpu.result() }));
        if (result.interrupted) break;
      }
    } catch (e) {
      // Interrupted while starting a server or connecting: report what was measured.
      if (!(signal.aborted && e instanceof CliError && /^interrupted/.test(e.message))) throw e;
    } finally {
      progress?.stop();
      await Promise.all(servers.map((s) => s.stop()));
      pinning?.restore();
    }
    const report: BenchReport = {
      tool: "duplex bench",
      version: packageVersion(),
      date,
      target: {
        url: targetUrl,
        server: options.url === undefined ? "built-in" : "external",
        pinning: pinning === null ? null : { server: pinning.server, load: pinning.load },
      },
      options: {
        scenarios: options.scenarios,
        connections: options.connections,
        durationS: options.durationS,
        size: options.size,
      },
      machine: machineInfo(),
      interrupted: signal.aborted,
      results,
    };
    let files: { json: string; svg: string } | null = null;
    if (results.length > 0) {
      try {
        files = writeReport(report, options.out);
      } catch (e) {
        throw new CliError(`cannot write the report into ${options.out}: ${(e as Error).message}`);
      }
    }
    if (options.json) {
      io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      io.stdout.write(`${formatTable(report)}\n\n${describeSetup(report)}\n`);
      if (files !== null) io.stdout.write(`Report: ${files.json}\nChart:  ${files.svg}\n`);
    }
    return signal.aborted ? 130 : 0;
  },
};
