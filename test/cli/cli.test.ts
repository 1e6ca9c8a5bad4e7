import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runCli, USAGE } from "../../src/cli/cli.js";

describe("duplex CLI", () => {
  it("prints help for no command, help, -h and --help", () => {
    for (const argv of [[], ["help"], ["-h"], ["--help"]]) {
      const r = runCli(argv);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, USAGE);
    }
  });

  it("serve says clearly that it is not available yet and does not fail", () => {
    const r = runCli(["serve"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /not yet available/);
  });

  it("an unknown command is one line on stderr with exit code 2", () => {
    const r = runCli(["bogus"]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.split("\n").length, 1);
    assert.match(r.stderr, /unknown command 'bogus'/);
  });
});
