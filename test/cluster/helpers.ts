/**
 * Helpers for the cluster tests: SDK clients that remember which node they are on, and a checker
 * of the delivery guarantees (docs/guarantees.md) that runs as publications arrive, so a run
 * with a thousand subscribers keeps O(publications) memory, not O(subscribers × publications).
 */
import { RealtimeClient } from "../../src/realtime/client/node.js";
import type { Json } from "../../src/realtime/index.js";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `check` is true (no fixed sleeps); fails after `ms` with `what` and `detail()`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
  detail: () => string = () => "",
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await sleep(10);
  }
}

/** A client of the cluster with a nickname (`duplex serve` asks for one) and its node. */
export interface NodeClient {
  readonly client: RealtimeClient;
  readonly name: string;
  /** The node of the current (or last) connection, from the connect reply. */
  node: string | undefined;
  /** Connections made so far. */
  connects: number;
  /** Time of the last connect reply (ms, performance.now()). */
  connectedAt: number;
  /** Disconnect codes seen, in order. */
  readonly codes: number[];
}

export function nodeClient(
  url: string,
  name: string,
  options: { minReconnectDelayMs?: number; maxReconnectDelayMs?: number } = {},
): NodeClient {
  const client = new RealtimeClient(url, {
    data: { name },
    connectTimeoutMs: 5000,
    requestTimeoutMs: 30_000,
    onlineEvents: null,
    ...options,
  });
  const nc: NodeClient = { client, name, node: undefined, connects: 0, connectedAt: 0, codes: [] };
  client.on("connected", (r) => {
    nc.node = r.node;
    nc.connects++;
    nc.connectedAt = performance.now();
  });
  client.on("disconnected", (e) => nc.codes.push(e.code));
  // Errors (a refused subscribe, a failed publish) show up in the checks; keep them off stderr.
  client.on("error", () => undefined);
  return nc;
}

export interface Position {
  readonly offset: number;
  readonly epoch: string;
}

/** A range of one epoch received without a hole: offsets (from, to]. */
interface Segment {
  readonly epoch: string;
  readonly from: number;
  to: number;
}

/**
 * What the subscribers of a run saw, checked as it arrives:
 * - order, no gap, no duplicate: each publication is the next offset of its epoch, except right
 *   after a subscribe reply that said `recovered: false` (the subscriber was told);
 * - content: every subscriber sees the same data at the same (epoch, offset).
 * Afterwards `coverage()` says, for each acknowledged publish, which subscribers received it, and
 * which were told they missed it.
 */
export class DeliveryChecker {
  readonly errors: string[] = [];
  /** (channel, epoch, offset) → data, as first delivered. */
  readonly content = new Map<string, string>();
  delivered = 0;
  subscribes = 0;
  unrecovered = 0;
  readonly #streams = new Map<string, { pos: Position | undefined; segments: Segment[] }>();

  #error(message: string): void {
    if (this.errors.length < 20) this.errors.push(message);
  }

  /** Follow `channel` of `nc` (call before subscribe()). */
  watch(nc: NodeClient, channel: string): void {
    const key = `${nc.name}/${channel}`;
    const stream: { pos: Position | undefined; segments: Segment[] } = {
      pos: undefined,
      segments: [],
    };
    this.#streams.set(key, stream);
    const sub = nc.client.channel(channel);
    sub.on("subscribed", (e) => {
      this.subscribes++;
      if (stream.pos !== undefined && e.recovered !== false) return; // recovered: continues
      if (e.recovered === false) this.unrecovered++;
      stream.pos = { offset: e.offset, epoch: e.epoch };
      stream.segments.push({ epoch: e.epoch, from: e.offset, to: e.offset });
    });
    sub.on("publication", (p) => {
      const pos = stream.pos;
      const segment = stream.segments.at(-1);
      if (pos === undefined || segment === undefined) {
        this.#error(`${key}: publication ${p.offset} before subscribed`);
        return;
      }
      const starts = pos.epoch === "" && pos.offset === 0 && p.offset === 1;
      if (!(starts || (p.epoch === pos.epoch && p.offset === pos.offset + 1))) {
        this.#error(
          `${key}: ${p.offset}@${p.epoch} after ${pos.offset}@${pos.epoch} (gap, duplicate or reorder)`,
        );
      }
      if (starts) {
        stream.segments.pop();
        stream.segments.push({ epoch: p.epoch, from: 0, to: 1 });
      } else {
        segment.to = p.offset;
      }
      stream.pos = { offset: p.offset, epoch: p.epoch };
      const id = `${channel}|${p.epoch}|${p.offset}`;
      const data = JSON.stringify(p.data);
      const first = this.content.get(id);
      if (first === undefined) this.content.set(id, data);
      else if (first !== data) this.#error(`${key}: ${id} is ${data}, others saw ${first}`);
      this.delivered++;
    });
  }

  /** Where `nc` is on `channel`. */
  position(nc: NodeClient, channel: string): Position | undefined {
    return this.#streams.get(`${nc.name}/${channel}`)?.pos;
  }

  /**
   * For an acknowledged publication: how many watched streams of `channel` received it, missed it
   * after being told (`recovered: false` since they started), or missed it silently — the last
   * must be zero. Streams that started after it are not counted.
   */
  coverage(channel: string, ack: Position): { received: number; told: number; silent: number } {
    let received = 0;
    let told = 0;
    let silent = 0;
    for (const [key, stream] of this.#streams) {
      if (!key.endsWith(`/${channel}`)) continue;
      const first = stream.segments[0];
      if (first === undefined) continue;
      if (first.epoch === ack.epoch && ack.offset <= first.from) continue; // before it subscribed
      if (
        stream.segments.some(
          (s) => s.epoch === ack.epoch && ack.offset > s.from && ack.offset <= s.to,
        )
      ) {
        received++;
      } else if (stream.segments.length > 1) {
        told++;
      } else {
        silent++;
      }
    }
    return { received, told, silent };
  }
}

/** Data published by the publishers of a run. */
export interface Sent {
  readonly p: number;
  readonly seq: number;
}

export interface Ack extends Position {
  readonly channel: string;
  readonly data: Json;
  readonly duplicate: boolean;
}
