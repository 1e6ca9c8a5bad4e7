/**
 * `duplex serve`: the endpoints it promises (health, realtime with nicknames, echo, stats, HTTP
 * API), its Origin policy, flags and environment variables, graceful shutdown on SIGTERM.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import {
  colourOf,
  parseServeArgs,
  type Serving,
  startServe,
  validNickname,
} from "../../src/cli/serve.js";
import { DisconnectCode } from "../../src/realtime/index.js";
import { Peer } from "../realtime/helpers.js";
import { freePort, startRedis } from "../support/redis.js";
import { runCli } from "./helpers.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");

describe("duplex serve (in process)", () => {
  let s: Serving;
  let ws: string;
  before(async () => {
    s = await startServe({ host: "127.0.0.1", port: 0, apiKey: "k", statsIntervalMs: 50 });
    ws = s.url.replace("http", "ws");
  });
  after(() => s.close());

  it("/healthz answers 200 ok", async () => {
    const r = await fetch(`${s.url}/healthz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: "ok", node: `127.0.0.1:${s.port}` });
  });

  it("/realtime: a nickname connects; its info carries the name and a colour; no nickname is refused", async () => {
    const { peer, reply } = await Peer.connect(`${ws}/realtime`, { data: { name: "  ada " } });
    assert.equal(reply.result.user, "ada");
    await peer.request({ type: "subscribe", channel: "chat:lobby" });
    const list = await peer.request({ type: "presence", channel: "chat:lobby" });
    assert.deepEqual(list.result.members[0].info, { name: "ada", colour: colourOf("ada") });
    peer.close();
    const bad = await Peer.connect(`${ws}/realtime`, { data: { name: "" } });
    assert.equal(bad.reply.error.code, 101);
    assert.equal((await bad.peer.closed).code, DisconnectCode.UNAUTHORIZED);
  });

  it("/echo echoes text and binary", async () => {
    const client = new WebSocket(`${ws}/echo`);
    await new Promise((r) => client.once("open", r));
    const got = new Promise<[Buffer, boolean]>((r) =>
      client.once("message", (d: Buffer, b) => r([d, b])),
    );
    client.send("ping ✓");
    const [data, binary] = await got;
    assert.equal(data.toString(), "ping ✓");
    assert.equal(binary, false);
    client.close();
  });

  it("a cross-site Origin is refused with 403; the page's own origin is accepted", async () => {
    const status = await new Promise<number>((r) => {
      const c = new WebSocket(`${ws}/echo`, { origin: "https://evil.example" });
      c.on("unexpected-response", (_req, res) => r(res.statusCode ?? 0));
      c.on("error", () => undefined);
    });
    assert.equal(status, 403);
    const ok = new WebSocket(`${ws}/echo`, { origin: s.url });
    await new Promise((r) => ok.once("open", r));
    ok.close();
  });

  it("/stats.json and the stats channel report connections and channels", async () => {
    const r = (await (await fetch(`${s.url}/stats.json`)).json()) as Record<string, number>;
    for (const k of [
      "connections",
      "channels",
      "publicationsPerSecond",
      "rssBytes",
      "uptimeSeconds",
    ]) {
      assert.equal(typeof r[k], "number", k);
    }
    const { peer } = await Peer.connect(`${ws}/realtime`, { data: { name: "stats-reader" } });
    await peer.request({ type: "subscribe", channel: "stats:server" });
    const pub = await peer.push((m) => m.type === "pub");
    assert.ok(pub.data.connections >= 1);
    const denied = await peer.request({ type: "publish", channel: "stats:server", data: {} });
    assert.equal(denied.error.code, 103);
    peer.close();
  });

  it("POST /api/publish works with the API key; unknown paths are 404; WebSocket paths explain themselves", async () => {
    const r = await fetch(`${s.url}/api/publish`, {
      method: "POST",
      headers: { authorization: "apikey k" },
      body: JSON.stringify({ channel: "chat:lobby", data: { text: "hi" } }),
    });
    assert.equal(r.status, 200);
    assert.equal((await fetch(`${s.url}/nothing`)).status, 404);
    assert.equal((await fetch(`${s.url}/echo`)).status, 426);
    assert.equal((await fetch(`${s.url}/assets/../../package.json`)).status, 404);
  });

  it("typing indicators are rate-limited on the server", async () => {
    const { peer } = await Peer.connect(`${ws}/realtime`, { data: { name: "typer" } });
    await peer.request({ type: "subscribe", channel: "typing:lobby" });
    const first = await peer.request({ type: "publish", channel: "typing:lobby", data: true });
    const second = await peer.request({ type: "publish", channel: "typing:lobby", data: true });
    assert.ok(first.result);
    assert.equal(second.error.code, 103);
    peer.close();
  });
});

describe("duplex serve: options", () => {
  it("flags win over environment variables, which win over defaults", () => {
    assert.deepEqual(parseServeArgs([], {}), { host: "127.0.0.1", port: 8080 });
    const env = {
      DUPLEX_PORT: "9000",
      DUPLEX_HOST: "::1",
      DUPLEX_ALLOWED_ORIGINS: "https://a, https://b",
    };
    assert.deepEqual(parseServeArgs([], env), {
      host: "::1",
      port: 9000,
      origins: ["https://a", "https://b"],
    });
    assert.equal(parseServeArgs(["--port", "81"], env).port, 81);
    assert.equal(parseServeArgs([], { DUPLEX_JWT_SECRET: "s" }).jwtSecret, "s");
    const redisEnv = { DUPLEX_BROKER: "redis://127.0.0.1:6399", DUPLEX_NODE: "n1" };
    assert.equal(parseServeArgs([], redisEnv).brokerUrl, "redis://127.0.0.1:6399");
    assert.equal(parseServeArgs([], redisEnv).node, "n1");
    assert.equal(parseServeArgs(["--broker", "memory"], redisEnv).brokerUrl, "memory");
    assert.equal(parseServeArgs(["--drain-ms", "1500"], {}).drainMs, 1500);
    assert.equal(parseServeArgs([], { DUPLEX_DRAIN_MS: "250" }).drainMs, 250);
  });

  it("bad flags are one line with exit code 2", async () => {
    for (const args of [
      ["--port", "x"],
      ["--nope"],
      ["--tls-cert", "a.pem"],
      ["extra"],
      ["--broker", "mysql://x"],
      ["--drain-ms", "-5"],
    ]) {
      const r = await runCli(["serve", ...args]);
      assert.equal(r.code, 2, args.join(" "));
      assert.equal(r.stderr.split("\n").length, 1);
      assert.match(r.stderr, /^duplex serve: /);
    }
  });

  it("a Redis broker that cannot be reached is one line with exit code 1", async () => {
    const port = await freePort();
    const r = await runCli(["serve", "--port", "0", "--broker", `redis://127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(
      r.stderr,
      /^duplex serve: cannot start the broker \(redis:\/\/127\.0\.0\.1:\d+\): /,
    );
  });

  it("two servers over one Redis share a channel, with one history", async () => {
    const redis = await startRedis();
    const a = await startServe({ host: "127.0.0.1", port: 0, brokerUrl: redis.url, node: "a" });
    const b = await startServe({ host: "127.0.0.1", port: 0, brokerUrl: redis.url, node: "b" });
    try {
      assert.deepEqual(await (await fetch(`${b.url}/healthz`)).json(), { status: "ok", node: "b" });
      const named = await Peer.connect(`${b.url.replace("http", "ws")}/realtime`, {
        data: { name: "nia" },
      });
      assert.equal(named.reply.result.node, "b"); // the connect reply names the node too
      named.peer.close();
      const channel = `chat:redis-${process.pid}-${Date.now()}`;
      const sub = await Peer.connect(`${b.url.replace("http", "ws")}/realtime`, {
        data: { name: "bea" },
      });
      await sub.peer.request({ type: "subscribe", channel });
      const pubr = await Peer.connect(`${a.url.replace("http", "ws")}/realtime`, {
        data: { name: "ada" },
      });
      await pubr.peer.request({ type: "subscribe", channel });
      const ack = await pubr.peer.request({ type: "publish", channel, data: { text: "hi" } });
      assert.equal(ack.result.offset, 1);
      const pub = await sub.peer.push((p) => p.type === "pub" && p.channel === channel);
      assert.deepEqual(pub.data, { text: "hi" });
      assert.equal(pub.offset, 1);
      sub.peer.close();
      pubr.peer.close();
    } finally {
      await a.close();
      await b.close();
      await redis.stop();
    }
  });

  it("a port in use is one line with exit code 1", async () => {
    const s = await startServe({ host: "127.0.0.1", port: 0 });
    try {
      const r = await runCli(["serve", "--port", String(s.port)]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^duplex serve: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE$/);
    } finally {
      await s.close();
    }
  });

  it("nicknames: trimmed, 1 to 32 characters, no control characters", () => {
    assert.equal(validNickname(" bo "), "bo");
    for (const bad of ["", "   ", "x".repeat(33), "a\u0007b", 5, undefined]) {
      assert.equal(validNickname(bad), undefined, String(bad));
    }
  });

  it("colours: stable per name, and similar names spread over the hue circle", () => {
    assert.equal(colourOf("ada"), colourOf("ada"));
    const hues = Array.from({ length: 12 }, (_, i) => {
      const m = /^hsl\((\d+) 70% 45%\)$/.exec(colourOf(`user${i + 1}`));
      assert.ok(m, colourOf(`user${i + 1}`));
      return Number(m[1]);
    });
    // Twelve near-identical names land in at least 6 of the twelve 30° sectors
    // (a plain polynomial hash put them within a few degrees of each other).
    assert.ok(new Set(hues.map((h) => Math.floor(h / 30))).size >= 6, hues.join(","));
  });

  it("SIGTERM: clients are told to reconnect (4000), /healthz drains, the process exits 0", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "serve", "--port", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const url = await new Promise<string>((r, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /running on (http:\/\/\S+)/.exec(out);
        if (m?.[1] !== undefined) r(m[1]);
      });
      child.on("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const { peer } = await Peer.connect(`${url.replace("http", "ws")}/realtime`, {
      data: { name: "z" },
    });
    const exited = new Promise<number | null>((r) => {
      child.removeAllListeners("exit");
      child.on("exit", (code) => r(code));
    });
    child.kill("SIGTERM");
    const closed = await peer.closed;
    assert.equal(closed.code, DisconnectCode.SHUTDOWN);
    assert.equal(peer.pushes.find((m) => m.type === "disconnect")?.reconnect, true);
    assert.equal(await exited, 0);
    assert.match(out, /Stopped\./);
  });
});
