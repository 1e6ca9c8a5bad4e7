import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import WebSocket from "ws";
import { runCli } from "./helpers.js";

const MAIN = resolve(import.meta.dirname, "../../src/cli/main.ts");

function startEchoProcess(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, "echo", "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolvePromise, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (ws:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) resolvePromise({ child, url: m[1] });
    });
    child.on("exit", (code) => reject(new Error(`echo exited with ${code}: ${out}`)));
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => {
    child.removeAllListeners("exit");
    child.on("exit", (code) => r(code));
    child.kill("SIGTERM");
  });
}

describe("duplex echo", () => {
  it("echoes text as text and binary as binary, with deflate and a subprotocol", async () => {
    const { child, url } = await startEchoProcess([
      "--deflate",
      "--subprotocols",
      "chat,echo",
      "--path",
      "/e",
    ]);
    try {
      const ws = new WebSocket(`${url.replace(/\/e$/, "")}/e`, ["echo"], {
        perMessageDeflate: true,
      });
      await new Promise((r, j) => {
        ws.once("open", r);
        ws.once("error", j);
      });
      assert.equal(ws.protocol, "echo");
      assert.match(ws.extensions, /permessage-deflate/);
      const replies: [string, boolean][] = [];
      const done = new Promise<void>((r) =>
        ws.on("message", (d: Buffer, isBinary: boolean) => {
          replies.push([isBinary ? d.toString("hex") : d.toString(), isBinary]);
          if (replies.length === 2) r();
        }),
      );
      ws.send("héllo");
      ws.send(Buffer.from([1, 2, 255]));
      await done;
      assert.deepEqual(replies, [
        ["héllo", false],
        ["0102ff", true],
      ]);
      ws.close();
    } finally {
      assert.equal(await stop(child), 0, "SIGTERM shuts down gracefully with exit code 0");
    }
  });

  it("refuses messages over --max-message with 1009", async () => {
    const { child, url } = await startEchoProcess(["--max-message", "10"]);
    try {
      const ws = new WebSocket(url);
      await new Promise((r) => ws.once("open", r));
      const code = new Promise<number>((r) => ws.on("close", (c) => r(c)));
      ws.send("this is longer than ten bytes");
      assert.equal(await code, 1009);
    } finally {
      await stop(child);
    }
  });

  it("bad flags give one line on stderr and exit code 2", async () => {
    for (const args of [["--port", "x"], ["--port", "70000"], ["--nope"], ["--max-message", "0"]]) {
      const r = await runCli(["echo", ...args]);
      assert.equal(r.code, 2, args.join(" "));
      assert.equal(r.stderr.split("\n").length, 1);
      assert.match(r.stderr, /^duplex echo: /);
    }
  });

  it("--help describes every flag", async () => {
    const r = await runCli(["echo", "--help"]);
    assert.equal(r.code, 0);
    for (const flag of [
      "--port",
      "--host",
      "--path",
      "--deflate",
      "--subprotocols",
      "--max-message",
    ]) {
      assert.ok(r.stdout.includes(flag), flag);
    }
  });
});
