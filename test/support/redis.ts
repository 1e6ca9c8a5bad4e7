/**
 * A real `redis-server` for tests: started on a free loopback port with its own temporary
 * directory, no persistence (`--save "" --appendonly no`) unless the caller passes other
 * arguments, and stopped by its PID — never by name, so other Redis servers on the machine
 * (and other test files running in parallel) are left alone.
 *
 * `stop()` then `start()` takes the server down and brings it back, empty, on the same port: what
 * an outage followed by a restart without persistence looks like to the clients.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isRunning, killOnExit, stopChild } from "./processes.js";

export interface RedisServerOptions {
  /** Extra redis-server arguments, appended after the defaults (later ones win). */
  readonly args?: readonly string[];
  /** How long to wait for the server to answer. @default 10_000 */
  readonly readyTimeoutMs?: number;
}

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** `redis://host:port` */
  readonly url: string;
  /** The server's working directory (removed by `close()`). */
  readonly dir: string;
  /** PID of the running server; undefined while stopped. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /**
   * Stop the server (SIGTERM, then SIGKILL after a grace period) and wait until it has exited.
   * Its directory stays (for `start()`); `close()` removes it.
   */
  stop(): Promise<void>;
  /** Kill the server at once (SIGKILL): a crash. */
  kill(): Promise<void>;
  /** Freeze the server (SIGSTOP): connections stay open, nothing is answered — a silent network. */
  pause(): void;
  /** Unfreeze it (SIGCONT). */
  resume(): void;
  /** Start it again on the same port, with an empty data set (unless persistence was enabled). */
  start(): Promise<void>;
  /** Stop, then start. */
  restart(): Promise<void>;
  /** Stop the server and remove its directory. Idempotent. */
  close(): Promise<void>;
}

const HOST = "127.0.0.1";
const PORT_ATTEMPTS = 10;

/**
 * Directories not removed yet: if the test process exits without `close()` (a failed test, or a
 * test that only called `stop()`), they are removed synchronously on exit (and the servers killed:
 * killOnExit).
 */
const dirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** A port that was free a moment ago: bind port 0 on loopback, read it, close. */
export async function freePort(host = HOST): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Ask the server on `port` for its PID (inline `INFO server`): so we know the server answering is
 * the one we started, not another one that owned the port first.
 */
function serverPid(host: string, port: number, timeoutMs = 1000): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    let reply = "";
    const done = (pid: number | undefined): void => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.once("error", () => done(undefined));
    socket.on("connect", () => socket.write("INFO server\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (reply.startsWith("-")) return done(undefined); // e.g. LOADING
      const m = /process_id:(\d+)\r\n/.exec(reply);
      if (m !== null) done(Number(m[1]));
    });
  });
}

function logTail(dir: string): string {
  try {
    const text = readFileSync(join(dir, "redis.log"), "utf8");
    return text.split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

class Server implements RedisServer {
  readonly host = HOST;
  #port = 0;
  #child: ChildProcess | undefined;
  #closed = false;

  constructor(
    readonly dir: string,
    readonly args: readonly string[],
    readonly readyTimeoutMs: number,
  ) {}

  get port(): number {
    return this.#port;
  }
  get url(): string {
    return `redis://${this.host}:${this.#port}`;
  }
  get pid(): number | undefined {
    return this.#child?.pid;
  }
  get running(): boolean {
    const c = this.#child;
    return c !== undefined && isRunning(c);
  }

  /** Start on `port`; false when the server exited before answering (e.g. the port was taken). */
  async #spawn(port: number): Promise<boolean> {
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        this.host,
        "--dir",
        this.dir,
        "--logfile",
        "redis.log",
        "--loglevel",
        "notice",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        ...this.args,
      ],
      { stdio: "ignore" },
    );
    const spawned = await new Promise<boolean>((resolve) => {
      child.once("spawn", () => resolve(true));
      child.once("error", () => resolve(false));
    });
    if (!spawned) throw new Error("cannot run redis-server (apt-get install redis-server)");
    // A server someone forgot to close must not keep the test process alive: the exit hook
    // kills it. (stop() holds the process open with its grace timer while it waits.)
    child.unref();
    killOnExit(child);
    this.#child = child;
    this.#port = port;
    const deadline = Date.now() + this.readyTimeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) return false;
      const pid = await serverPid(this.host, port);
      if (pid !== undefined) {
        if (pid === child.pid) return true;
        await this.kill(); // another server owns the port
        return false;
      }
      await sleep(20);
    }
    await this.kill();
    throw new Error(`redis-server on port ${port} did not answer:\n${logTail(this.dir)}`);
  }

  async startOnFreePort(): Promise<void> {
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      if (await this.#spawn(await freePort(this.host))) return;
    }
    throw new Error(`redis-server could not start:\n${logTail(this.dir)}`);
  }

  async start(): Promise<void> {
    if (this.#closed) throw new Error("this Redis server was closed");
    if (this.running) return;
    // The same port: clients reconnect to it. Retry briefly if it is still held.
    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      if (await this.#spawn(this.#port)) return;
      if (Date.now() >= deadline) {
        throw new Error(`redis-server could not restart on ${this.#port}:\n${logTail(this.dir)}`);
      }
      await sleep(50);
    }
  }

  async #signal(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    if (this.#child !== undefined) await stopChild(this.#child, signal, graceMs);
  }

  stop(): Promise<void> {
    this.resume(); // a stopped process would not handle SIGTERM
    return this.#signal("SIGTERM", 5000);
  }

  pause(): void {
    const pid = this.#child?.pid;
    if (pid !== undefined && this.running) process.kill(pid, "SIGSTOP");
  }

  resume(): void {
    const pid = this.#child?.pid;
    if (pid !== undefined && this.running) process.kill(pid, "SIGCONT");
  }

  kill(): Promise<void> {
    return this.#signal("SIGKILL", 5000);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
    dirs.delete(this.dir);
  }
}

/** Start a redis-server on a free loopback port with a fresh temporary directory. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), "duplex-redis-"));
  dirs.add(dir);
  const server = new Server(dir, options.args ?? [], options.readyTimeoutMs ?? 10_000);
  try {
    await server.startOnFreePort();
  } catch (error) {
    await server.close();
    throw error;
  }
  return server;
}
