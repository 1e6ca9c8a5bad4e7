/**
 * Child processes of the test support servers (redis-server, nginx, `duplex serve`): whether one
 * is running, waiting for its exit, stopping it by PID with a grace period, and a synchronous
 * SIGKILL of those still running should the test process exit without stopping them. Nothing is
 * ever killed by name.
 */
import { type ChildProcess, spawnSync } from "node:child_process";

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Resolves once `child` has exited (at once if it has). */
export function exited(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Send `signal` to `pid`; a process already gone is no error. */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Send `signal` to `child` if it is still running. */
export function signalChild(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid !== undefined && isRunning(child)) signalPid(child.pid, signal);
}

/**
 * Send `signal` with `kill` (by default to the child itself) and wait until the child has exited;
 * SIGKILL with `kill` if it is still running after `graceMs`.
 */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals,
  graceMs: number,
  kill: (child: ChildProcess, signal: NodeJS.Signals) => void = signalChild,
): Promise<void> {
  if (!isRunning(child)) return;
  kill(child, signal);
  const timer = setTimeout(() => {
    if (isRunning(child)) kill(child, "SIGKILL");
  }, graceMs);
  await exited(child);
  clearTimeout(timer);
}

/** Running children and how to kill each one synchronously. */
const live = new Map<ChildProcess, (child: ChildProcess) => void>();
let exitHookInstalled = false;

/**
 * Kill `child` (SIGKILL, or with `kill`) when the test process exits while it still runs — after
 * a failed test, or a test that never stopped it.
 */
export function killOnExit(
  child: ChildProcess,
  kill: (child: ChildProcess) => void = (c) => signalChild(c, "SIGKILL"),
): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // First among the exit hooks: those that remove the servers' directories find them stopped.
    process.prependListener("exit", () => {
      for (const [c, killIt] of live) if (isRunning(c)) killIt(c);
    });
  }
  live.set(child, kill);
  child.once("exit", () => live.delete(child));
}

let tasksetChecked: boolean | undefined;

/** Whether `taskset -c` works here (to pin a process to CPUs). */
export function tasksetWorks(): boolean {
  tasksetChecked ??= spawnSync("taskset", ["-c", "0", "true"], { stdio: "ignore" }).status === 0;
  return tasksetChecked;
}
