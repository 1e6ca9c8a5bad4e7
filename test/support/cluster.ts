/**
 * A Duplex cluster for tests and benchmarks: a real redis-server, N `duplex serve` processes
 * (`node --import tsx src/cli/main.ts serve --broker <redis> --node nN --origins '*'`) and a real
 * nginx in front of them, round-robin, from the operators' config (test/support/nginx.ts).
 *
 * Nodes listen on loopback ports chosen below the ephemeral range (support/ports.ts) so that a
 * node restarted after a crash gets its port back and nginx, whose upstream lists the ports, finds
 * it again. A node is ready when it prints "Duplex is running on http://…".
 *
 * Everything is stopped by PID: `close()` (call it from an `after` hook), and, should the test
 * process exit without it, a synchronous SIGKILL of every node still running (support/processes.ts,
 * as for redis-server and nginx). Nothing is ever killed by name.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type Nginx, startNginx } from "./nginx.js";
import { stablePort } from "./ports.js";
import { isRunning, killOnExit, stopChild, tasksetWorks } from "./processes.js";
import { type RedisServer, startRedis } from "./redis.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const HOST = "127.0.0.1";
const PORT_ATTEMPTS = 8;

export interface ClusterOptions {
  /** Number of `duplex serve` processes. */
  readonly nodes: number;
  /** More `duplex serve` arguments, for every node. */
  readonly serveArgs?: readonly string[];
  /** More environment variables for the nodes. */
  readonly env?: Readonly<Record<string, string>>;
  /** Put nginx in front. @default true */
  readonly nginx?: boolean;
  /** `taskset -c` CPU lists (when taskset works): for the nodes, and for nginx. */
  readonly cpus?: { readonly nodes?: string; readonly nginx?: string };
  /** How long a node may take to print its address. @default 30_000 */
  readonly readyTimeoutMs?: number;
}

export interface NodeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One `duplex serve` process (a restarted node is a new ClusterNode on the same port). */
export interface ClusterNode {
  readonly index: number;
  /** Its --node name: n1, n2, … */
  readonly name: string;
  readonly port: number;
  /** http://127.0.0.1:port */
  readonly url: string;
  /** ws://127.0.0.1:port/realtime — straight to this node, not through nginx. */
  readonly realtimeUrl: string;
  readonly pid: number;
  readonly running: boolean;
  /** Resolves when the process has exited. */
  readonly exited: Promise<NodeExit>;
  /** The last lines it printed (stdout and stderr). */
  output(): string;
}

export interface Cluster {
  readonly redis: RedisServer;
  /** undefined when started with `nginx: false`. */
  readonly nginx: Nginx | undefined;
  /** The current process of each node. */
  readonly nodes: readonly ClusterNode[];
  /** http://nginx (or the first node without nginx) */
  readonly url: string;
  /** ws://nginx/realtime (or the first node's without nginx) */
  readonly realtimeUrl: string;
  /** Send `signal` to node i and wait until it has exited (SIGTERM: a drain; SIGKILL: a crash). */
  kill(i: number, signal?: NodeJS.Signals): Promise<NodeExit>;
  /** Start node i again, same name and port (after kill). */
  restart(i: number): Promise<ClusterNode>;
  /** Stop redis-server (SIGTERM); nodes keep running and reconnect by themselves later. */
  stopRedis(): Promise<void>;
  /** Start it again on the same port — empty: the tests' Redis keeps no data on disk. */
  startRedis(): Promise<void>;
  /** The nodes' output, for a failure message. */
  logs(): string;
  /** Stop everything (nodes, nginx, Redis). Idempotent. */
  close(): Promise<void>;
}

class NodeProcess implements ClusterNode {
  readonly url: string;
  readonly realtimeUrl: string;
  readonly exited: Promise<NodeExit>;
  #lines: string[] = [];

  constructor(
    readonly index: number,
    readonly name: string,
    readonly port: number,
    readonly child: ChildProcess,
  ) {
    this.url = `http://${HOST}:${port}`;
    this.realtimeUrl = `ws://${HOST}:${port}/realtime`;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
    });
    const keep = (d: Buffer): void => {
      this.#lines.push(
        ...d
          .toString("utf8")
          .split("\n")
          .filter((l) => l !== ""),
      );
      if (this.#lines.length > 200) this.#lines = this.#lines.slice(-100);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return isRunning(this.child);
  }

  output(): string {
    return this.#lines.slice(-40).join("\n");
  }
}

/** Start `duplex serve` on `port`; "taken" when the port was in use. */
async function spawnNode(
  index: number,
  port: number,
  redisUrl: string,
  options: ClusterOptions,
): Promise<NodeProcess | "taken"> {
  const name = `n${index + 1}`;
  const args = [
    "--import",
    "tsx",
    MAIN,
    "serve",
    "--host",
    HOST,
    "--port",
    String(port),
    "--broker",
    redisUrl,
    "--node",
    name,
    "--origins",
    "*",
    ...(options.serveArgs ?? []),
  ];
  const cpus = options.cpus?.nodes;
  const [command, argv] =
    cpus !== undefined && tasksetWorks()
      ? ["taskset", ["-c", cpus, process.execPath, ...args]]
      : [process.execPath, args];
  const child = spawn(command, argv, {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Killed synchronously if the test process exits without close().
  killOnExit(child);
  const node = new NodeProcess(index, name, port, child);
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  const ready = await new Promise<"ready" | "exited" | "timeout">((resolve) => {
    let out = "";
    const timer = setTimeout(() => resolve("timeout"), timeoutMs);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString("utf8");
      if (/Duplex is running on http:\/\/\S+/.test(out)) {
        clearTimeout(timer);
        resolve("ready");
      }
    });
    child.once("exit", () => {
      clearTimeout(timer);
      resolve("exited");
    });
  });
  if (ready === "ready") return node;
  if (ready === "timeout") {
    child.kill("SIGKILL");
    await node.exited;
    throw new Error(`node ${name} did not start within ${timeoutMs} ms:\n${node.output()}`);
  }
  await node.exited;
  if (/EADDRINUSE/.test(node.output())) return "taken";
  throw new Error(`node ${name} exited at start:\n${node.output()}`);
}

/** Start node `index` on a free port (new), or on `port` (a restart; retried while it is held). */
async function startNode(
  index: number,
  redisUrl: string,
  options: ClusterOptions,
  port?: number,
): Promise<NodeProcess> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const node = await spawnNode(index, port ?? (await stablePort(HOST)), redisUrl, options);
    if (node !== "taken") return node;
    if (port !== undefined) await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`node n${index + 1}: no free port${port === undefined ? "" : ` (${port})`}`);
}

async function stopNode(node: NodeProcess, signal: NodeJS.Signals): Promise<NodeExit> {
  // A drain takes a few seconds; anything much longer is a hang.
  await stopChild(node.child, signal, 15_000);
  return node.exited;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  if (!(options.nodes >= 1)) throw new RangeError("startCluster: at least one node");
  const redis = await startRedis();
  const nodes: NodeProcess[] = [];
  let nginx: Nginx | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await Promise.all(nodes.map((n) => stopNode(n, "SIGKILL")));
      await nginx?.close();
      await redis.close();
    })();
    return closing;
  };
  try {
    const started = await Promise.allSettled(
      Array.from({ length: options.nodes }, (_, i) => startNode(i, redis.url, options)),
    );
    for (const s of started) if (s.status === "fulfilled") nodes[s.value.index] = s.value;
    const failed = started.find((s) => s.status === "rejected");
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    if (options.nginx !== false) {
      nginx = await startNginx({
        backends: nodes.map((n) => ({ host: HOST, port: n.port })),
        ...(options.cpus?.nginx === undefined ? {} : { cpus: options.cpus.nginx }),
      });
    }
  } catch (error) {
    await close();
    throw error;
  }
  const front = nginx?.url ?? nodes[0]!.url;
  return {
    redis,
    nginx,
    nodes,
    url: front,
    realtimeUrl: `${front.replace(/^http/, "ws")}/realtime`,
    kill(i, signal = "SIGKILL") {
      const node = nodes[i];
      if (node === undefined) throw new RangeError(`no node ${i}`);
      return stopNode(node, signal);
    },
    async restart(i) {
      const old = nodes[i];
      if (old === undefined) throw new RangeError(`no node ${i}`);
      if (old.running) throw new Error(`node ${old.name} is running`);
      const node = await startNode(i, redis.url, options, old.port);
      nodes[i] = node;
      return node;
    },
    stopRedis: () => redis.stop(),
    startRedis: () => redis.start(),
    logs: () => nodes.map((n) => `--- ${n.name} (pid ${n.pid}) ---\n${n.output()}`).join("\n"),
    close,
  };
}
