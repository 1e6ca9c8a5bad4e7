/**
 * Child processes of the benchmark runners: a server under test (started through bash for a
 * raised fd limit, optionally pinned with taskset), lines of a child's stdout, and stopping a
 * child we started — always by its PID.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { SERVER_CPU } from "./cpu.js";
import { ROOT } from "./paths.js";

/** The fd limit the servers run with (10,000 connections and more). */
const NOFILE = 65536;

/** A server's `MEM {json}` reply (bench/load/server-common.ts): bytes and counters. */
export type Mem = Record<string, number | null>;

/** Lines of a child's stdout, delivered to listeners; `next(prefix)` waits for one. */
export class LineReader {
  private readonly waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  private readonly listeners: ((line: string) => void)[] = [];
  readonly lines: string[] = [];
  closed = false;

  constructor(child: ChildProcess) {
    if (child.stdout === null) throw new Error("child without stdout");
    const rl = createInterface({ input: child.stdout });
    rl.on("line", (line) => {
      this.lines.push(line);
      for (const l of this.listeners) l(line);
      const i = this.waiters.findIndex((w) => line.startsWith(w.prefix));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(line);
    });
    rl.on("close", () => {
      this.closed = true;
    });
  }

  onLine(listener: (line: string) => void): void {
    this.listeners.push(listener);
  }

  next(prefix: string, timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.findIndex((w) => w.resolve === done);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      timer.unref();
      const done = (line: string): void => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiters.push({ prefix, resolve: done });
    });
  }
}

/** Whether `child` exits within `timeoutMs` (true at once when it already has). */
export function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function signal(child: ChildProcess, name: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, name);
  } catch {
    // Gone meanwhile (ESRCH).
  }
}

/**
 * Stop a child we started: ask politely (and wait up to `politeMs`), then SIGTERM, then SIGKILL —
 * by its PID only.
 */
export async function stop(
  child: ChildProcess,
  polite?: () => void,
  politeMs = 10_000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  polite?.();
  if (polite !== undefined && (await exited(child, politeMs))) return;
  signal(child, "SIGTERM");
  if (await exited(child, 3_000)) return;
  signal(child, "SIGKILL");
  await exited(child, 3_000);
}

/**
 * A bundled server under test (bench/load/server-*.ts, bench/realtime/server-*.ts):
 * `node --expose-gc <script> <mode> 0`, pinned to SERVER_CPU when `pinned`. It prints
 * `READY <port>` and answers the control commands of bench/load/server-common.ts on stdin.
 */
export class ServerProcess {
  readonly child: ChildProcess;
  /** The command line, for the report. */
  readonly command: string;
  readonly out: LineReader;

  constructor(script: string, mode: string, pinned: boolean) {
    const argv = [
      ...(pinned ? ["taskset", "-c", SERVER_CPU] : []),
      process.execPath,
      "--expose-gc",
      script,
      mode,
      "0",
    ];
    // Raise the fd limit, then exec: the PID we hold is node's own.
    const shell = `ulimit -n ${NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
    this.child = spawn("bash", ["-c", shell, "bash", ...argv], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.command = argv.join(" ");
    this.out = new LineReader(this.child);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Waits for the READY line; returns the port. */
  async ready(): Promise<number> {
    const line = await this.out.next("READY ", 30_000, "the server's READY line");
    return Number(line.split(" ")[1]);
  }

  /** Full GC in the server, then its memory and counters. */
  async mem(): Promise<Mem> {
    const reply = this.out.next("MEM ", 30_000, "the server's MEM line");
    this.child.stdin?.write("mem\n");
    return JSON.parse((await reply).slice(4)) as Mem;
  }

  /** Ask it to exit (waiting up to `politeMs`), then SIGTERM, then SIGKILL. */
  stop(politeMs?: number): Promise<void> {
    return stop(this.child, () => this.child.stdin?.write("exit\n"), politeMs);
  }
}
