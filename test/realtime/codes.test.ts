/**
 * The duplex.v1 codes (src/realtime/codes.ts) against their specification (docs/protocol.md): the
 * two code tables of the document list exactly the codes of ErrorCode and DisconnectCode, their
 * "temporary" and "reconnect" columns say what TEMPORARY_ERRORS and shouldReconnect say, and every
 * code has a default message.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import {
  DisconnectCode,
  ERROR_MESSAGES,
  ErrorCode,
  shouldReconnect,
  TEMPORARY_ERRORS,
} from "../../src/realtime/codes.js";

const root = resolve(import.meta.dirname, "../..");
const doc = readFileSync(resolve(root, "docs/protocol.md"), "utf8");

interface Row {
  readonly code: number;
  readonly name: string;
  readonly meaning: string;
  /** The last column, lower-cased: "yes" or "no". */
  readonly flag: string;
}

/** Split one Markdown table row into its trimmed cells (`\|` inside a cell is not a separator). */
function cells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, "").replace(/\|$/, "");
  return inner.split(/(?<!\\)\|/).map((c) => c.trim());
}

/**
 * The rows of the first Markdown table after the heading `heading` (a whole line, e.g.
 * "### Disconnect codes"). Checks the header names the columns as expected.
 */
function tableAfter(heading: string, lastColumn: string): Row[] {
  const lines = doc.split(/\r?\n/);
  const at = lines.findIndex((l) => l.trim() === heading);
  assert.notEqual(at, -1, `docs/protocol.md has no heading ${JSON.stringify(heading)}`);
  let i = at + 1;
  while (i < lines.length && !lines[i]!.trim().startsWith("|")) {
    assert.ok(!lines[i]!.startsWith("#"), `no table under ${heading}`);
    i++;
  }
  const table: string[] = [];
  while (i < lines.length && lines[i]!.trim().startsWith("|")) table.push(lines[i++]!);
  assert.ok(table.length >= 3, `the table under ${heading} has no rows`);
  const header = cells(table[0]!).map((c) => c.toLowerCase());
  assert.deepEqual(header, ["code", "name", "meaning", lastColumn], `header of ${heading}`);
  assert.match(table[1]!, /^\|\s*-{3,}/, `separator row of ${heading}`);
  return table.slice(2).map((line) => {
    const c = cells(line);
    assert.equal(c.length, 4, `row ${JSON.stringify(line)} has ${c.length} cells`);
    const [code, name, meaning, flag] = c as [string, string, string, string];
    assert.match(code, /^\d+$/, `first column of ${JSON.stringify(line)} is the numeric code`);
    assert.match(flag.toLowerCase(), /^(yes|no)$/, `last column of ${JSON.stringify(line)}`);
    return {
      code: Number(code),
      name: name.replace(/`/g, ""),
      meaning,
      flag: flag.toLowerCase(),
    };
  });
}

const byCode = (a: { code: number }, b: { code: number }): number => a.code - b.code;
const entriesOf = (o: Readonly<Record<string, number>>) =>
  Object.entries(o)
    .map(([name, code]) => ({ code, name }))
    .sort(byCode);

const errorRows = tableAfter("### Reply error codes", "temporary");
const disconnectRows = tableAfter("### Disconnect codes", "reconnect");
const otherCloseRows = tableAfter("### Other close codes a client sees", "reconnect");

describe("docs/protocol.md code tables", () => {
  it("the reply error table lists exactly ErrorCode: same numbers and names, none missing, none extra", () => {
    assert.deepEqual(
      errorRows.map(({ code, name }) => ({ code, name })).sort(byCode),
      entriesOf(ErrorCode),
    );
    assert.equal(new Set(errorRows.map((r) => r.code)).size, errorRows.length, "no duplicate row");
  });

  it("the disconnect table lists exactly DisconnectCode: same numbers and names, none missing, none extra", () => {
    assert.deepEqual(
      disconnectRows.map(({ code, name }) => ({ code, name })).sort(byCode),
      entriesOf(DisconnectCode),
    );
    assert.equal(new Set(disconnectRows.map((r) => r.code)).size, disconnectRows.length);
  });

  it("every row explains its code", () => {
    for (const r of [...errorRows, ...disconnectRows, ...otherCloseRows]) {
      assert.ok(r.meaning.length >= 10, `${r.code} ${r.name} has a meaning`);
    }
  });

  it('the "temporary" column agrees with TEMPORARY_ERRORS', () => {
    for (const r of errorRows) {
      assert.equal(r.flag === "yes", TEMPORARY_ERRORS.has(r.code), `${r.code} ${r.name}`);
    }
    assert.deepEqual(
      errorRows
        .filter((r) => r.flag === "yes")
        .map((r) => r.code)
        .sort(),
      [...TEMPORARY_ERRORS].sort(),
    );
  });

  it('the "reconnect" column agrees with shouldReconnect', () => {
    for (const r of disconnectRows) {
      assert.equal(r.flag === "yes", shouldReconnect(r.code), `${r.code} ${r.name}`);
    }
  });

  it("the table of WebSocket close codes agrees with shouldReconnect and stays out of 4000–4999", () => {
    assert.ok(otherCloseRows.length >= 4);
    for (const r of otherCloseRows) {
      assert.equal(r.flag === "yes", shouldReconnect(r.code), `${r.code} ${r.name}`);
      assert.ok(r.code >= 1000 && r.code < 4000, `${r.code} is not a duplex.v1 code`);
    }
  });
});

describe("codes.ts", () => {
  it("reply error codes are 100–199 and disconnect codes 4000–4999, all distinct", () => {
    const errors = Object.values(ErrorCode);
    const disconnects = Object.values(DisconnectCode);
    for (const c of errors) assert.ok(c >= 100 && c <= 199, `error code ${c}`);
    for (const c of disconnects) assert.ok(c >= 4000 && c <= 4999, `disconnect code ${c}`);
    assert.equal(new Set(errors).size, errors.length);
    assert.equal(new Set(disconnects).size, disconnects.length);
  });

  it("TEMPORARY_ERRORS holds only reply error codes", () => {
    const errors = new Set<number>(Object.values(ErrorCode));
    for (const c of TEMPORARY_ERRORS) assert.ok(errors.has(c), `${c} is an ErrorCode`);
    assert.deepEqual(
      [...TEMPORARY_ERRORS].sort(),
      [ErrorCode.INTERNAL, ErrorCode.TOO_MANY_REQUESTS, ErrorCode.UNAVAILABLE].sort(),
    );
  });

  it("every code has a non-empty entry in ERROR_MESSAGES, and ERROR_MESSAGES has no other", () => {
    const all = [...Object.values(ErrorCode), ...Object.values(DisconnectCode)];
    for (const c of all) {
      const m = ERROR_MESSAGES[c];
      assert.equal(typeof m, "string", `ERROR_MESSAGES[${c}]`);
      assert.ok(m!.length > 0, `ERROR_MESSAGES[${c}] is empty`);
    }
    assert.deepEqual(
      Object.keys(ERROR_MESSAGES)
        .map(Number)
        .sort((a, b) => a - b),
      [...all].sort((a, b) => a - b),
    );
  });

  it("default messages fit in a WebSocket close reason (123 bytes)", () => {
    for (const m of Object.values(ERROR_MESSAGES)) {
      assert.ok(Buffer.byteLength(m) <= 123, m);
    }
  });
});

describe("shouldReconnect", () => {
  it("says yes to the standard close codes and to 4000–4499", () => {
    for (const code of [1000, 1001, 1006, 1011, 4000, 4499]) {
      assert.equal(shouldReconnect(code), true, String(code));
    }
  });

  it("says no to 4500–4999, both ends included", () => {
    for (const code of [4500, 4999]) assert.equal(shouldReconnect(code), false, String(code));
  });

  it("only 4500–4999 mean no, over the whole range of close codes", () => {
    for (let code = 0; code <= 5100; code++) {
      assert.equal(shouldReconnect(code), !(code >= 4500 && code <= 4999), String(code));
    }
  });

  it("follows the disconnect code families", () => {
    for (const [name, code] of Object.entries(DisconnectCode)) {
      assert.equal(shouldReconnect(code), code < 4500, name);
    }
  });
});
