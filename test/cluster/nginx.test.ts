/**
 * The operators' nginx config (deploy/nginx/duplex.conf) as the cluster tests run it: rendered
 * with test backends, accepted by `nginx -t`, round-robin without stickiness, WebSocket upgrades
 * passed through, and a dead backend skipped (proxy_next_upstream + passive health).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { WebSocketServer } from "../../src/server/index.js";
import { DUPLEX_CONF, type Nginx, renderDuplexConf, startNginx } from "../support/nginx.js";
import { stablePort } from "../support/ports.js";

const template = readFileSync(DUPLEX_CONF, "utf8");
/** The directives of the config, comments removed. */
const directives = template
  .split("\n")
  .map((l) => l.replace(/#.*/, "").trim())
  .filter((l) => l !== "");

/** An HTTP server answering its name, with a WebSocket endpoint that says its name too. */
async function backend(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end(name);
  });
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws) => ws.send(name));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      await wss.close(500);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe("deploy/nginx/duplex.conf", () => {
  it("is round-robin without stickiness, proxies WebSockets and skips failed nodes", () => {
    for (const sticky of [/^ip_hash\b/, /^hash\b/, /^sticky\b/, /^least_conn\b/]) {
      assert.ok(!directives.some((d) => sticky.test(d)), `no ${sticky.source} in the config`);
    }
    for (const needed of [
      "proxy_http_version 1.1;",
      "proxy_set_header Upgrade $http_upgrade;",
      "proxy_set_header Connection $duplex_connection;",
      "proxy_next_upstream error timeout http_503;",
    ]) {
      assert.ok(directives.includes(needed), needed);
    }
    assert.ok(
      directives.some((d) => /^proxy_read_timeout \d+h;$/.test(d)),
      "long read timeout",
    );
    const servers = directives.filter((d) => /^server \S+:\d+ /.test(d));
    assert.ok(servers.length >= 2);
    for (const s of servers) assert.match(s, /max_fails=\d+ fail_timeout=\d+s;$/);
  });

  it("renders with the test's backends and passes nginx -t", () => {
    const conf = renderDuplexConf(
      template,
      [
        { host: "127.0.0.1", port: 7001 },
        { host: "127.0.0.1", port: 7002 },
      ],
      "127.0.0.1:7000",
    );
    assert.match(conf, /^ {4}server 127\.0\.0\.1:7001 max_fails=1 fail_timeout=5s;$/m);
    assert.match(conf, /^ {4}server 127\.0\.0\.1:7002 max_fails=1 fail_timeout=5s;$/m);
    assert.doesNotMatch(conf, /10\.0\.0\.1\d/);
    assert.match(conf, /^ {4}listen 127\.0\.0\.1:7000;$/m);
    // Only the server and listen lines changed.
    const strip = (t: string): string[] =>
      t.split("\n").filter((l) => !/^\s*(server \S+:\d+ |listen )/.test(l));
    assert.deepEqual(strip(conf), strip(template));
    assert.throws(() => renderDuplexConf("events {}", [{ host: "h", port: 1 }], "1"), /upstream/);

    const dir = mkdtempSync(join(tmpdir(), "duplex-nginx-t-"));
    try {
      writeFileSync(join(dir, "duplex.conf"), conf);
      writeFileSync(
        join(dir, "nginx.conf"),
        `events {}\nhttp { access_log off; include ${join(dir, "duplex.conf")}; }\n`,
      );
      const r = spawnSync(
        "nginx",
        ["-t", "-p", dir, "-c", join(dir, "nginx.conf"), "-e", "stderr", "-g", `pid ${dir}/p;`],
        { encoding: "utf8" },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /syntax is ok/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("nginx from the template in front of test backends", () => {
  const backends: Array<{ port: number; close(): Promise<void> }> = [];
  let nginx: Nginx;
  let deadPort: number;
  before(async () => {
    for (const name of ["a", "b", "c"]) backends.push(await backend(name));
    deadPort = await stablePort(); // nothing listens there
    nginx = await startNginx({
      backends: [
        { host: "127.0.0.1", port: backends[0]!.port },
        { host: "127.0.0.1", port: deadPort },
        { host: "127.0.0.1", port: backends[1]!.port },
        { host: "127.0.0.1", port: backends[2]!.port },
      ],
    });
  });
  after(async () => {
    await nginx?.close();
    for (const b of backends) await b.close();
  });

  it("spreads requests round-robin and skips the dead backend; every request succeeds", async () => {
    const seen: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await fetch(`${nginx.url}/`);
      assert.equal(r.status, 200);
      seen.push(await r.text());
    }
    const counts = Object.fromEntries(["a", "b", "c"].map((n) => [n, 0]));
    for (const s of seen) counts[s]!++;
    // Round-robin: each live backend gets a third (give or take the retry that found the dead one).
    for (const n of ["a", "b", "c"])
      assert.ok(counts[n]! >= 9 && counts[n]! <= 11, `${n}: ${counts[n]}`);
  });

  it("passes WebSocket upgrades through, to every backend in turn", async () => {
    const names: string[] = [];
    for (let i = 0; i < 6; i++) {
      const ws = new WebSocket(`${nginx.url.replace("http", "ws")}/any`);
      names.push(
        await new Promise<string>((resolve, reject) => {
          ws.once("message", (d: Buffer) => resolve(d.toString()));
          ws.once("error", reject);
        }),
      );
      ws.close();
    }
    assert.deepEqual(new Set(names), new Set(["a", "b", "c"]));
  });

  it("runs from its own directory and stops by PID", () => {
    assert.ok(nginx.pid !== undefined && nginx.pid > 0);
    assert.ok(nginx.dir.startsWith(tmpdir()));
    assert.match(nginx.conf, new RegExp(`listen 127\\.0\\.0\\.1:${nginx.port};`));
    assert.match(nginx.conf, new RegExp(`server 127\\.0\\.0\\.1:${deadPort} `));
  });
});
