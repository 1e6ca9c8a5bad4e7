/**
 * What the load-test servers (and bench/realtime's) share: argv parsing, the `READY <port>` line,
 * heap-space sizes for `MEM`, and a tiny control channel on stdin so the runner can sample memory
 * at chosen moments:
 *
 *   mem\n   force a full GC (the server runs with --expose-gc), then print `MEM {json}` with
 *           process.memoryUsage() and VmRSS/VmHWM from /proc/self/status (bytes)
 *   heap <path>\n  write a V8 heap snapshot to <path> (after a full GC), then print `HEAP <path>`
 *   prof-start\n         start the V8 CPU profiler (inspector session in this process)
 *   prof-stop <path>\n   stop it, write the .cpuprofile to <path>, then print `PROF <path>`
 *   exit\n  exit normally (lets --cpu-prof write its profile)
 *
 * SIGTERM and SIGINT exit normally too, for the same reason.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8";

/** Profiler sampling interval (node --cpu-prof uses 1000 µs). */
const PROFILE_INTERVAL_US = 250;

export interface ServerArgs {
  readonly mode: string;
  readonly port: number;
}

export function parseServerArgs(modes: readonly string[]): ServerArgs {
  const [mode = "", portText = "0"] = process.argv.slice(2);
  const port = Number(portText);
  if (!modes.includes(mode) || !Number.isInteger(port) || port < 0) {
    console.error(`usage: <server> ${modes.join("|")} <port>`);
    process.exit(2);
  }
  return { mode, port };
}

function procStatusBytes(field: string): number | null {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const m = new RegExp(`^${field}:\\s*(\\d+) kB`, "m").exec(status);
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

async function fullGc(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return;
  // Two rounds with a turn of the event loop between them: weak callbacks and finalizers
  // (ArrayBuffer backing stores) run after the first.
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
}

export function memorySnapshot(): Record<string, number | null> {
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    vmRss: procStatusBytes("VmRSS"),
    vmHwm: procStatusBytes("VmHWM"),
  };
}

/** Size of the V8 heap spaces that matter here (reserved, not used): where heapTotal went. */
export function heapSpaces(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const space of getHeapSpaceStatistics()) {
    if (["new_space", "old_space", "large_object_space"].includes(space.space_name)) {
      out[`${space.space_name}Size`] = space.space_size;
    }
  }
  return out;
}

/** The port a server listens on, from its address() (`fallback` for a pipe or none). */
export function listeningPort(address: AddressInfo | string | null, fallback: number): number {
  return typeof address === "object" && address !== null ? address.port : fallback;
}

let session: Session | null = null;

/** Sample the CPU from now on (the runner sends this at the loadgen's MEASURE_START). */
function startProfile(): void {
  const s = new Session();
  session = s;
  s.connect();
  s.post("Profiler.enable", () => {
    s.post("Profiler.setSamplingInterval", { interval: PROFILE_INTERVAL_US }, () => {
      s.post("Profiler.start", () => process.stdout.write("PROF_STARTED\n"));
    });
  });
}

/** Stop sampling and write the .cpuprofile (the same format as node --cpu-prof). */
function stopProfile(path: string): void {
  const s = session;
  if (s === null) return;
  session = null;
  s.post("Profiler.stop", (error, result) => {
    if (error === null) writeFileSync(path, JSON.stringify(result.profile));
    s.disconnect();
    process.stdout.write(`PROF ${error === null ? path : `error ${error.message}`}\n`);
  });
}

/** Print READY, then serve control commands on stdin. */
export function ready(port: number, extra?: () => Record<string, number>): void {
  process.stdout.write(`READY ${port}\n`);
  const quit = (): void => process.exit(0);
  process.on("SIGTERM", quit);
  process.on("SIGINT", quit);
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    const command = line.trim();
    if (command === "mem") {
      void fullGc().then(() => {
        process.stdout.write(`MEM ${JSON.stringify({ ...memorySnapshot(), ...extra?.() })}\n`);
      });
    } else if (command.startsWith("heap ")) {
      // Diagnostics: `heap <path>` writes a heap snapshot (after a full GC).
      const path = command.slice(5).trim();
      void fullGc().then(() => {
        process.stdout.write(`HEAP ${writeHeapSnapshot(path)}\n`);
      });
    } else if (command === "prof-start") {
      startProfile();
    } else if (command.startsWith("prof-stop ")) {
      stopProfile(command.slice(10).trim());
    } else if (command === "exit") {
      quit();
    }
  });
  // The runner going away closes stdin: do not linger.
  lines.on("close", quit);
}
