/**
 * `duplex publish` and `duplex subscribe` against an in-process `duplex serve`: output formats,
 * ordering and offsets, history and --since, refusals with the server's code, unreachable
 * servers, usage errors, reconnects, and one spawned process to check its stdout is not held
 * back when it is a pipe.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { MemoryBroker } from "../../src/broker/index.js";
import { PUBLISH_USAGE, SUBSCRIBE_USAGE } from "../../src/cli/pubsub.js";
import { type Serving, startServe } from "../../src/cli/serve.js";
import { DisconnectCode } from "../../src/realtime/index.js";
import { type CliRun, runCli } from "./helpers.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");

interface Line {
  channel: string;
  offset: number;
  epoch: string;
  data: unknown;
  from: { client: string; user: string; info?: unknown } | null;
  time: number | null;
}

function jsonLines(run: CliRun): Line[] {
  return run.stdout === "" ? [] : run.stdout.split("\n").map((l) => JSON.parse(l) as Line);
}

/**
 * Until a subscription to the channel is live on the server (past its subscribe reply), on a
 * session not in `old`; resolves with the sessions live then.
 */
async function waitLive(
  s: Serving,
  channel: string,
  old: ReadonlySet<object> = new Set(),
): Promise<Set<object>> {
  for (let i = 0; i < 1000; i++) {
    const live = new Set<object>();
    for (const session of s.rt.sessions) {
      if (session.channels.get(channel)?.buffer === null) live.add(session);
    }
    if ([...live].some((session) => !old.has(session))) return live;
    await delay(5);
  }
  throw new Error(`no live subscription to ${channel}`);
}

/** A local port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise((r) => server.close(r));
  return port;
}

describe("duplex publish / subscribe", () => {
  let s: Serving;
  let url: string;
  const broker = new MemoryBroker();
  before(async () => {
    s = await startServe({ host: "127.0.0.1", port: 0, broker });
    url = `${s.url.replace("http", "ws")}/realtime`;
  });
  after(async () => {
    await s.close();
    await broker.close();
  });

  it("a subscriber sees a JSON message, a string and a stdin line, in order, at consecutive offsets", async () => {
    const channel = "rooms:pubsub-1";
    const subscriber = runCli(["subscribe", channel, "--url", url, "--count", "3", "--json"]);
    await waitLive(s, channel);
    const p1 = await runCli(["publish", channel, '{"text":"hi","n":1}', "--url", url]);
    const p2 = await runCli(["publish", channel, "plain words", "--url", url, "--name", "bob"]);
    const p3 = await runCli(["publish", channel, "--url", url, "--json"], { stdin: "\n[1,2]\n" });
    assert.deepEqual(
      [p1.code, p2.code, p3.code, p1.stderr, p2.stderr, p3.stderr],
      [0, 0, 0, "", "", ""],
    );
    const sub = await subscriber;
    assert.equal(sub.code, 0, sub.stderr);
    assert.equal(sub.stderr, "");
    const lines = jsonLines(sub);
    assert.deepEqual(
      lines.map((l) => l.data),
      [{ text: "hi", n: 1 }, "plain words", [1, 2]],
    );
    const first = lines[0]!;
    assert.deepEqual(
      lines.map((l) => l.offset),
      [first.offset, first.offset + 1, first.offset + 2],
    );
    for (const l of lines) {
      assert.equal(l.channel, channel);
      assert.equal(l.epoch, first.epoch);
      assert.equal(typeof l.time, "number");
    }
    assert.deepEqual(
      lines.map((l) => l.from?.user),
      ["duplex-cli", "bob", "duplex-cli"],
    );
    // The acks: text by default, JSON with --json, matching what the subscriber saw.
    assert.equal(p1.stdout, `published offset ${first.offset} (epoch ${first.epoch})`);
    assert.equal(p2.stdout, `published offset ${first.offset + 1} (epoch ${first.epoch})`);
    assert.deepEqual(JSON.parse(p3.stdout), { offset: first.offset + 2, epoch: first.epoch });
  });

  it("stdin lines are published in order, one ack line each; --raw keeps JSON-looking text a string", async () => {
    const channel = "rooms:pubsub-stdin";
    const subscriber = runCli(["subscribe", channel, "--url", url, "--count", "4", "--json"]);
    await waitLive(s, channel);
    const input = `${Array.from({ length: 3 }, (_, i) => `{"i":${i}}`).join("\n")}\r\n`;
    const pub = await runCli(["publish", channel, "--url", url], { stdin: input });
    const raw = await runCli(["publish", channel, "42", "--raw", "--url", url]);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal(raw.code, 0, raw.stderr);
    assert.deepEqual(
      pub.stdout.split("\n").map((l) => Number(/offset (\d+)/.exec(l)?.[1])),
      [1, 2, 3],
    );
    const lines = jsonLines(await subscriber);
    assert.deepEqual(
      lines.map((l) => [l.offset, l.data]),
      [
        [1, { i: 0 }],
        [2, { i: 1 }],
        [3, { i: 2 }],
        [4, "42"],
      ],
    );
  });

  it("the default output: offset, ISO time, publisher, data as JSON", async () => {
    const channel = "rooms:pubsub-text";
    const subscriber = runCli(["subscribe", channel, "--url", url, "--count", "1"]);
    await waitLive(s, channel);
    assert.equal(
      (await runCli(["publish", channel, "a b", "--url", url, "--name", "ann"])).code,
      0,
    );
    const out = await subscriber;
    assert.match(out.stdout, /^1 {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z {2}ann {2}"a b"$/);
  });

  it("--history N prints the last N publications first, then live ones without duplicates", async () => {
    const channel = "rooms:pubsub-history";
    const pub = await runCli(["publish", channel, "--url", url], { stdin: "1\n2\n3\n4\n5\n" });
    assert.equal(pub.code, 0, pub.stderr);
    const subscriber = runCli(
      ["subscribe", channel, "--url", url, "--history", "3"].concat(["--count", "4", "--json"]),
    );
    await waitLive(s, channel);
    assert.equal((await runCli(["publish", channel, "6", "--url", url])).code, 0);
    const lines = jsonLines(await subscriber);
    assert.deepEqual(
      lines.map((l) => [l.offset, l.data]),
      [
        [3, 3],
        [4, 4],
        [5, 5],
        [6, 6],
      ],
    );
    // More than there is: everything, once.
    const all = await runCli([
      "subscribe",
      channel,
      "--url",
      url,
      "--history",
      "50",
      "--count",
      "6",
    ]);
    assert.deepEqual(
      all.stdout.split("\n").map((l) => Number(l.split("  ")[0])),
      [1, 2, 3, 4, 5, 6],
    );
  });

  it("--since OFFSET:EPOCH prints what came after that position; a stale epoch is a note on stderr", async () => {
    const channel = "rooms:pubsub-since";
    const pub = await runCli(["publish", channel, "--url", url, "--json"], {
      stdin: "a\nb\nc\nd\n",
    });
    const acks = pub.stdout
      .split("\n")
      .map((l) => JSON.parse(l) as { offset: number; epoch: string });
    const epoch = acks[0]!.epoch;
    const since = await runCli([
      "subscribe",
      channel,
      "--url",
      url,
      "--since",
      `2:${epoch}`,
      "--count",
      "2",
      "--json",
    ]);
    assert.equal(since.code, 0, since.stderr);
    assert.deepEqual(
      jsonLines(since).map((l) => [l.offset, l.data]),
      [
        [3, "c"],
        [4, "d"],
      ],
    );
    const fromStart = await runCli([
      "subscribe",
      channel,
      "--url",
      url,
      "--since",
      "0:",
      "--count",
      "4",
      "--json",
    ]);
    assert.deepEqual(
      jsonLines(fromStart).map((l) => l.data),
      ["a", "b", "c", "d"],
    );
    const stale = runCli([
      "subscribe",
      channel,
      "--url",
      url,
      "--since",
      "1:other",
      "--count",
      "1",
    ]);
    await waitLive(s, channel);
    assert.equal((await runCli(["publish", channel, "e", "--url", url])).code, 0);
    const r = await stale;
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^5 {2}.* {2}"e"$/);
    assert.match(r.stderr, /^duplex subscribe: cannot recover since 1:other: .*restarted/);
    assert.equal(r.stderr.split("\n").length, 1);
  });

  it("publish to chat:x without --subscribe: exit 1, 'permission denied (103)' and a hint; with --subscribe it is published", async () => {
    const denied = await runCli(["publish", "chat:pubsub", "hello", "--url", url]);
    assert.equal(denied.code, 1);
    assert.equal(denied.stdout, "");
    assert.equal(denied.stderr.split("\n").length, 1);
    assert.match(denied.stderr, /^duplex publish: permission denied \(103\): .*add --subscribe\)$/);
    const ok = await runCli(["publish", "chat:pubsub", "hello", "--url", url, "--subscribe"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^published offset 1 \(epoch \w+\)$/);
    // Never allowed (stats): 103 again, without the hint.
    const stats = await runCli(["publish", "stats:server", "{}", "--url", url, "--subscribe"]);
    assert.equal(stats.code, 1);
    assert.match(stats.stderr, /^duplex publish: permission denied \(103\): [^()]*$/);
  });

  it("an unknown namespace: exit 1 with 'unknown channel (102)' for publish and subscribe", async () => {
    const pub = await runCli(["publish", "nowhere:x", "1", "--url", url]);
    assert.equal(pub.code, 1);
    assert.match(pub.stderr, /^duplex publish: unknown channel \(102\)/);
    assert.equal(pub.stderr.split("\n").length, 1);
    const sub = await runCli(["subscribe", "nowhere:x", "--url", url]);
    assert.equal(sub.code, 1);
    assert.match(sub.stderr, /^duplex subscribe: cannot subscribe: unknown channel \(102\)/);
    assert.equal(sub.stderr.split("\n").length, 1);
  });

  it("a refused stdin line stops publish with exit 1 after the lines before it", async () => {
    const big = JSON.stringify("x".repeat(20_000));
    const r = await runCli(["publish", "rooms:pubsub-stop", "--url", url], {
      stdin: `1\n${big}\n3\n`,
    });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^published offset 1 /);
    assert.equal(r.stdout.split("\n").length, 1);
    assert.match(r.stderr, /^duplex publish: limit exceeded \(106\)/);
  });

  it("--key makes a publication idempotent: the second is reported as a duplicate", async () => {
    const args = ["publish", "rooms:pubsub-key", "once", "--url", url, "--key", "k-1"];
    const first = await runCli(args);
    const again = await runCli([...args, "--json"]);
    assert.equal(first.stdout, `published offset 1 (epoch ${JSON.parse(again.stdout).epoch})`);
    assert.equal(JSON.parse(again.stdout).duplicate, true);
    assert.equal(JSON.parse(again.stdout).offset, 1);
  });

  it("a refused connect (bad nickname) is one line with the server's code, at once", async () => {
    const r = await runCli(["publish", "rooms:x", "1", "--url", url, "--name", "x".repeat(40)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^duplex publish: .* refused the connection: unauthorized \(101\)/);
  });

  it("an unreachable server: exit 1 with one line after --timeout (publish and subscribe)", async () => {
    const port = await closedPort();
    for (const command of ["publish", "subscribe"]) {
      const started = Date.now();
      const args = [command, "rooms:x", ...(command === "publish" ? ["1"] : [])];
      const r = await runCli([...args, "--url", `ws://127.0.0.1:${port}`, "--timeout", "300"]);
      assert.equal(r.code, 1, command);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr.split("\n").length, 1);
      assert.match(
        r.stderr,
        new RegExp(
          `^duplex ${command}: cannot connect to ws://127\\.0\\.0\\.1:${port}/realtime: .*ECONNREFUSED.* \\(gave up after 300 ms\\)$`,
        ),
      );
      assert.ok(Date.now() - started < 5_000);
    }
  });

  it("DUPLEX_URL is used when there is no --url", async () => {
    const r = await runCli(["publish", "rooms:pubsub-env", "1"], { env: { DUPLEX_URL: s.url } });
    assert.equal(r.code, 0, r.stderr);
  });

  it("subscribe survives a reconnect (recovering what it missed) and notes on stderr when it cannot", async () => {
    const channel = "rooms:pubsub-reconnect";
    const subscriber = runCli([
      "subscribe",
      channel,
      "--url",
      url,
      "--name",
      "rejoiner",
      "--count",
      "4",
      "--json",
    ]);
    const first = await waitLive(s, channel);
    await s.rt.publish(channel, 1);
    // Told to reconnect (4000); publications meanwhile are recovered.
    assert.equal(await s.rt.disconnectUser("rejoiner", DisconnectCode.SHUTDOWN), 1);
    await s.rt.publish(channel, 2);
    const second = await waitLive(s, channel, first);
    await s.rt.publish(channel, 3);
    // Again, but the history is gone meanwhile: a new epoch, recovery impossible.
    assert.equal(await s.rt.disconnectUser("rejoiner", DisconnectCode.SHUTDOWN), 1);
    await broker.removeHistory(channel);
    await s.rt.publish(channel, "lost");
    await waitLive(s, channel, second);
    await s.rt.publish(channel, 4);
    const r = await subscriber;
    assert.equal(r.code, 0);
    assert.deepEqual(
      jsonLines(r).map((l) => l.data),
      [1, 2, 3, 4],
    );
    assert.match(r.stderr, /^duplex subscribe: reconnected, but the publications missed .*$/);
    assert.equal(r.stderr.split("\n").length, 1);
  });

  it("subscribe exits 1 with one line when the server disconnects it for good", async () => {
    const channel = "rooms:pubsub-forced";
    const subscriber = runCli(["subscribe", channel, "--url", url, "--name", "kicked"]);
    await waitLive(s, channel);
    assert.equal(await s.rt.disconnectUser("kicked"), 1);
    const r = await subscriber;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^duplex subscribe: the server closed the connection: .*\(4502\)/);
    assert.equal(r.stderr.split("\n").length, 1);
  });

  it("subscribe stops with exit 0 when the signal aborts (SIGINT)", async () => {
    const controller = new AbortController();
    const subscriber = runCli(["subscribe", "rooms:pubsub-abort", "--url", url], {
      signal: controller.signal,
    });
    await waitLive(s, "rooms:pubsub-abort");
    controller.abort();
    const r = await subscriber;
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, "", ""]);
  });

  it("bad usage is one line with exit code 2", async () => {
    const cases: string[][] = [
      ["publish"],
      ["publish", "rooms:x", "a", "b"],
      ["publish", "rooms:x", "1", "--timeout", "soon"],
      ["publish", "rooms:x", "1", "--timeout", "0"],
      ["publish", "rooms:x", "--key", "k"],
      ["publish", "rooms:x", "1", "--url", "ftp://example.com"],
      ["publish", "rooms:x", "1", "--url", "not a url"],
      ["publish", "rooms:x", "1", "--nope"],
      ["publish", "", "1"],
      ["subscribe"],
      ["subscribe", "rooms:x", "extra"],
      ["subscribe", "rooms:x", "--count", "0"],
      ["subscribe", "rooms:x", "--count"],
      ["subscribe", "rooms:x", "--history", "-1"],
      ["subscribe", "rooms:x", "--since", "seven"],
      ["subscribe", "rooms:x", "--since", "7:"],
      ["subscribe", "rooms:x", "--since", "1:e", "--history", "2"],
      ["subscribe", "rooms:x", "--raw"],
      ["subscribe", "rooms:x", "--name", " "],
    ];
    for (const args of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.equal(r.stderr.split("\n").length, 1, args.join(" "));
      assert.match(r.stderr, new RegExp(`^duplex ${args[0]}: `), args.join(" "));
    }
  });

  it("--help lists every flag", async () => {
    const publishFlags = ["--url", "--name", "--token", "--key", "--subscribe", "--timeout"];
    const pub = await runCli(["publish", "--help"]);
    assert.equal(pub.code, 0);
    assert.ok(pub.stdout.startsWith("Usage: duplex publish"));
    assert.equal(pub.stdout, PUBLISH_USAGE);
    for (const flag of [
      ...publishFlags,
      "--raw",
      "--json",
      "--help",
      "DUPLEX_URL",
      "DUPLEX_TOKEN",
    ]) {
      assert.ok(pub.stdout.includes(flag), flag);
    }
    const sub = await runCli(["subscribe", "-h"]);
    assert.equal(sub.code, 0);
    assert.ok(sub.stdout.startsWith("Usage: duplex subscribe"));
    assert.equal(sub.stdout, SUBSCRIBE_USAGE);
    for (const flag of ["--url", "--name", "--token", "--timeout", "--json", "--history"].concat([
      "--count",
      "--since",
      "--help",
      "DUPLEX_URL",
      "DUPLEX_TOKEN",
    ])) {
      assert.ok(sub.stdout.includes(flag), flag);
    }
  });

  it("the real process writes each publication to a pipe as it arrives, and exits 0 on SIGINT", async () => {
    const channel = "rooms:pubsub-spawn";
    const child = spawn(
      process.execPath,
      ["--import", "tsx", MAIN, "subscribe", channel, "--url", url, "--json"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      const line = (n: number): Promise<void> =>
        new Promise((r, reject) => {
          const check = (): void => {
            if (out.split("\n").length > n) {
              child.stdout.off("data", onData);
              r();
            }
          };
          const onData = (d: Buffer): void => {
            out += d.toString();
            check();
          };
          child.stdout.on("data", onData);
          child.once("exit", (code) => reject(new Error(`exited ${code}: ${err}`)));
          check();
        });
      await waitLive(s, channel);
      await s.rt.publish(channel, { first: true });
      await line(1); // arrives while the process runs: not held in a buffer until exit
      assert.deepEqual(JSON.parse(out.split("\n")[0]!).data, { first: true });
      await s.rt.publish(channel, "second");
      await line(2);
      assert.equal(JSON.parse(out.split("\n")[1]!).data, "second");
      child.kill("SIGINT");
      assert.equal(await exited, 0);
      assert.equal(err, "");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
