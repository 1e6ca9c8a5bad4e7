/**
 * A raw client of the HTTP transports (docs/protocol.md section 18) for server tests: it sends
 * exactly the bodies the tests give and shows every frame that comes back — from /send and
 * /poll (NDJSON), or from an SSE stream as it arrives (with the keepalive comments counted).
 */
import { randomBytes } from "node:crypto";
import type { Msg } from "./helpers.js";

export interface HttpReply {
  readonly status: number;
  readonly headers: Headers;
  readonly frames: Msg[];
  readonly text: string;
}

/** Parse an NDJSON body into frames. */
export function ndjson(text: string): Msg[] {
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Msg);
}

export async function postRaw(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  method = "POST",
): Promise<HttpReply> {
  const res = await fetch(url, {
    method,
    headers: { "content-type": "text/plain;charset=UTF-8", ...headers },
    ...(method === "POST" ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  const json = (res.headers.get("content-type") ?? "").startsWith("application/x-ndjson");
  return { status: res.status, headers: res.headers, frames: json ? ndjson(text) : [], text };
}

/** One HTTP client connection: its session secret and its connect command. */
export class HttpPeer {
  readonly session = randomBytes(16).toString("hex");
  connect: Msg;

  /** `base`: the transport path, e.g. http://127.0.0.1:1234/realtime (or a list, used in turn). */
  constructor(
    readonly base: string,
    connect: Msg = {},
  ) {
    this.connect = { id: 1, type: "connect", ...connect };
  }

  /** POST commands to {base}/send; `channels`: the subscriptions the client holds. */
  async send(commands: Msg[], channels: string[] = [], base = this.base): Promise<Msg[]> {
    const r = await postRaw(`${base}/send`, {
      session: this.session,
      connect: this.connect,
      commands,
      channels,
    });
    if (r.status !== 200) throw new Error(`send: HTTP ${r.status} ${r.text}`);
    return r.frames;
  }

  /** One long-poll with these subscribes; resolves when the server answers it. */
  async poll(subscribe: Msg[], options: { resume?: boolean; base?: string } = {}): Promise<Msg[]> {
    const r = await postRaw(`${options.base ?? this.base}/poll`, this.openBody(subscribe, options));
    if (r.status !== 200) throw new Error(`poll: HTTP ${r.status} ${r.text}`);
    return r.frames;
  }

  /** Open an SSE stream with these subscribes. */
  sse(subscribe: Msg[], options: { resume?: boolean; base?: string } = {}): SseStream {
    return new SseStream(`${options.base ?? this.base}/sse`, this.openBody(subscribe, options));
  }

  openBody(subscribe: Msg[], options: { resume?: boolean }): Msg {
    return {
      session: this.session,
      connect: this.connect,
      subscribe,
      ...(options.resume === true ? { resume: true } : {}),
    };
  }
}

/** An SSE response read as it arrives. */
export class SseStream {
  readonly frames: Msg[] = [];
  comments = 0;
  status = 0;
  contentType = "";
  /** Resolves when the response ends (by the server) or fails. */
  readonly done: Promise<void>;
  readonly #abort = new AbortController();
  #wake: () => void = () => {};

  constructor(url: string, body: Msg) {
    this.done = this.#run(url, body);
  }

  async #run(url: string, body: Msg): Promise<void> {
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "text/plain;charset=UTF-8" },
        body: JSON.stringify(body),
        signal: this.#abort.signal,
      });
      this.status = res.status;
      this.contentType = res.headers.get("content-type") ?? "";
      if (res.body === null) return;
      const decoder = new TextDecoder();
      let buffer = "";
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of event.split("\n")) {
            if (line.startsWith(":")) this.comments++;
            else if (line.startsWith("data: ")) this.frames.push(JSON.parse(line.slice(6)) as Msg);
          }
          end = buffer.indexOf("\n\n");
        }
        this.#wake();
      }
    } catch {
      // aborted, or the connection was cut
    } finally {
      this.#wake();
    }
  }

  /** Wait until `n` frames matching `pred` arrived (or the stream ended); returns them. */
  async until(n: number, pred: (m: Msg) => boolean = () => true, ms = 5000): Promise<Msg[]> {
    const end = Date.now() + ms;
    let ended = false;
    void this.done.then(() => {
      ended = true;
    });
    for (;;) {
      const got = this.frames.filter(pred);
      if (got.length >= n) return got;
      if (ended) throw new Error(`stream ended with ${got.length} of ${n} frames`);
      if (Date.now() > end) throw new Error(`timed out with ${got.length} of ${n} frames`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  pubs(channel: string): Msg[] {
    return this.frames.filter((m) => m.type === "pub" && m.channel === channel);
  }

  close(): void {
    this.#abort.abort();
  }
}
