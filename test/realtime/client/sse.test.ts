/** The SSE parser of the HTTP transport: events, comments, line endings and chunk boundaries. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SseParser } from "../../../src/realtime/client/sse.js";

function parse(chunks: string[]): string[] {
  const out: string[] = [];
  const parser = new SseParser((data) => out.push(data));
  const encoder = new TextEncoder();
  for (const c of chunks) parser.push(encoder.encode(c));
  return out;
}

describe("SseParser", () => {
  it("one data event per blank line; comments and other fields ignored", () => {
    assert.deepEqual(
      parse([': duplex.v1\n\ndata: {"a":1}\n\n:\n\nevent: x\nid: 7\nretry: 10\ndata: 2\n\n']),
      ['{"a":1}', "2"],
    );
  });

  it("several data lines are joined by a newline; one optional space after the colon", () => {
    assert.deepEqual(parse(["data:a\ndata:  b\ndata\n\n"]), ["a\n b\n"]);
  });

  it("CRLF, CR and LF line endings, even split between chunks", () => {
    assert.deepEqual(parse(["data: 1\r\n\r\ndata: 2\r\rdata: 3\r", "\n\r", "\n"]), ["1", "2", "3"]);
  });

  it("events and UTF-8 characters split anywhere between chunks", () => {
    const text = 'data: {"t":"héllo ✓"}\n\ndata: 2\n\n';
    const bytes = new TextEncoder().encode(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const out: string[] = [];
      const parser = new SseParser((d) => out.push(d));
      parser.push(bytes.subarray(0, cut));
      parser.push(bytes.subarray(cut));
      assert.deepEqual(out, ['{"t":"héllo ✓"}', "2"], `cut at ${cut}`);
    }
  });

  it("an event without data, or not ended by a blank line, is not delivered", () => {
    assert.deepEqual(parse(["event: x\n\ndata: half"]), []);
  });
});
