/**
 * The servers `duplex bench` starts for itself, and the CPU layout.
 *
 * Each server is a child process of plain `node` (with the tsx loader when this CLI runs from
 * its TypeScript source): `duplex echo --port 0` through this CLI's own main module, and the
 * small broadcast server of ./broadcast-server.ts. They run detached (their own process group,
 * so a terminal's Ctrl-C reaches only the bench, which then stops them in order) and are stopped
 * by PID: SIGTERM, then SIGKILL after a grace period.
 *
 * Pinning, when `taskset` exists and this process may use two CPUs or more: the servers run
 * under `taskset -c A` (the first allowed CPU) and this process — the load generator — is
 * pinned to the second one (B) for the duration of the run, all its threads included
 * (`taskset -a -p`), then given its original affinity back. The server and the load generator
 * then never compete for a core.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CliError } from "../command.js";

const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 3_000;

/** This module's extension tells whether the CLI runs from its .ts source or from dist/. */
const FROM_SOURCE = import.meta.url.endsWith(".ts");
const EXT = FROM_SOURCE ? ".ts" : ".js";

/** The `duplex` entry point next to this command (src/cli/main.ts or dist/cli/main.js). */
export const MAIN_MODULE = fileURLToPath(new URL(`../main${EXT}`, import.meta.url));
export const BROADCAST_MODULE = fileURLToPath(new URL(`./broadcast-server${EXT}`, import.meta.url));

/** The node flags a child needs to run the module: the TypeScript loader from source. */
function loaderArgs(): string[] {
  if (!FROM_SOURCE) return [];
  try {
    return ["--import", import.meta.resolve("tsx")];
  } catch {
    // The process runs .ts, so some loader is active: pass on this process's own flags.
    return process.execArgv.filter((a) => !a.startsWith("--test"));
  }
}

/** "0-2,5" → [0, 1, 2, 5]. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m === null) continue;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (let cpu = from; cpu <= to; cpu++) out.push(cpu);
  }
  return out;
}

export interface Pinning {
  /** CPU of the servers. */
  readonly server: number;
  /** CPU of this process (the load generator). */
  readonly load: number;
  /** Give this process its original affinity back. */
  restore(): void;
}

/**
 * Pin this process to the second allowed CPU and return the layout, or null (no taskset, fewer
 * than two CPUs allowed, or taskset refused): then nothing was changed.
 */
export function pinLoadGenerator(): Pinning | null {
  const pid = String(process.pid);
  const query = spawnSync("taskset", ["-pc", pid], { encoding: "utf8", timeout: 5_000 });
  if (query.error !== undefined || query.status !== 0) return null;
  const list = /list:\s*(\S+)/.exec(query.stdout)?.[1];
  if (list === undefined) return null;
  const cpus = parseCpuList(list);
  const [server, load] = cpus;
  if (server === undefined || load === undefined) return null;
  const pin = spawnSync("taskset", ["-a", "-pc", String(load), pid], { timeout: 5_000 });
  if (pin.error !== undefined || pin.status !== 0) return null;
  let restored = false;
  return {
    server,
    load,
    restore() {
      if (restored) return;
      restored = true;
      spawnSync("taskset", ["-a", "-pc", list, pid], { timeout: 5_000 });
    },
  };
}

/** Resolves with the promise's outcome, or "late" after ms (the timer is cleared either way). */
async function within(promise: Promise<void>, ms: number): Promise<"done" | "late"> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), ms);
  });
  try {
    return await Promise.race([promise.then(() => "done" as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** User + system CPU seconds of a process, from /proc/<pid>/stat (Linux); null elsewhere. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm) ": state is the first; utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / 100 : null; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

export interface ChildServer {
  readonly kind: "echo" | "broadcast";
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Start a built-in server; resolves once it printed its URL. */
export function startServer(
  kind: "echo" | "broadcast",
  cpu: number | null,
  signal: AbortSignal,
): Promise<ChildServer> {
  const script =
    kind === "echo"
      ? [MAIN_MODULE, "echo", "--port", "0", "--host", "127.0.0.1"]
      : [BROADCAST_MODULE, "--port", "0"];
  const nodeArgs = [...loaderArgs(), ...script];
  const [command, args] =
    cpu === null
      ? [process.execPath, nodeArgs]
      : ["taskset", ["-c", String(cpu), process.execPath, ...nodeArgs]];
  const child: ChildProcess = spawn(command, args, {
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  // If this process ends without stopping it (an uncaught error), do not leave it behind.
  const onExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", onExit);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    process.off("exit", onExit);
    child.stdin?.end();
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    if ((await within(exited, STOP_GRACE_MS)) === "late") {
      child.kill("SIGKILL");
      await within(exited, STOP_GRACE_MS);
    }
  };
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    let settled = false;
    const fail = (message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      void stop().then(() => reject(new CliError(message)));
    };
    const onAbort = (): void => fail(`interrupted while starting the ${kind} server`);
    const timer = setTimeout(
      () => fail(`the built-in ${kind} server did not start within ${START_TIMEOUT_MS / 1000} s`),
      START_TIMEOUT_MS,
    );
    signal.addEventListener("abort", onAbort, { once: true });
    child.stderr?.on("data", (d: Buffer) => {
      if (err.length < 4096) err += d.toString();
    });
    child.stdout?.on("data", (d: Buffer) => {
      if (out.length > 4096) return;
      out += d.toString();
      const m = /listening on (ws:\/\/\S+)/.exec(out);
      if (m?.[1] === undefined || child.pid === undefined || settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      out = "x".repeat(4097); // stop parsing, keep draining
      resolve({ kind, url: m[1], pid: child.pid, stop });
    });
    child.once("error", (e) => fail(`cannot start the built-in ${kind} server: ${e.message}`));
    child.once("exit", (code, sig) => {
      const why = err.trim().split("\n")[0] ?? "";
      fail(
        `the built-in ${kind} server exited (${sig ?? `code ${code}`})${why === "" ? "" : `: ${why}`}`,
      );
    });
  });
}
