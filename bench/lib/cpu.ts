/**
 * CPU pinning and CPU-time sampling for the benchmarks that run a server and a load generator
 * side by side (bench:load, bench:realtime, bench:cluster): the server side on core 0, the load
 * generator on core 1 (`taskset`), CPU time read from /proc.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import { sleep } from "./time.js";

/** The core of the server(s) under test. */
export const SERVER_CPU = "0";
/** The core of the load generator. */
export const LOADGEN_CPU = "1";
/** Busy share above which a core does not count as quiet (waitQuiet). */
const QUIET = 0.15;

/** Whether `taskset -c <cpus>` works here. */
export function tasksetWorks(cpus: string): boolean {
  const probe = spawnSync("taskset", ["-c", cpus, "true"], { stdio: "ignore" });
  return probe.error === undefined && probe.status === 0;
}

/** Whether the server and the load generator can each get a core of their own. */
export function canPin(): boolean {
  if (os.cpus().length < 2) return false;
  return tasksetWorks(LOADGEN_CPU);
}

/** Pin every thread of `pid` to `cpus` (threads started later inherit it). */
export function pinProcess(pid: number, cpus: string): boolean {
  const r = spawnSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
  return r.error === undefined && r.status === 0;
}

/** Clock ticks per second of /proc's CPU times. */
export const CLK_TCK = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** utime and stime of a process, in clock ticks (null when it is gone or not Linux). */
export function processTicks(pid: number): { user: number; system: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After "pid (comm) ": state is field 3, utime 14, stime 15 (1-based) → indexes 11, 12.
    return { user: Number(fields[11]), system: Number(fields[12]) };
  } catch {
    return null;
  }
}

export interface CoreTime {
  readonly busy: number;
  readonly total: number;
}

/** Busy and total jiffies of every core, from /proc/stat (empty where there is none). */
export function coreTimes(): CoreTime[] {
  try {
    const out: CoreTime[] = [];
    for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (m === null) continue;
      const v = m[2]!.trim().split(/\s+/).map(Number);
      // user nice system idle iowait irq softirq steal guest guest_nice (guest is in user)
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
      const idle = (v[3] ?? 0) + (v[4] ?? 0);
      out[Number(m[1])] = { busy: total - idle, total };
    }
    return out;
  } catch {
    return [];
  }
}

/** Busy share of a core between two samples (null when either is missing or no time passed). */
export function busyShare(a: CoreTime | undefined, b: CoreTime | undefined): number | null {
  if (a === undefined || b === undefined || b.total === a.total) return null;
  return (b.busy - a.busy) / (b.total - a.total);
}

/** Per-core busy share over `ms` milliseconds. */
export async function busyShares(ms: number): Promise<number[]> {
  const a = coreTimes();
  await sleep(ms);
  const b = coreTimes();
  return b.map((y, i) => busyShare(a[i], y) ?? 0);
}

/**
 * Wait (up to `maxMs`) until the server's and the load generator's cores are nearly idle: other
 * processes skew the results. Checks every `stepMs`, calling `onBusy` before each wait; returns
 * every core's last busy share (2 decimals).
 */
export async function waitQuiet(
  maxMs: number,
  stepMs: number,
  onBusy?: () => void,
): Promise<number[]> {
  const deadline = Date.now() + maxMs;
  const cores = [Number(SERVER_CPU), Number(LOADGEN_CPU)];
  let shares = await busyShares(300);
  while (cores.some((c) => (shares[c] ?? 0) > QUIET) && Date.now() < deadline) {
    onBusy?.();
    shares = await busyShares(stepMs);
  }
  return shares.map((x) => Math.round(x * 100) / 100);
}
