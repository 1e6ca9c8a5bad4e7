/**
 * Micro-benchmark harness: time-boxed loops, median of rounds, a text table and a JSON report.
 *
 * A {@link Case} is one workload (e.g. "parse, masked, 16 KiB binary") run by several
 * {@link Contender}s (Duplex, ws, ...). Every contender runs the same unit of work: a fixed number
 * of messages and payload bytes. The method, in order of how much it mattered on a shared VM:
 *
 * 1. One process per contender ({@link runCase}): no JIT feedback shared between libraries or
 *    cases. In one shared process the same case moved by up to 10x depending on what ran before.
 * 2. Warm-up until the throughput settles ({@link warmUp}), not for a fixed time.
 * 3. Workers keep freed memory ({@link WARM_MALLOC_ENV}), so large-buffer cases measure CPU work,
 *    not page faults of a tiny fresh heap.
 * 4. Time-boxed rounds timed with process.hrtime.bigint(), interleaved A B A B (order reversed
 *    every other round); the ratio is the median of per-round ratios, so a slow phase of the
 *    machine lands on both sides of a pair.
 * 5. A round in which the process got less than {@link MIN_CPU_SHARE} of a CPU (another process
 *    took the core) is run again once, and the shares are reported.
 */
import { type ChildProcess, fork } from "node:child_process";
import { setImmediate as yieldToLoop } from "node:timers/promises";

export interface Contender {
  /** Short name shown in the table, e.g. "duplex", "ws", "buffer.isUtf8". */
  readonly name: string;
  /** Untimed work before each unit (e.g. refresh the input a parser unmasks in place). */
  readonly before?: () => void;
  /** One unit of work: exactly `messagesPerUnit` messages of `bytesPerUnit` payload bytes. */
  readonly run: () => void | Promise<void>;
  /** Untimed check after the warm-up and at the end: throws when the work was not done. */
  readonly verify?: (units: number) => void;
}

export interface Case {
  /** Stable identifier, used by --filter and in the JSON report. */
  readonly id: string;
  readonly group: string;
  /** What the input looks like, for the report (e.g. the share of non-ASCII bytes). */
  readonly notes?: string;
  readonly label: string;
  readonly messagesPerUnit: number;
  readonly bytesPerUnit: number;
  readonly contenders: readonly Contender[];
  /** Rows of the table: [subject, baseline] contender names; the ratio is subject / baseline. */
  readonly compare: readonly (readonly [subject: string, baseline: string])[];
}

/** A case built on demand, so --filter does not pay for building the inputs of skipped cases. */
export interface CaseSpec {
  readonly id: string;
  readonly build: () => Omit<Case, "id">;
}

export function spec(id: string, build: () => Omit<Case, "id">): CaseSpec {
  return { id, build };
}

export function buildCase(s: CaseSpec): Case {
  return { id: s.id, ...s.build() };
}

export interface Settings {
  /** Shortest warm-up per contender; it goes on until the throughput settles (see warmUp). */
  readonly warmupMs: number;
  readonly warmupMaxMs: number;
  readonly roundMs: number;
  readonly rounds: number;
  /** Keep freed memory in the process (see {@link WARM_MALLOC_ENV}). */
  readonly warmMalloc: boolean;
}

/**
 * glibc malloc settings for the worker processes: keep freed memory instead of returning it to
 * the OS. A small, fresh benchmark process otherwise unmaps (or trims) every large buffer it frees
 * and page-faults it back in on the next allocation; on the VM these numbers were taken on, that
 * made large-frame cases 3-60x slower and very noisy, a cost a long-running server with a warm
 * heap mostly does not pay. `--default-malloc` turns this off.
 */
export const WARM_MALLOC_ENV = {
  MALLOC_TRIM_THRESHOLD_: String(256 * 1024 * 1024),
  MALLOC_MMAP_THRESHOLD_: String(32 * 1024 * 1024), // glibc's maximum on 64-bit
  MALLOC_TOP_PAD_: String(64 * 1024 * 1024),
} as const;

export interface Measurement {
  readonly name: string;
  /** How long the warm-up ran before the throughput settled. */
  readonly warmupMs: number;
  /** Median payload throughput, 10^6 bytes per second. */
  readonly mbPerSec: number;
  /** Median messages per second. */
  readonly msgPerSec: number;
  /** Messages per second of every round, in order. */
  readonly roundsMsgPerSec: readonly number[];
  /** CPU share of every round (see {@link Sample.cpuShare}). */
  readonly cpuShares: readonly number[];
  /** Spread of the rounds: (max - min) / median. */
  readonly spread: number;
}

export interface CaseResult {
  readonly id: string;
  readonly group: string;
  readonly label: string;
  readonly notes: string | null;
  readonly messagesPerUnit: number;
  readonly bytesPerUnit: number;
  /** Rounds run again because another process took the core. */
  readonly retries: number;
  readonly measurements: readonly Measurement[];
  /** ratio: median over rounds of subject msg/s / baseline msg/s in the same round. */
  readonly rows: readonly { subject: string; baseline: string; ratio: number }[];
}

function now(): bigint {
  return process.hrtime.bigint();
}

/**
 * Run `c` for about `budgetMs` of timed work (its `before` is not timed); returns the units done,
 * the nanoseconds they took, and the share of a CPU the process got meanwhile.
 */
export async function timedLoop(c: Contender, budgetMs: number): Promise<Sample> {
  const budget = BigInt(Math.round(budgetMs * 1e6));
  let elapsed = 0n;
  let units = 0;
  const before = c.before;
  const cpu0 = process.cpuUsage();
  const wall0 = now();
  do {
    if (before !== undefined) before();
    const t0 = now();
    const r = c.run();
    if (r !== undefined) await r;
    elapsed += now() - t0;
    units++;
  } while (elapsed < budget);
  const cpu = process.cpuUsage(cpu0);
  const wall = Number(now() - wall0);
  return { units, ns: Number(elapsed), cpuShare: ((cpu.user + cpu.system) * 1e3) / wall };
}

export interface Sample {
  readonly units: number;
  readonly ns: number;
  /**
   * CPU time of the process (all its threads, zlib's pool included) / wall time. Pinned to one
   * core and undisturbed this is close to 1 (deflate too: the pool works while the main thread
   * waits); well below 1, another process took the core during the round.
   */
  readonly cpuShare: number;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >>> 1;
  if (s.length === 0) return Number.NaN;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

// ---- isolation ---------------------------------------------------------------------------------

/**
 * Messages between the runner and a worker process. Each contender runs in its own process so
 * the JIT's type feedback from one library (or one earlier case) never slows down another: in a
 * shared process, results moved by up to 10x depending on case order.
 */
export type ToWorker =
  | { readonly type: "warmup"; readonly minMs: number; readonly maxMs: number }
  | { readonly type: "round"; readonly ms: number; readonly minCpuShare: number }
  | { readonly type: "done" };
export type FromWorker =
  | { readonly type: "loaded" }
  | { readonly type: "ready"; readonly warmupMs: number }
  | {
      readonly type: "sample";
      readonly units: number;
      readonly ns: number;
      readonly cpuShare: number;
      readonly attempts: number;
    }
  | { readonly type: "finished" }
  | { readonly type: "error"; readonly message: string };

/** A contender running in a worker process, driven step by step. */
class Worker {
  private readonly child: ChildProcess;
  private readonly inbox: FromWorker[] = [];
  private waiter: ((m: FromWorker) => void) | null = null;
  private exited: string | null = null;

  constructor(script: string, caseId: string, contender: string, settings: Settings) {
    this.child = fork(script, [caseId, contender], {
      // No --expose-gc: a forced full GC between rounds made some cases 10x slower for the rest
      // of the run (seen with ws's Sender#send), which no real server would see.
      execArgv: [],
      env: settings.warmMalloc ? { ...process.env, ...WARM_MALLOC_ENV } : process.env,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.child.on("message", (m: FromWorker) => this.deliver(m));
    this.child.on("exit", (code, signal) => {
      this.exited = `worker ${caseId} ${contender} exited (${signal ?? code})`;
      this.deliver({ type: "error", message: this.exited });
    });
  }

  private deliver(m: FromWorker): void {
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w(m);
    } else {
      this.inbox.push(m);
    }
  }

  private async next(): Promise<FromWorker> {
    const queued = this.inbox.shift();
    if (queued !== undefined) return queued;
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  async expect<T extends FromWorker["type"]>(type: T): Promise<Extract<FromWorker, { type: T }>> {
    const m = await this.next();
    if (m.type === "error") throw new Error(m.message);
    if (m.type !== type) throw new Error(`expected ${type} from worker, got ${m.type}`);
    return m as Extract<FromWorker, { type: T }>;
  }

  send(m: ToWorker): void {
    if (this.exited !== null) throw new Error(this.exited);
    this.child.send(m);
  }

  kill(): void {
    if (this.exited === null) this.child.kill();
  }
}

/**
 * Measure case `c` with one worker process per contender. The workers start and build their
 * inputs together; then each warms up alone (so the warm-up has the core to itself); then come
 * `rounds` timed rounds, one worker at a time, interleaved A B A B ... with the order reversed
 * every other round, so slow drift of the machine hits all contenders alike.
 */
export async function runCase(
  c: Case,
  settings: Settings,
  workerScript: string,
): Promise<CaseResult> {
  const workers = c.contenders.map((k) => new Worker(workerScript, c.id, k.name, settings));
  const perRound = c.contenders.map((): number[] => []);
  const shares = c.contenders.map((): number[] => []);
  const warmups: number[] = [];
  let retries = 0;
  try {
    await Promise.all(workers.map((w) => w.expect("loaded")));
    for (const w of workers) {
      w.send({ type: "warmup", minMs: settings.warmupMs, maxMs: settings.warmupMaxMs });
      warmups.push((await w.expect("ready")).warmupMs);
    }
    for (let r = 0; r < settings.rounds; r++) {
      const order = workers.map((_, i) => i);
      if (r % 2 === 1) order.reverse();
      for (const i of order) {
        const w = workers[i]!;
        w.send({ type: "round", ms: settings.roundMs, minCpuShare: MIN_CPU_SHARE });
        const sample = await w.expect("sample");
        perRound[i]!.push((sample.units * c.messagesPerUnit * 1e9) / sample.ns);
        shares[i]!.push(sample.cpuShare);
        retries += sample.attempts - 1;
      }
    }
    for (const w of workers) w.send({ type: "done" });
    await Promise.all(workers.map((w) => w.expect("finished")));
  } finally {
    for (const w of workers) w.kill();
  }
  return summarize(c, perRound, shares, warmups, retries);
}

/** Runs per round when the process did not get the core to itself (one retry). */
const MAX_ATTEMPTS = 2;
/** Below this CPU share a CPU-bound round counts as disturbed. */
export const MIN_CPU_SHARE = 0.9;
/** Warm-up steps: the warm-up ends once two steps in a row agree within WARM_TOLERANCE. */
const WARM_STEP_MS = 100;
const WARM_TOLERANCE = 0.05;

/**
 * Warm up until the throughput settles: at least `minMs`, then until two consecutive 100 ms steps
 * agree within 5% (or `maxMs`). Besides the JIT, a fresh process pays for first-touch page faults
 * of its growing heaps for a while, so a fixed short warm-up under-measured large-buffer cases.
 * Returns the milliseconds spent and the units run.
 */
async function warmUp(
  contender: Contender,
  minMs: number,
  maxMs: number,
): Promise<[number, number]> {
  let spent = 0;
  let units = 0;
  let last = 0;
  for (;;) {
    const step = await timedLoop(contender, WARM_STEP_MS);
    spent += step.ns / 1e6;
    units += step.units;
    const rate = step.units / step.ns;
    const settled = last > 0 && Math.abs(rate - last) <= WARM_TOLERANCE * last;
    if (spent >= maxMs || (spent >= minMs && settled)) return [spent, units];
    last = rate;
  }
}

/** Worker side: report loaded, then warm up, run rounds and stop when told. */
export function serveWorker(contender: Contender): void {
  const send = (m: FromWorker): void => {
    process.send?.(m);
  };
  let units = 0;
  const handle = async (m: ToWorker): Promise<void> => {
    if (m.type === "warmup") {
      const [ms, warmUnits] = await warmUp(contender, m.minMs, m.maxMs);
      units += warmUnits;
      contender.verify?.(units);
      send({ type: "ready", warmupMs: Math.round(ms) });
    } else if (m.type === "round") {
      // A round during which another process took the core is run again (a shared machine).
      let attempts = 0;
      let sample: Sample;
      do {
        await yieldToLoop(); // let ticks, timers and finalizers run outside the timed loop
        sample = await timedLoop(contender, m.ms);
        units += sample.units;
        attempts++;
      } while (sample.cpuShare < m.minCpuShare && attempts < MAX_ATTEMPTS);
      send({ type: "sample", ...sample, attempts });
    } else {
      contender.verify?.(units);
      send({ type: "finished" });
      process.disconnect?.();
    }
  };
  process.on("message", (m: ToWorker) => {
    handle(m).catch((error: unknown) => {
      send({ type: "error", message: `${contender.name}: ${String(error)}` });
      process.disconnect?.();
    });
  });
  send({ type: "loaded" });
}

function summarize(
  c: Case,
  perRound: readonly (readonly number[])[],
  shares: readonly (readonly number[])[],
  warmups: readonly number[],
  retries: number,
): CaseResult {
  const measurements: Measurement[] = c.contenders.map((contender, i) => {
    const rounds = perRound[i]!;
    const cpuShares = shares[i]!.map((x) => Math.round(x * 1000) / 1000);
    const msgPerSec = median(rounds);
    const spread = (Math.max(...rounds) - Math.min(...rounds)) / msgPerSec;
    const mbPerSec = (msgPerSec * (c.bytesPerUnit / c.messagesPerUnit)) / 1e6;
    return {
      name: contender.name,
      warmupMs: warmups[i] ?? 0,
      mbPerSec,
      msgPerSec,
      roundsMsgPerSec: rounds,
      cpuShares,
      spread,
    };
  });
  const index = new Map(c.contenders.map((k, i) => [k.name, i]));
  const rows = c.compare.map(([subject, baseline]) => {
    const si = index.get(subject);
    const bi = index.get(baseline);
    if (si === undefined || bi === undefined) {
      throw new Error(`case ${c.id}: unknown contender in ${subject} / ${baseline}`);
    }
    // Median of per-round ratios: the two rounds of a pair ran back to back, so a slow phase of
    // the machine cancels out instead of landing on one side.
    const s = perRound[si]!;
    const b = perRound[bi]!;
    const ratio = median(s.map((x, r) => x / b[r]!));
    return { subject, baseline, ratio };
  });
  return {
    id: c.id,
    group: c.group,
    label: c.label,
    notes: c.notes ?? null,
    messagesPerUnit: c.messagesPerUnit,
    bytesPerUnit: c.bytesPerUnit,
    retries,
    measurements,
    rows,
  };
}

// ---- formatting ---------------------------------------------------------------------------------

/** 3 significant digits, thousands grouped: 1234567 → "1.23 M", 8123 → "8.12 k". */
export function formatRate(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (n >= 1e9) return `${(n / 1e9).toPrecision(3)} G`;
  if (n >= 1e6) return `${(n / 1e6).toPrecision(3)} M`;
  if (n >= 1e3) return `${(n / 1e3).toPrecision(3)} k`;
  return n.toPrecision(3);
}

export function formatMb(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (n >= 100) return n.toFixed(0);
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

export const TABLE_HEADER = [
  "case",
  "subject",
  "MB/s",
  "msg/s",
  "baseline",
  "MB/s",
  "msg/s",
  "ratio",
] as const;

/** Table rows (cells) for one case result. */
export function tableRows(result: CaseResult): string[][] {
  const byName = new Map(result.measurements.map((m) => [m.name, m]));
  return result.rows.map((row) => {
    const s = byName.get(row.subject)!;
    const b = byName.get(row.baseline)!;
    return [
      `${result.group}: ${result.label}`,
      row.subject,
      formatMb(s.mbPerSec),
      formatRate(s.msgPerSec),
      row.baseline,
      formatMb(b.mbPerSec),
      formatRate(b.msgPerSec),
      `${row.ratio.toFixed(row.ratio < 0.1 ? 3 : 2)}x`,
    ];
  });
}

const NUMERIC = new Set([2, 3, 5, 6, 7]);

/** Plain-text table with aligned columns (also valid as a Markdown table). */
export function renderTable(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells
      .map((cell, i) =>
        NUMERIC.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0),
      )
      .join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (NUMERIC.has(i) ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}
