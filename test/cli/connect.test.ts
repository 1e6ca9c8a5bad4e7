/**
 * `duplex connect <url>`: piped stdin is sent line by line and replies are printed, binary as hex,
 * JSON pretty-printed; subprotocols, headers and Origin reach the server; /close, --wait, signals;
 * the exit codes (0 normal, 1 cannot connect, 2 usage, 3 abnormal close); and the real process
 * end to end.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { IncomingMessage } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from "node:net";
import { resolve } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { main } from "../../src/cli/cli.js";
import { startEcho } from "../../src/cli/echo.js";
import { type WebSocketConnection, WebSocketServer } from "../../src/server/index.js";
import { makeCertificate } from "../support/tls.js";
import { type CliRun, runCli } from "./helpers.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");
const TIME = String.raw`\d\d:\d\d:\d\d\.\d\d\d`;

function urlOf(server: WebSocketServer | TcpServer, scheme = "ws"): string {
  const address = server.address();
  assert.ok(typeof address === "object" && address !== null);
  return `${scheme}://127.0.0.1:${address.port}/`;
}

/** A WebSocketServer on an ephemeral port, with its connections handed to `onConnection`. */
function startServer(
  onConnection: (conn: WebSocketConnection, req: IncomingMessage) => void,
  options: Omit<ConstructorParameters<typeof WebSocketServer>[0], "port"> = {},
): Promise<WebSocketServer> {
  return new Promise((done) => {
    const server: WebSocketServer = new WebSocketServer({ port: 0, ...options }, () =>
      done(server),
    );
    server.on("connection", onConnection);
  });
}

/** The close code and reason the server saw on its next connection. */
function closeSeen(server: WebSocketServer): Promise<[number, string]> {
  return new Promise((done) =>
    server.once("connection", (conn: WebSocketConnection) =>
      conn.on("close", (code: number, reason: string) => done([code, reason])),
    ),
  );
}

/** Like runCli, with a stdin stream that stays open and terminal flags on stdout/stderr. */
async function runLive(
  argv: readonly string[],
  options: { stdin?: Readable; tty?: boolean; signal?: AbortSignal } = {},
): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const tty = options.tty === true;
  const code = await main(["connect", ...argv], {
    stdin: options.stdin ?? Readable.from([]),
    stdout: { write: (t: string) => (stdout += t), isTTY: tty },
    stderr: { write: (t: string) => (stderr += t), isTTY: tty },
    env: {},
    signal: options.signal ?? new AbortController().signal,
  });
  return { code, stdout: stdout.replace(/\n$/, ""), stderr: stderr.replace(/\n$/, "") };
}

/** The `duplex echo` server on an ephemeral loopback port. */
function echoServer(deflate: boolean): Promise<WebSocketServer> {
  return startEcho({
    port: 0,
    host: "127.0.0.1",
    deflate,
    subprotocols: [],
    maxMessageBytes: 1 << 20,
  });
}

function assertOneLine(r: CliRun, pattern: RegExp): void {
  assert.equal(r.stderr.split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /^duplex connect: /);
  assert.match(r.stderr, pattern);
}

describe("duplex connect against an echo server", () => {
  let echo: WebSocketServer;
  let url: string;
  before(async () => {
    echo = await echoServer(false);
    url = urlOf(echo);
  });
  after(() => echo.close(1_000));

  it("sends piped lines in order and prints each echo, payload only when stdout is no terminal", async () => {
    const lines = Array.from({ length: 50 }, (_, i) => `line ${i} ✓`);
    const r = await runCli(["connect", url], { stdin: `${lines.join("\n")}\r\n\n` });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, lines.join("\n"), "CRLF stripped, empty lines skipped");
    assert.equal(r.stderr, "", "nothing on a non-terminal stderr");
  });

  it("--binary sends bytes and received binary is printed as hex", async () => {
    const r = await runCli(["connect", url, "--binary"], { stdin: "hello\n" });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "[binary 5 B] 68 65 6c 6c 6f");
  });

  it("--json pretty-prints received JSON and refuses to send lines that are not JSON", async () => {
    const r = await runCli(["connect", url, "--json"], { stdin: '{"a":1,"b":[true]}\nnope\n42\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '{\n  "a": 1,\n  "b": [\n    true\n  ]\n}\n42');
    assertOneLine(r, /not sent, not JSON .*: nope$/);
  });

  it("--transcript prints direction and time and aligns continuation lines", async () => {
    const r = await runCli(["connect", url, "--transcript", "--json"], { stdin: '{"a":1}\n' });
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.split("\n");
    assert.match(out[0] ?? "", new RegExp(`^> ${TIME} \\{"a":1\\}$`));
    const at = out.findIndex((l) => l.startsWith("< "));
    assert.match(out[at] ?? "", new RegExp(`^< ${TIME} \\{$`));
    assert.equal(out[at + 1], `${" ".repeat(15)}  "a": 1`);
    assert.equal(out[at + 2], `${" ".repeat(15)}}`);
    assert.equal(out.length, at + 3);
  });

  it("the transcript shows control characters from the peer as \\xNN (no terminal escapes)", async () => {
    const r = await runCli(["connect", url, "-t"], { stdin: "\u001b[31mred\tok\u0007\n" });
    assert.equal(r.code, 0, r.stderr);
    const received = r.stdout.split("\n").find((l) => l.startsWith("< ")) ?? "";
    assert.equal(received.slice(15), "\\x1b[31mred\tok\\x07");
    const raw = await runCli(["connect", url], { stdin: "\u001b[31mred\n" });
    assert.equal(raw.stdout, "\u001b[31mred", "payload-only output is left untouched");
  });

  it("on a terminal: transcript with sent lines, connected/disconnected notices on stderr", async () => {
    const r = await runLive([url, "--binary"], { tty: true, stdin: Readable.from(["hi\n"]) });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`^> ${TIME} \\[binary 2 B\\] 68 69\\n< ${TIME} \\[binary 2 B\\] 68 69$`),
    );
    assert.match(r.stderr, /^connected to ws:\/\/127\.0\.0\.1:\d+\/\n/);
    assert.match(r.stderr, /\ndisconnected \(code 1000\)$/);
  });

  it("--quiet prints payloads only, even on a terminal", async () => {
    const r = await runLive([url, "-q"], { tty: true, stdin: Readable.from(["hi\n"]) });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hi");
  });

  it("/ping hello prints the pong with the round-trip time on stderr; // sends a /line", async () => {
    const r = await runCli(["connect", url], {
      stdin: "/ping hello\n//etc/passwd\n/nope\nafter\n",
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "/etc/passwd\nafter", "stdout keeps the payloads only");
    const lines = r.stderr.split("\n").sort();
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0] ?? "", /^\[pong\] hello \(round trip \d+(\.\d)? ms\)$/);
    assert.match(lines[1] ?? "", /^duplex connect: unknown command '\/nope'/);
  });

  it("/ping in the transcript: the ping sent and the pong received, with direction and time", async () => {
    const r = await runCli(["connect", url, "-t"], { stdin: "/ping hello ✓\n/ping\n" });
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.split("\n");
    assert.equal(out.length, 4, r.stdout);
    assert.match(out[0] ?? "", new RegExp(`^> ${TIME} \\[ping\\] hello ✓$`));
    assert.match(out[1] ?? "", new RegExp(`^> ${TIME} \\[ping\\]$`));
    assert.match(
      out[2] ?? "",
      new RegExp(`^< ${TIME} \\[pong\\] hello ✓ \\(round trip \\d+(\\.\\d)? ms\\)$`),
    );
    assert.match(
      out[3] ?? "",
      new RegExp(`^< ${TIME} \\[pong\\] \\(round trip \\d+(\\.\\d)? ms\\)$`),
    );
    assert.equal(r.stderr, "");
  });

  it("/ping with more than 125 bytes of data is refused and the session goes on", async () => {
    const r = await runCli(["connect", url, "-t"], { stdin: `/ping ${"é".repeat(63)}\nafter\n` });
    assert.equal(r.code, 0, r.stderr);
    assertOneLine(r, /\/ping: the data must be at most 125 UTF-8 bytes$/);
    assert.doesNotMatch(r.stdout, /\[ping\]/);
    assert.match(r.stdout, /< \S+ after$/);
  });

  it("/help lists the commands on stderr", async () => {
    const r = await runCli(["connect", url], { stdin: "/help\n" });
    assert.equal(r.code, 0);
    for (const command of ["/close", "/ping", "/help", "//"]) assert.ok(r.stderr.includes(command));
  });

  it("a stdin read error ends the input like Ctrl-D, with a warning", async () => {
    const stdin = new PassThrough();
    echo.once("connection", () => setTimeout(() => stdin.destroy(new Error("EIO")), 20));
    const r = await runLive([url], { stdin });
    assert.equal(r.code, 0, r.stderr);
    assertOneLine(r, /cannot read stdin: EIO$/);
  });

  it("SIGINT (the abort signal) closes with 1000 and exits 0", async () => {
    const stdin = new PassThrough(); // never ends: only the signal stops the session
    const controller = new AbortController();
    const seen = closeSeen(echo);
    const echoed = new Promise<void>((done) =>
      echo.once("connection", (conn: WebSocketConnection) => conn.once("message", () => done())),
    );
    const run = runLive([url], { stdin, signal: controller.signal });
    stdin.write("still here\n");
    await echoed;
    await delay(100);
    controller.abort();
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "still here");
    assert.deepEqual(await seen, [1000, ""]);
  });
});

describe("duplex connect with permessage-deflate", () => {
  for (const [name, flags] of [
    ["prints the echo of piped lines when both sides compress", []],
    ["--no-deflate avoids it", ["--no-deflate"]],
  ] as const) {
    it(name, async () => {
      const echo = await echoServer(true);
      try {
        const r = await runCli(["connect", urlOf(echo), ...flags], { stdin: "a\nb\n" });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "a\nb");
      } finally {
        await echo.close(1_000);
      }
    });
  }
});

describe("duplex connect: handshake options", () => {
  it("--subprotocol, --header and --origin reach the server; the chosen subprotocol is shown", async () => {
    let offered: readonly string[] = [];
    let request: IncomingMessage | undefined;
    const server = await startServer(() => {}, {
      authenticate: (req) => {
        request = req;
        return undefined;
      },
      handleProtocols: (list) => {
        offered = list;
        return list[1];
      },
      perMessageDeflate: true,
    });
    try {
      const r = await runLive(
        [
          urlOf(server),
          "-s",
          "chat.v1",
          "--subprotocol",
          "chat.v2",
          "-H",
          "Authorization: Bearer abc",
          "--header",
          "X-Trace:  one two ",
          "--origin",
          "https://app.example",
        ],
        { tty: true },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(offered, ["chat.v1", "chat.v2"]);
      assert.equal(request?.headers.authorization, "Bearer abc");
      assert.equal(request?.headers["x-trace"], "one two");
      assert.equal(request?.headers.origin, "https://app.example");
      assert.match(
        r.stderr,
        /^connected to ws:\/\/127\.0\.0\.1:\d+\/ \(subprotocol: chat\.v2, extensions: permessage-deflate\b/,
      );
      const plain = await runLive([urlOf(server), "--no-deflate"], { tty: true });
      assert.equal(plain.code, 0, plain.stderr);
      assert.match(plain.stderr, /^connected to ws:\/\/127\.0\.0\.1:\d+\/\n/, "nothing negotiated");
    } finally {
      await server.close(1_000);
    }
  });

  it("--insecure accepts a self-signed wss:// certificate; without it the error says so", async () => {
    const { cert, key } = makeCertificate();
    const https = createHttpsServer({ cert, key });
    const server = new WebSocketServer({ server: https });
    server.on("connection", (conn: WebSocketConnection) =>
      conn.on("message", (data: Buffer, isBinary: boolean) =>
        conn.send(data, { binary: isBinary }),
      ),
    );
    await new Promise<void>((done) => https.listen(0, "127.0.0.1", done));
    const address = https.address();
    assert.ok(typeof address === "object" && address !== null);
    const url = `wss://127.0.0.1:${address.port}/`;
    try {
      const refused = await runCli(["connect", url], { stdin: "x\n" });
      assert.equal(refused.code, 1);
      assertOneLine(refused, /cannot connect to wss:.*self-signed.*--insecure/);
      const r = await runCli(["connect", url, "--insecure"], { stdin: "secret\n" });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "secret");
    } finally {
      await server.close(1_000);
      https.closeAllConnections();
      await new Promise((done) => https.close(done));
    }
  });
});

describe("duplex connect: closing and exit codes", () => {
  it("/close 4000 bye closes with that code and reason (exit 0); later lines are not sent", async () => {
    const received: string[] = [];
    const server = await startServer((conn) =>
      conn.on("message", (data: Buffer) => received.push(data.toString())),
    );
    try {
      const seen = closeSeen(server);
      const r = await runCli(["connect", urlOf(server)], {
        stdin: "first\n/close 4000 bye now\nsecond\n",
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await seen, [4000, "bye now"]);
      assert.deepEqual(received, ["first"]);
    } finally {
      await server.close(1_000);
    }
  });

  it("/close with a bad code is refused and the session goes on", async () => {
    const server = await startServer(() => {});
    try {
      const seen = closeSeen(server);
      const r = await runCli(["connect", urlOf(server)], { stdin: "/close 1006\n/close 2000 x\n" });
      assert.equal(r.code, 0);
      assert.equal(r.stderr.split("\n").length, 2);
      assert.match(r.stderr, /\/close: the code must be 1000 or 3000-4999, got '1006'/);
      assert.deepEqual(await seen, [1000, ""], "end of input closes with 1000");
    } finally {
      await server.close(1_000);
    }
  });

  it("--wait keeps the connection open for late replies; by default it closes at end of input", async () => {
    const server = await startServer((conn) =>
      conn.on("message", (data: Buffer) =>
        setTimeout(() => {
          if (conn.readyState === 1) conn.send(`late ${data}`);
        }, 150),
      ),
    );
    try {
      const quick = await runCli(["connect", urlOf(server)], { stdin: "a\n" });
      assert.equal(quick.code, 0);
      assert.equal(quick.stdout, "");
      const waited = await runCli(["connect", urlOf(server), "--wait", "600"], { stdin: "a\n" });
      assert.equal(waited.code, 0, waited.stderr);
      assert.equal(waited.stdout, "late a");
    } finally {
      await server.close(1_000);
    }
  });

  it("--wait forever stays open until the server closes; 1000 from the server exits 0", async () => {
    const server = await startServer((conn) => {
      conn.send("hello");
      setTimeout(() => conn.close(1000, "done"), 100);
    });
    try {
      const r = await runLive([urlOf(server), "--wait", "forever"], { tty: true });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^< ${TIME} hello$`));
      assert.match(r.stderr, /\ndisconnected \(code 1000 done\)$/);
    } finally {
      await server.close(1_000);
    }
  });

  it("a server closing with 1011 gives exit 3 and one line with the code and reason", async () => {
    const server = await startServer((conn) => conn.close(1011, "boom"));
    try {
      const r = await runCli(["connect", urlOf(server), "-w", "forever"]);
      assert.equal(r.code, 3);
      assertOneLine(r, /closed the connection with code 1011 \(internal error\): boom$/);
    } finally {
      await server.close(1_000);
    }
  });

  it("a dropped connection (1006) gives exit 3", async () => {
    const server = await startServer((conn) => setTimeout(() => conn.terminate(), 50));
    try {
      const r = await runCli(["connect", urlOf(server), "-w", "forever"]);
      assert.equal(r.code, 3);
      assertOneLine(r, /connection lost \(code 1006\)/);
    } finally {
      await server.close(1_000);
    }
  });
});

describe("duplex connect: cannot connect (exit 1)", () => {
  it("a refused connection names the URL and the reason", async () => {
    const tcp = createTcpServer();
    await new Promise<void>((done) => tcp.listen(0, "127.0.0.1", done));
    const url = urlOf(tcp);
    await new Promise((done) => tcp.close(done));
    const r = await runCli(["connect", url], { stdin: "hi\n" });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      `duplex connect: cannot connect to ${url}: connection refused (ECONNREFUSED)`,
    );
  });

  it("a refused handshake shows the HTTP status", async () => {
    const server = await startServer(() => {}, { authenticate: () => ({ status: 403 }) });
    try {
      const r = await runCli(["connect", urlOf(server)]);
      assert.equal(r.code, 1);
      assertOneLine(r, /: the server answered 403 Forbidden instead of 101 Switching Protocols$/);
    } finally {
      await server.close(1_000);
    }
  });

  it("--timeout gives up on a server that never answers", async () => {
    const sockets = new Set<Socket>();
    const tcp = createTcpServer((s) => sockets.add(s));
    await new Promise<void>((done) => tcp.listen(0, "127.0.0.1", done));
    try {
      const started = Date.now();
      const r = await runCli(["connect", urlOf(tcp), "--timeout", "200"]);
      assert.equal(r.code, 1);
      assertOneLine(r, /no handshake response within 200 ms/);
      assert.ok(Date.now() - started < 2_000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((done) => tcp.close(done));
    }
  });

  it("an abort while connecting exits 1", async () => {
    const sockets = new Set<Socket>();
    const tcp = createTcpServer((s) => sockets.add(s));
    await new Promise<void>((done) => tcp.listen(0, "127.0.0.1", done));
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const r = await runLive([urlOf(tcp)], { signal: controller.signal });
      assert.equal(r.code, 1);
      assertOneLine(r, /interrupted before the connection opened/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((done) => tcp.close(done));
    }
  });
});

describe("duplex connect: usage (exit 2)", () => {
  it("bad URLs, headers and flags give one line and exit code 2", async () => {
    const cases: string[][] = [
      [],
      ["nope"],
      ["ftp://example.com/"],
      ["ws://example.com/#frag"],
      ["ws://127.0.0.1:9/", "--header", "no colon"],
      ["ws://127.0.0.1:9/", "-H", ": empty name"],
      ["ws://127.0.0.1:9/", "-H", "Bad Name: x"],
      ["ws://127.0.0.1:9/", "-H", "Sec-WebSocket-Key: x"],
      ["ws://127.0.0.1:9/", "-s", "not a token"],
      ["ws://127.0.0.1:9/", "-s", "a", "-s", "a"],
      ["ws://127.0.0.1:9/", "--wait", "soon"],
      ["ws://127.0.0.1:9/", "--timeout", "0"],
      ["ws://127.0.0.1:9/", "--transcript", "--quiet"],
      ["ws://127.0.0.1:9/", "--nope"],
      ["ws://127.0.0.1:9/", "extra"],
    ];
    for (const args of cases) {
      const r = await runCli(["connect", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertOneLine(r, /./);
    }
  });

  it("--help starts with the usage line and lists every flag, the commands and the exit codes", async () => {
    const r = await runCli(["connect", "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: duplex connect/);
    for (const text of [
      "--subprotocol",
      "--header",
      "--origin",
      "--binary",
      "--json",
      "--insecure",
      "--no-deflate",
      "--wait",
      "--timeout",
      "--transcript",
      "--quiet",
      "--help",
      "/close",
      "/ping",
      "/help",
      "Exit codes",
    ]) {
      assert.ok(r.stdout.includes(text), text);
    }
    assert.match(r.stdout, /\/ping \[DATA\] +send a ping .*\n +with the round-trip time/);
  });
});

describe("duplex connect: the real process", () => {
  let echo: WebSocketServer;
  before(async () => {
    echo = await echoServer(false);
  });
  after(() => echo.close(1_000));

  function spawnConnect(args: string[]) {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "connect", ...args], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((done) =>
      child.on("close", (code) => done({ code, stdout, stderr })),
    );
    return { child, exited, stdout: () => stdout };
  }

  it("echo hi | duplex connect ws://… prints the echo and exits 0", async () => {
    const { child, exited } = spawnConnect([urlOf(echo)]);
    child.stdin.end("hi\nthere\n");
    const r = await exited;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hi\nthere\n");
    assert.equal(r.stderr, "");
  });

  it("SIGINT closes the connection with 1000 and exits 0", async () => {
    const seen = closeSeen(echo);
    const { child, exited, stdout } = spawnConnect([urlOf(echo)]);
    child.stdin.write("ping\n"); // stdin stays open
    // The echo is printed once the session runs (and the SIGINT handler is installed).
    for (let i = 0; i < 500 && stdout() === ""; i++) await delay(20);
    child.kill("SIGINT");
    const r = await exited;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "ping\n");
    assert.deepEqual(await seen, [1000, ""]);
  });

  it("an unreachable server: exit 1, one line, no stack trace", async () => {
    const { child, exited } = spawnConnect(["ws://127.0.0.1:1/"]);
    child.stdin.end();
    const r = await exited;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^duplex connect: cannot connect to ws:\/\/127\.0\.0\.1:1\/: .+\n$/);
  });
});

function delay(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
