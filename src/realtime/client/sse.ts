/**
 * A Server-Sent Events parser (the `text/event-stream` format of the HTML standard) for
 * responses read with fetch() streaming — which browsers and Node 18+ both have, unlike
 * EventSource (absent from Node, and unable to POST a body). Bytes in, the `data` of each event
 * out; `event`, `id` and `retry` fields are not used by duplex.v1 and are ignored. No Node-only
 * imports (runs in browsers).
 */

export class SseParser {
  readonly #onData: (data: string) => void;
  readonly #decoder = new TextDecoder();
  #buffer = "";
  #data: string[] = [];
  #hasData = false;

  /** `onData`: the data of each complete event (its `data:` lines joined by "\n"). */
  constructor(onData: (data: string) => void) {
    this.#onData = onData;
  }

  /** Feed the next chunk of the response body. */
  push(chunk: Uint8Array): void {
    this.#buffer += this.#decoder.decode(chunk, { stream: true });
    this.#lines();
  }

  #lines(): void {
    let start = 0;
    const buffer = this.#buffer;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (c === 13 && i === buffer.length - 1) break;
      this.#line(buffer.slice(start, i));
      if (c === 13 && buffer.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    this.#buffer = buffer.slice(start);
  }

  #line(line: string): void {
    if (line === "") {
      if (!this.#hasData) return;
      const data = this.#data.join("\n");
      this.#data = [];
      this.#hasData = false;
      this.#onData(data);
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ":" a comment (keepalive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    if (field !== "data") return;
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    this.#data.push(value);
    this.#hasData = true;
  }
}
