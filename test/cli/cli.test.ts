import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { COMMANDS, USAGE, VERSION } from "../../src/cli/cli.js";
import { runCli } from "./helpers.js";

describe("duplex CLI", () => {
  it("prints help for no command, help, -h and --help", async () => {
    for (const argv of [[], ["help"], ["-h"], ["--help"]]) {
      const r = await runCli(argv);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, USAGE);
    }
  });

  it("the help lists every command, and every command has its own --help", async () => {
    for (const c of COMMANDS) {
      assert.match(USAGE, new RegExp(`\\n  ${c.name} +\\S`), c.name);
      const r = await runCli([c.name, "--help"]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, c.usage);
      assert.match(r.stdout, new RegExp(`^Usage: duplex ${c.name}`));
    }
  });

  it("--version prints the version", async () => {
    assert.equal((await runCli(["--version"])).stdout, VERSION);
  });

  it("an unknown command is one line on stderr with exit code 2", async () => {
    const r = await runCli(["bogus"]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.split("\n").length, 1);
    assert.match(r.stderr, /unknown command 'bogus'/);
  });
});
