/**
 * `npm run bench` — Duplex vs ws micro-benchmarks, side by side in the same run.
 *
 *   npm run bench                        all cases (about 2-3 minutes)
 *   npm run bench -- --quick             shorter warm-ups and fewer rounds (a smoke run, <1 min)
 *   npm run bench -- --filter parse/masked   only cases whose id contains the text
 *   npm run bench -- --list              print the case ids
 *   npm run bench -- --json out.json     write the JSON report elsewhere
 *   npm run bench -- --default-malloc    leave glibc malloc at its defaults (see WARM_MALLOC_ENV)
 *
 * Each contender of a case runs in its own worker process (bench/worker.ts, bundled once with
 * esbuild), driven round by round over IPC; see harness.ts for the method. Prints one Markdown
 * table and writes reports/bench-micro.json. When `taskset` exists the script re-executes itself
 * pinned to one core (`taskset -c 1`, the workers inherit it) unless DUPLEX_BENCH_PINNED is set.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { allCases } from "./cases.js";
import { describeDeflatePayloads } from "./deflate.bench.js";
import {
  buildCase,
  type CaseResult,
  type CaseSpec,
  MIN_CPU_SHARE,
  renderTable,
  runCase,
  type Settings,
  TABLE_HEADER,
  tableRows,
} from "./harness.js";
import { usageHandler } from "./lib/args.js";
import { bundleForNode } from "./lib/bundle.js";
import { tasksetWorks } from "./lib/cpu.js";
import { loadAverage, machine, writeJson } from "./lib/report.js";
import { CHUNK_BYTES } from "./protocol.bench.js";
import { wsNativeAddons, wsVersion } from "./ws-internals.js";

const DEFAULT_TIMING = { warmupMs: 400, warmupMaxMs: 1500, roundMs: 100, rounds: 7 } as const;
const QUICK_TIMING = { warmupMs: 150, warmupMaxMs: 400, roundMs: 40, rounds: 3 } as const;
const PIN_CPU = "1";

interface Args {
  readonly quick: boolean;
  readonly list: boolean;
  readonly defaultMalloc: boolean;
  readonly filter: string | null;
  readonly json: string;
}

const usage: (message?: string) => never = usageHandler(
  "bench",
  "usage: npm run bench -- [--quick] [--filter <substring>] [--list] [--json <path>] [--default-malloc]",
);

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let list = false;
  let defaultMalloc = false;
  let filter: string | null = null;
  let json = fileURLToPath(new URL("../reports/bench-micro.json", import.meta.url));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--quick") quick = true;
    else if (arg === "--list") list = true;
    else if (arg === "--default-malloc") defaultMalloc = true;
    else if (arg === "--filter" || arg === "--json") {
      const value = argv[++i];
      if (value === undefined || value === "") usage(`${arg} needs a value`);
      if (arg === "--filter") filter = value;
      else json = value;
    } else if (arg.startsWith("--filter=")) filter = arg.slice("--filter=".length);
    else if (arg.startsWith("--json=")) json = arg.slice("--json=".length);
    else if (arg === "--help" || arg === "-h") usage();
    else usage(`unknown argument ${arg}`);
  }
  return { quick, list, defaultMalloc, filter, json };
}

/**
 * Re-run this script under `taskset -c 1` (one core: less scheduler noise, and comparable runs).
 * Returns the child's exit code, or null when we should run here (already pinned, opted out, or
 * taskset is missing or cannot pin).
 */
function reexecPinned(): number | null {
  if (process.env.DUPLEX_BENCH_PINNED !== undefined) return null;
  if (!tasksetWorks(PIN_CPU)) return null;
  const child = spawnSync(
    "taskset",
    ["-c", PIN_CPU, process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: "inherit",
      env: { ...process.env, DUPLEX_BENCH_PINNED: `taskset -c ${PIN_CPU}` },
    },
  );
  if (child.error !== undefined) throw child.error;
  return child.status ?? 1;
}

/** The CPUs this process may run on (Linux), e.g. "1" when pinned. */
function allowedCpus(): string | null {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    return /^Cpus_allowed_list:\s*(.+)$/m.exec(status)?.[1]?.trim() ?? null;
  } catch {
    return null;
  }
}

function pinningNote(): string {
  const cpus = allowedCpus() ?? "unknown";
  const pinned = process.env.DUPLEX_BENCH_PINNED;
  if (pinned !== undefined) {
    return `DUPLEX_BENCH_PINNED=${pinned}; allowed CPUs: ${cpus} (zlib's thread pool shares them)`;
  }
  return `not pinned (taskset missing or unable to pin); allowed CPUs: ${cpus}`;
}

/**
 * Bundle bench/worker.ts (and the sources it benchmarks) into one plain .mjs in reports/.bench/,
 * so each worker process starts in ~50 ms with plain `node` instead of ~600 ms under tsx.
 * esbuild is what tsx uses to strip types too, so the benchmarked code is the same.
 */
async function bundleWorker(): Promise<string> {
  const outfile = fileURLToPath(new URL("../reports/.bench/worker.mjs", import.meta.url));
  await bundleForNode({
    entryPoints: [fileURLToPath(new URL("./worker.ts", import.meta.url))],
    outfile,
  });
  return outfile;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.list) {
    for (const s of allCases()) console.log(s.id);
    return;
  }
  const pinnedExit = reexecPinned();
  if (pinnedExit !== null) process.exit(pinnedExit);

  const settings: Settings = {
    ...(args.quick ? QUICK_TIMING : DEFAULT_TIMING),
    warmMalloc: !args.defaultMalloc,
  };
  const specs: CaseSpec[] = allCases();
  const selected =
    args.filter === null ? specs : specs.filter((s) => s.id.includes(args.filter as string));
  if (selected.length === 0) {
    usage(`no case id contains "${args.filter}"; ids:\n  ${specs.map((s) => s.id).join("\n  ")}`);
  }

  const addons = wsNativeAddons();
  const meta = {
    ...machine(),
    pinning: pinningNote(),
    loadAverageAtStart: loadAverage(),
    ws: wsVersion,
    wsNativeAddons: addons,
    settings,
    quick: args.quick,
    filter: args.filter,
    chunkBytes: CHUNK_BYTES,
  };
  const addonText = `bufferutil ${addons.bufferutil ? "INSTALLED" : "not installed"}, utf-8-validate ${addons["utf-8-validate"] ? "INSTALLED" : "not installed"}`;
  console.log("Duplex vs ws micro-benchmarks");
  console.log(`  node ${meta.node} (V8 ${meta.v8}), ${meta.platform}`);
  console.log(`  CPU: ${meta.cpu} (${meta.logicalCpus} logical CPUs)`);
  console.log(`  pinning: ${meta.pinning}`);
  console.log(
    `  load average at start: ${meta.loadAverageAtStart.join(" ")}${(meta.loadAverageAtStart[0] ?? 0) > 0.5 ? " (busy machine: expect noise; disturbed rounds are re-run)" : ""}`,
  );
  console.log(`  ws ${meta.ws}: ${addonText}`);
  console.log(
    "    (ws masks/unmasks with its JS loop and validates UTF-8 with buffer.isUtf8, JS below 24 B)",
  );
  console.log(
    `  each contender in its own process: warm-up ${settings.warmupMs}-${settings.warmupMaxMs} ms until stable, then ${settings.rounds} rounds x ${settings.roundMs} ms interleaved with the other contenders; median shown`,
  );
  console.log(
    settings.warmMalloc
      ? "  workers keep freed memory (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, MALLOC_TOP_PAD_; --default-malloc to disable)"
      : "  glibc malloc at its defaults (--default-malloc): large-buffer cases include page-fault costs",
  );
  console.log(
    "  MB/s = 10^6 payload bytes per second; ratio = median over rounds of subject msg/s / baseline msg/s\n",
  );

  const workerScript = await bundleWorker();
  const started = Date.now();
  const results: CaseResult[] = [];
  for (const [i, s] of selected.entries()) {
    const c = buildCase(s);
    process.stderr.write(`[${i + 1}/${selected.length}] ${c.id} ...`);
    const result = await runCase(c, settings, workerScript);
    results.push(result);
    const summary = result.rows
      .map((r) => `${r.subject}/${r.baseline} ${r.ratio.toFixed(2)}x`)
      .join(", ");
    process.stderr.write(` ${summary}\n`);
  }
  const elapsed = (Date.now() - started) / 1000;

  console.log(renderTable(TABLE_HEADER, results.flatMap(tableRows)));
  const notes = results.filter((r) => r.notes !== null);
  const seen = new Set<string>();
  const noteLines: string[] = [];
  for (const r of notes) {
    const line = `${r.group} ${r.label}: ${r.notes}`;
    if (!seen.has(line)) noteLines.push(line);
    seen.add(line);
  }
  const deflateInfo = results.some((r) => r.group === "deflate")
    ? await describeDeflatePayloads()
    : [];
  if (noteLines.length > 0 || deflateInfo.length > 0) {
    console.log("\nInputs:");
    for (const line of noteLines) console.log(`  ${line}`);
    for (const line of deflateInfo) console.log(`  deflate first-message size, ${line}`);
  }
  console.log(`\n${results.length} cases in ${elapsed.toFixed(0)} s`);

  const retries = results.reduce((n, r) => n + r.retries, 0);
  const contenders = results.reduce((n, r) => n + r.measurements.length, 0);
  const count = (pick: (m: CaseResult["measurements"][number]) => boolean): string[] =>
    results.flatMap((r) => r.measurements.filter(pick).map((m) => `${r.id} ${m.name}`));
  const brief = (names: string[]): string =>
    names.length <= 4 ? names.join(", ") : `${names.slice(0, 4).join(", ")}, ...`;
  const disturbed = count((m) => m.cpuShares.some((x) => x < MIN_CPU_SHARE));
  const unstable = count((m) => m.spread > 0.15);
  console.log(
    `Noise: ${retries} disturbed rounds (CPU share < ${MIN_CPU_SHARE}) were run again; ` +
      `${disturbed.length}/${contenders} contenders still had one; ` +
      `${unstable.length}/${contenders} had rounds spread > 15% (details in the JSON).`,
  );
  if (disturbed.length > 0) console.log(`  still disturbed: ${brief(disturbed)}`);
  if (unstable.length > 0) console.log(`  spread > 15%: ${brief(unstable)}`);

  const loadAverageAtEnd = loadAverage();
  writeJson(args.json, {
    meta: { ...meta, loadAverageAtEnd, elapsedSeconds: elapsed, retries, deflateInfo },
    results,
  });
  console.log(`JSON: ${args.json}`);
}

await main();
