/**
 * `duplex bench`: every scenario against the servers it starts itself, --url against an
 * in-process echo server, the JSON report and SVG chart it writes, SIGINT, and its errors.
 * Short runs only (1 s, 5 connections) and no timing thresholds: only that measurements exist
 * and are consistent.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Histogram } from "../../src/cli/bench/histogram.js";
import { type BenchReport, renderSvg } from "../../src/cli/bench/report.js";
import { parseCpuList } from "../../src/cli/bench/servers.js";
import { startEcho } from "../../src/cli/echo.js";
import type { WebSocketServer } from "../../src/server/index.js";
import { runCli } from "./helpers.js";

const SHORT = ["--duration", "1", "--connections", "5"];

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "duplex-bench-test-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The one JSON report and one SVG chart written into dir. */
function outputs(dir: string): { report: BenchReport; svg: string } {
  const files = readdirSync(dir).sort();
  const json = files.filter((f) => f.endsWith(".json"));
  const svg = files.filter((f) => f.endsWith(".svg"));
  assert.equal(json.length, 1, `one JSON report in ${files.join(", ")}`);
  assert.equal(svg.length, 1, `one SVG chart in ${files.join(", ")}`);
  assert.equal(json[0]!.replace(/\.json$/, ""), svg[0]!.replace(/\.svg$/, ""), "side by side");
  return {
    report: JSON.parse(readFileSync(join(dir, json[0]!), "utf8")) as BenchReport,
    svg: readFileSync(join(dir, svg[0]!), "utf8"),
  };
}

/** XML-ish: starts with <svg, has a <title>, every tag closed in order, no bare '&' or '<'. */
function assertWellFormedSvg(svg: string): void {
  assert.ok(svg.startsWith("<svg "), "starts with <svg");
  assert.match(svg, /<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<title[^>]*>[^<]+<\/title>/);
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (const m of svg.matchAll(tag)) {
    const between = svg.slice(last, m.index);
    assert.doesNotMatch(between, /<|>/, `stray markup before ${m[0]}`);
    assert.doesNotMatch(between, /&(?!(?:amp|lt|gt|quot|apos);)/, `bare & in '${between}'`);
    last = m.index + m[0].length;
    const [, closing, name, , selfClosing] = m;
    if (selfClosing === "/") continue;
    if (closing === "/") assert.equal(stack.pop(), name, `</${name}> closes the open element`);
    else stack.push(name!);
  }
  assert.deepEqual(stack, [], "every element is closed");
  assert.equal(svg.slice(last).trim(), "", "nothing after </svg>");
}

function assertConsistent(report: BenchReport, scenarios: readonly string[]): void {
  assert.equal(report.tool, "duplex bench");
  assert.deepEqual(
    report.results.map((r) => r.scenario),
    scenarios,
  );
  assert.equal(report.interrupted, false);
  assert.match(report.machine.node, /^v\d+/);
  assert.ok(report.machine.cores >= 1);
  assert.equal(typeof report.machine.cpuModel, "string");
  for (const r of report.results) {
    assert.ok(r.count > 0, `${r.scenario}: something was measured`);
    assert.ok(r.rate > 0, `${r.scenario}: nonzero rate`);
    assert.ok(r.durationS > 0);
    const l = r.latencyMs;
    assert.equal(l.count, r.count, `${r.scenario}: one latency sample per operation`);
    assert.ok(l.min <= l.p50, `${r.scenario}: min ≤ p50`);
    assert.ok(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, `${r.scenario}: ordered`);
    assert.ok(l.min > 0 && l.mean >= l.min && l.mean <= l.max);
    assert.equal(r.interrupted, false);
  }
}

/** The table's row for a scenario, split into cells. */
function row(stdout: string, scenario: string): string[] {
  const line = stdout.split("\n").find((l) => l.startsWith(`${scenario} `));
  assert.ok(line !== undefined, `a row for ${scenario} in:\n${stdout}`);
  return line.trim().split(/\s{2,}/);
}

describe("duplex bench against its own servers", () => {
  for (const scenario of ["echo", "broadcast", "handshake"] as const) {
    it(`${scenario}: a table with a nonzero rate, a JSON report and an SVG chart`, async () => {
      const out = tempDir();
      const r = await runCli(["bench", "--scenario", scenario, ...SHORT, "--out", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "", "nothing on stderr when it is not a terminal");
      assert.match(
        r.stdout.split("\n")[0] ?? "",
        /^scenario\s+connections\s+rate\s+p50 ms\s+p90 ms\s+p99 ms\s+max ms\s+errors$/,
      );
      const [name, connections, rate, p50, p90, p99, max, errors] = row(r.stdout, scenario);
      assert.equal(name, scenario);
      assert.equal(connections, "5");
      assert.match(rate ?? "", /^[1-9][\d,]* (msg|deliveries|handshakes)\/s$/);
      const ms = [p50, p90, p99, max].map(Number);
      assert.ok(
        ms.every((n) => Number.isFinite(n) && n >= 0),
        `latencies: ${ms}`,
      );
      assert.ok(ms[0]! <= ms[2]!, "p50 ≤ p99");
      assert.match(errors ?? "", /^\d+$/);
      assert.match(r.stdout, /server: built-in Duplex/);

      const { report, svg } = outputs(out);
      assertConsistent(report, [scenario]);
      assert.equal(report.target.server, "built-in");
      assert.match(report.target.url, /^ws:\/\/127\.0\.0\.1:\d+\/$/);
      assert.deepEqual(report.options, {
        scenarios: [scenario],
        connections: 5,
        durationS: 1,
        size: 32,
      });
      assert.match(r.stdout, new RegExp(`Report: .*${report.date.slice(0, 4)}.*\\.json`));
      const cpu = report.results[0]?.cpuPercent;
      assert.ok(cpu !== null && cpu !== undefined && cpu.load >= 0, "CPU of the load generator");
      if (process.platform === "linux") assert.ok((cpu.server ?? -1) >= 0, "and of the server");
      assert.match(
        r.stdout,
        /^CPU, % of one core \(load generator(\/server)?\): \w+ \d+(\/\d+)?$/m,
      );
      assertWellFormedSvg(svg);
      assert.match(svg, new RegExp(`>${scenario}<`));
      assert.match(svg, /p99/);
    });
  }

  it("--json prints the report instead of the table, the same as the file", async () => {
    const out = tempDir();
    const r = await runCli(["bench", "--scenario", "echo", ...SHORT, "--out", out, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as BenchReport;
    assertConsistent(printed, ["echo"]);
    assert.deepEqual(outputs(out).report, printed);
  });
});

describe("duplex bench --url", () => {
  let server: WebSocketServer;
  let url: string;
  before(async () => {
    server = await startEcho({
      port: 0,
      host: "127.0.0.1",
      deflate: false,
      subprotocols: [],
      maxMessageBytes: 1 << 20,
    });
    const address = server.address();
    assert.ok(typeof address === "object" && address !== null);
    url = `ws://127.0.0.1:${address.port}/`;
  });
  after(() => server.close(1_000));

  it("measures an in-process echo server: echo and handshake (all, without broadcast)", async () => {
    const out = tempDir();
    const r = await runCli(["bench", "--url", url, ...SHORT, "--size", "100", "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    row(r.stdout, "echo");
    row(r.stdout, "handshake");
    assert.doesNotMatch(r.stdout, /^broadcast/m);
    assert.match(r.stdout, new RegExp(`server: ${url}`));
    const { report, svg } = outputs(out);
    assertConsistent(report, ["echo", "handshake"]);
    assert.equal(report.target.server, "external");
    assert.equal(report.target.url, url);
    assert.equal(report.target.pinning, null, "a server it did not start is not pinned");
    assert.equal(report.results[0]?.cpuPercent?.server, null, "nor sampled");
    assert.equal(report.results[0]?.size, 100);
    assertWellFormedSvg(svg);
  });

  it("SIGINT stops early, still prints what was measured, exits 130", async () => {
    const out = tempDir();
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 1_500);
    const r = await runCli(
      [
        "bench",
        "--url",
        url,
        "--scenario",
        "echo",
        "--duration",
        "60",
        "--connections",
        "5",
      ].concat(["--out", out]),
      { signal: controller.signal },
    );
    assert.equal(r.code, 130, r.stderr);
    assert.ok(Date.now() - started < 30_000, "stopped well before the 60 s asked");
    assert.match(r.stdout, /interrupted/);
    if (/^echo\*/m.test(r.stdout)) {
      const { report } = outputs(out);
      assert.equal(report.interrupted, true);
      assert.equal(report.results[0]?.interrupted, true);
      assert.ok((report.results[0]?.durationS ?? 60) < 60);
    }
  });

  it("an unreachable --url: one line, exit 1", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const address = s.address();
        s.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
      });
    });
    const out = tempDir();
    const r = await runCli(["bench", "--url", `ws://127.0.0.1:${port}/`, ...SHORT, "--out", out]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.split("\n").length, 1, r.stderr);
    assert.match(
      r.stderr,
      /^duplex bench: cannot connect to ws:\/\/127\.0\.0\.1:\d+\/: .*ECONNREFUSED/,
    );
    assert.deepEqual(readdirSync(out), [], "no report for a run that measured nothing");
  });
});

describe("duplex bench flags", () => {
  it("--help lists every flag", async () => {
    const r = await runCli(["bench", "--help"]);
    assert.equal(r.code, 0);
    for (const flag of [
      "--url",
      "--scenario",
      "--connections",
      "--duration",
      "--size",
      "--out",
      "--json",
      "--help",
    ]) {
      assert.match(r.stdout, new RegExp(`^\\s+(-h, )?${flag}\\b`, "m"), flag);
    }
    for (const scenario of ["echo", "broadcast", "handshake", "all"]) {
      assert.match(r.stdout, new RegExp(`\\b${scenario}\\b`));
    }
  });

  for (const [args, message] of [
    [["--bogus"], /bogus/],
    [["--connections", "0"], /--connections must be an integer between 1 and 10000/],
    [["--connections", "many"], /--connections/],
    [["--duration", "0"], /--duration must be an integer between 1 and 600/],
    [["--duration", "1.5"], /--duration/],
    [["--size", "0"], /--size/],
    [["--scenario", "pingpong"], /--scenario must be one of echo, broadcast, handshake, all/],
    [["--url", "http//nope"], /--url must be a ws:\/\/ or wss:\/\/ URL/],
    [["--url", "ftp://127.0.0.1/"], /--url must be a ws:\/\/ or wss:\/\/ URL/],
    [["--url", "ws://127.0.0.1:1/", "--scenario", "broadcast"], /needs the built-in server/],
    [["--out", ""], /--out/],
    [["extra"], /unexpected argument/i],
  ] as const) {
    it(`bad flags exit 2 with one line: ${args.join(" ")}`, async () => {
      const r = await runCli(["bench", ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr.split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /^duplex bench: /);
      assert.match(r.stderr, message);
    });
  }
});

describe("duplex bench internals", () => {
  it("the latency histogram: ordered quantiles within 1 % of the true values", () => {
    const h = new Histogram();
    for (let i = 1; i <= 1000; i++) h.record(i / 10); // 0.1 .. 100 ms
    const s = h.summary();
    assert.equal(s.count, 1000);
    assert.equal(s.min, 0.1);
    assert.equal(s.max, 100);
    assert.ok(Math.abs(s.mean - 50.05) < 1e-9);
    for (const [got, want] of [
      [s.p50, 50],
      [s.p90, 90],
      [s.p99, 99],
    ] as const) {
      assert.ok(got >= want && got <= want * 1.01, `${got} ≈ ${want}`);
    }
    assert.deepEqual(new Histogram().summary(), {
      count: 0,
      min: 0,
      mean: 0,
      p50: 0,
      p90: 0,
      p99: 0,
      max: 0,
    });
  });

  it("taskset CPU lists", () => {
    assert.deepEqual(parseCpuList("0,1"), [0, 1]);
    assert.deepEqual(parseCpuList("0-2,5\n"), [0, 1, 2, 5]);
    assert.deepEqual(parseCpuList("3"), [3]);
  });

  it("the SVG escapes what it prints (a URL with & and <)", () => {
    const report: BenchReport = {
      tool: "duplex bench",
      version: "0",
      date: "2026-01-01T00:00:00.000Z",
      target: { url: "ws://h/?a=1&b=<2>", server: "external", pinning: null },
      options: { scenarios: ["echo"], connections: 1, durationS: 1, size: 1 },
      machine: {
        node: "v20",
        v8: "11",
        platform: "linux",
        arch: "x64",
        release: "6",
        cpuModel: `CPU "A&B" <fast>`,
        cores: 2,
        memoryBytes: 1,
      },
      interrupted: false,
      results: [],
    };
    const svg = renderSvg(report);
    assertWellFormedSvg(svg);
    assert.match(svg, /a=1&amp;b=&lt;2&gt;/);
    assert.match(svg, /no measurement/);
  });
});
