/**
 * A real nginx in front of test backends, run from the operators' example config
 * (deploy/nginx/duplex.conf): `renderDuplexConf` puts the test's backends in place of the
 * upstream's `server` lines (keeping their parameters: max_fails, fail_timeout) and a loopback
 * port in place of `listen 80`, and a small main config around it includes the result — so the
 * documented config is the one the tests run.
 *
 * nginx runs in the foreground (`daemon off`) from a fresh directory under os.tmpdir(), with its
 * pid file, temp folders and logs there (errors go to its stderr, kept for diagnostics), on a
 * loopback port (another one when it is taken). It is stopped by PID — its master, then any worker
 * left behind — and never by name, so other nginx processes on the machine are left alone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { stablePort } from "./ports.js";
import { exited, isRunning, killOnExit, signalPid, stopChild, tasksetWorks } from "./processes.js";

/** The operators' example config, checked in. */
export const DUPLEX_CONF = fileURLToPath(
  new URL("../../deploy/nginx/duplex.conf", import.meta.url),
);

const HOST = "127.0.0.1";
const PORT_ATTEMPTS = 8;
const NGINX = "nginx";

export interface Backend {
  readonly host: string;
  readonly port: number;
}

export interface NginxOptions {
  /** Where requests go, round-robin. */
  readonly backends: readonly Backend[];
  /** The config to render. @default deploy/nginx/duplex.conf */
  readonly template?: string;
  /** `worker_connections` (each proxied WebSocket takes two). @default 8192 */
  readonly workerConnections?: number;
  /** Run nginx under `taskset -c CPUS` when taskset exists (benchmarks). */
  readonly cpus?: string;
  /** @default 10_000 */
  readonly readyTimeoutMs?: number;
}

export interface Nginx {
  readonly host: string;
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  readonly dir: string;
  readonly pid: number | undefined;
  /** The rendered duplex.conf nginx runs. */
  readonly conf: string;
  /** What nginx wrote to stderr (its error log), last lines. */
  log(): string;
  /** Stop (SIGTERM, then SIGKILL of the master and its workers), remove the directory. Idempotent. */
  close(): Promise<void>;
}

/**
 * Put `backends` in place of the `server` lines of the template's `upstream` block, and `listen`
 * in place of its `listen` line. Throws when the template no longer has the shape this expects,
 * so a change to the operators' file cannot silently stop being tested.
 */
export function renderDuplexConf(
  template: string,
  backends: readonly Backend[],
  address: string,
): string {
  if (backends.length === 0) throw new Error("renderDuplexConf: no backends");
  const upstream = /^([ \t]*upstream[ \t]+\S+[ \t]*\{[ \t]*\n)([\s\S]*?)^[ \t]*\}/m.exec(template);
  if (upstream === null) throw new Error("renderDuplexConf: no upstream block");
  const body = upstream[2]!;
  const serverLine = /^([ \t]*)server[ \t]+(\S+?)([ \t][^;\n]*)?;[^\n]*\n/gm;
  const servers = [...body.matchAll(serverLine)];
  if (servers.length === 0) throw new Error("renderDuplexConf: the upstream has no server line");
  const params = new Set(servers.map((m) => (m[3] ?? "").trim()));
  if (params.size !== 1) {
    throw new Error("renderDuplexConf: the upstream's server lines have different parameters");
  }
  const indent = servers[0]![1]!;
  const param = [...params][0]!;
  const lines = backends
    .map((b) => `${indent}server ${b.host}:${b.port}${param === "" ? "" : ` ${param}`};\n`)
    .join("");
  // All the backends go where the first server line was; comments stay where they are.
  let first = true;
  const newBody = body.replace(serverLine, () => {
    if (!first) return "";
    first = false;
    return lines;
  });
  const start = upstream.index + upstream[1]!.length;
  const out = template.slice(0, start) + newBody + template.slice(start + body.length);
  const listen = /^([ \t]*)listen[ \t][^;\n]*;/gm;
  const listens = [...out.matchAll(listen)];
  if (listens.length !== 1) {
    throw new Error(`renderDuplexConf: expected one listen line, found ${listens.length}`);
  }
  return out.replace(listen, `$1listen ${address};`);
}

/** The main config around the rendered duplex.conf: limits, temp folders and logs in `dir`. */
function mainConf(dir: string, workerConnections: number): string {
  const tmp = join(dir, "tmp");
  return [
    "worker_processes 1;",
    `worker_rlimit_nofile ${workerConnections * 2 + 64};`,
    `events { worker_connections ${workerConnections}; }`,
    "http {",
    "    access_log off;",
    `    client_body_temp_path ${join(tmp, "body")};`,
    `    proxy_temp_path ${join(tmp, "proxy")};`,
    `    fastcgi_temp_path ${join(tmp, "fastcgi")};`,
    `    uwsgi_temp_path ${join(tmp, "uwsgi")};`,
    `    scgi_temp_path ${join(tmp, "scgi")};`,
    `    include ${join(dir, "duplex.conf")};`,
    "}",
    "",
  ].join("\n");
}

/** Children of `pid` (nginx workers), from /proc. */
function childrenOf(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    return text === "" ? [] : text.split(/\s+/).map(Number);
  } catch {
    return [];
  }
}

/** Signal the master and, first, its workers (a killed master would leave them running). */
function killTree(child: ChildProcess, signal: NodeJS.Signals): void {
  const pid = child.pid;
  if (pid === undefined || !isRunning(child)) return;
  if (signal === "SIGKILL") {
    for (const worker of childrenOf(pid)) signalPid(worker, "SIGKILL");
  }
  signalPid(pid, signal);
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Start nginx in front of `backends` on a free loopback port. */
export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const template = options.template ?? readFileSync(DUPLEX_CONF, "utf8");
  const workerConnections = options.workerConnections ?? 8192;
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const dir = mkdtempSync(join(tmpdir(), "duplex-nginx-"));
  // As root, nginx runs its worker as `nobody`: it must be able to reach the temp folders.
  if (process.getuid?.() === 0) chmodSync(dir, 0o755);
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) {
    mkdirSync(join(dir, "tmp", sub), { recursive: true });
  }
  writeFileSync(join(dir, "nginx.conf"), mainConf(dir, workerConnections));
  const pidFile = join(dir, "nginx.pid");
  const pinned = options.cpus !== undefined && tasksetWorks();

  let stderr = "";
  let child: ChildProcess | undefined;
  let conf = "";
  let port = 0;
  const log = (): string => stderr.split("\n").slice(-30).join("\n");

  const tryPort = async (candidate: number): Promise<"ok" | "taken"> => {
    conf = renderDuplexConf(template, options.backends, `${HOST}:${candidate}`);
    writeFileSync(join(dir, "duplex.conf"), conf);
    rmSync(pidFile, { force: true });
    stderr = "";
    const args = [
      "-p",
      dir,
      "-c",
      join(dir, "nginx.conf"),
      "-e",
      "stderr",
      "-g",
      `daemon off; pid ${pidFile}; error_log stderr notice;`,
    ];
    const proc = pinned
      ? spawn("taskset", ["-c", options.cpus!, NGINX, ...args], {
          stdio: ["ignore", "ignore", "pipe"],
        })
      : spawn(NGINX, args, { stdio: ["ignore", "ignore", "pipe"] });
    const spawned = await new Promise<boolean>((resolve) => {
      proc.once("spawn", () => resolve(true));
      proc.once("error", () => resolve(false));
    });
    if (!spawned) throw new Error("cannot run nginx (apt-get install nginx)");
    // Stopped synchronously, with its workers, if the test process exits without close().
    killOnExit(proc, (c) => killTree(c, "SIGKILL"));
    proc.stderr!.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString("utf8")).slice(-20_000);
    });
    child = proc;
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (!isRunning(proc)) return /Address already in use/.test(stderr) ? "taken" : "ok";
      // The pid file is written once the listening sockets are bound.
      let written = "";
      try {
        written = readFileSync(pidFile, "utf8").trim();
      } catch {
        // not yet
      }
      if (written === String(proc.pid) && (await canConnect(HOST, candidate))) {
        port = candidate;
        return "ok";
      }
      if (/still could not bind|Address already in use/.test(stderr)) {
        killTree(proc, "SIGKILL");
        await exited(proc);
        return "taken";
      }
      await sleep(20);
    }
    killTree(proc, "SIGKILL");
    await exited(proc);
    throw new Error(`nginx did not start within ${readyTimeoutMs} ms:\n${log()}`);
  };

  try {
    for (let attempt = 0; ; attempt++) {
      const outcome = await tryPort(await stablePort(HOST));
      if (outcome === "ok") break;
      if (attempt + 1 >= PORT_ATTEMPTS) throw new Error(`nginx found no free port:\n${log()}`);
    }
    if (child === undefined || !isRunning(child)) {
      throw new Error(`nginx exited at start:\n${log()}`);
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const master = child!;
  let closing: Promise<void> | undefined;
  return {
    host: HOST,
    port,
    url: `http://${HOST}:${port}`,
    dir,
    get pid() {
      return isRunning(master) ? master.pid : undefined;
    },
    conf,
    log,
    close() {
      closing ??= (async () => {
        // SIGTERM: a fast shutdown, the master stops its workers.
        await stopChild(master, "SIGTERM", 5000, killTree);
        rmSync(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
