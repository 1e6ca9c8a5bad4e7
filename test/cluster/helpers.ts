/**
 * Helpers for the cluster tests: a suite's cluster, SDK clients that remember which node they are
 * on, and a checker of the delivery guarantees (docs/guarantees.md) that runs as publications
 * arrive, so a run with a thousand subscribers keeps O(publications) memory, not
 * O(subscribers × publications).
 */
import { after, before } from "node:test";
import { RealtimeClient } from "../../src/realtime/client/node.js";
import type { Json } from "../../src/realtime/index.js";
import { type Cluster, type ClusterOptions, startCluster } from "../support/cluster.js";

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
  /** Time of the last disconnect (ms, performance.now()). */
  disconnectedAt: number;
  /** Time the last connection attempt started (ms, performance.now()). */
  attemptAt: number;
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
  const nc: NodeClient = {
    client,
    name,
    node: undefined,
    connects: 0,
    connectedAt: 0,
    disconnectedAt: 0,
    attemptAt: 0,
    codes: [],
  };
  client.on("state", (e) => {
    if (e.state === "connecting") nc.attemptAt = performance.now();
  });
  client.on("connected", (r) => {
    nc.node = r.node;
    nc.connects++;
    nc.connectedAt = performance.now();
  });
  client.on("disconnected", (e) => {
    nc.codes.push(e.code);
    nc.disconnectedAt = performance.now();
  });
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
   * and were told so, or missed it silently — the last must be zero. Told means a subscribe reply
   * said `recovered: false` at the seam where it falls: the new segment starts at or after it in
   * its epoch, or the old segment ended before it in its epoch and the new one is in another.
   * Streams that subscribed after it are not counted.
   */
  coverage(channel: string, ack: Position): { received: number; told: number; silent: number } {
    let received = 0;
    let told = 0;
    let silent = 0;
    for (const [key, stream] of this.#streams) {
      if (!key.endsWith(`/${channel}`)) continue;
      const segments = stream.segments;
      const first = segments[0];
      if (first === undefined) continue;
      if (first.epoch === ack.epoch && ack.offset <= first.from) continue; // before it subscribed
      if (
        segments.some((s) => s.epoch === ack.epoch && ack.offset > s.from && ack.offset <= s.to)
      ) {
        received++;
        continue;
      }
      let wasTold = false;
      for (let i = 1; i < segments.length && !wasTold; i++) {
        const prev = segments[i - 1]!;
        const next = segments[i]!;
        wasTold =
          (next.epoch === ack.epoch && ack.offset <= next.from) ||
          (prev.epoch === ack.epoch && ack.offset > prev.to && next.epoch !== ack.epoch);
      }
      if (wasTold) told++;
      else silent++;
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

export interface WorkloadOptions {
  /** Where clients connect (nginx). */
  readonly url: string;
  /** Subscriber clients. */
  readonly clients: number;
  /** Channels (a namespace where anyone may publish and read history, e.g. `rooms:`). */
  readonly channels: readonly string[];
  /** Channels each subscriber follows (consecutive ones, starting at its index). @default 1 */
  readonly channelsPerClient?: number;
  /** Publisher clients; each publishes round-robin over the channels, one ack at a time. */
  readonly publishers: number;
  /** Pause after each acknowledged publish, per publisher (bounds the load). */
  readonly publishPauseMs: number;
  /** Clients connected at a time at the start. @default 100 */
  readonly connectBatch?: number;
  readonly minReconnectDelayMs?: number;
  readonly maxReconnectDelayMs?: number;
}

export interface WorkloadReport {
  readonly acks: number;
  readonly duplicateAcks: number;
  readonly deliveries: number;
  readonly subscribes: number;
  readonly unrecovered: number;
  /** (ack, subscriber) pairs where the subscriber received the publication. */
  readonly received: number;
  /** (ack, subscriber) pairs missed after a `recovered: false`. */
  readonly told: number;
  /** (ack, subscriber) pairs missed without being told: must be 0. */
  readonly silent: number;
  /** Acks found neither in history nor in any delivery: must be 0. */
  readonly falseAcks: number;
  /** The same publish (publisher, seq) stored under two offsets of one epoch: must be 0. */
  readonly doubled: number;
}

/**
 * Subscribers and publishers (the Node SDK) through the load balancer, with every delivery
 * checked by a DeliveryChecker and every acknowledgement recorded.
 */
export class Workload {
  readonly subscribers: NodeClient[] = [];
  readonly publishers: NodeClient[] = [];
  readonly checker = new DeliveryChecker();
  readonly acks: Ack[] = [];
  readonly publishErrors: string[] = [];
  #running = false;
  #loops: Promise<void>[] = [];
  readonly #subscriptions = new Map<NodeClient, string[]>();

  constructor(readonly options: WorkloadOptions) {}

  #clientOptions(): { minReconnectDelayMs?: number; maxReconnectDelayMs?: number } {
    const o = this.options;
    return {
      ...(o.minReconnectDelayMs === undefined
        ? {}
        : { minReconnectDelayMs: o.minReconnectDelayMs }),
      ...(o.maxReconnectDelayMs === undefined
        ? {}
        : { maxReconnectDelayMs: o.maxReconnectDelayMs }),
    };
  }

  /** Connect and subscribe every subscriber (in batches), and connect the publishers. */
  async connect(): Promise<void> {
    const o = this.options;
    const per = o.channelsPerClient ?? 1;
    const batch = o.connectBatch ?? 100;
    for (let start = 0; start < o.clients; start += batch) {
      const group: NodeClient[] = [];
      for (let i = start; i < Math.min(o.clients, start + batch); i++) {
        const nc = nodeClient(o.url, `s${i}`, this.#clientOptions());
        const channels = Array.from(
          { length: per },
          (_, k) => o.channels[(i + k) % o.channels.length]!,
        );
        this.#subscriptions.set(nc, channels);
        for (const ch of channels) {
          this.checker.watch(nc, ch);
          nc.client.channel(ch).subscribe();
        }
        nc.client.connect();
        group.push(nc);
        this.subscribers.push(nc);
      }
      await until(() => group.every((nc) => this.subscribed(nc)), 30_000, "subscribers subscribed");
    }
    for (let p = 0; p < o.publishers; p++) {
      const nc = nodeClient(o.url, `p${p}`, this.#clientOptions());
      nc.client.connect();
      this.publishers.push(nc);
    }
    await until(
      () => this.publishers.every((p) => p.client.state === "connected"),
      30_000,
      "publishers",
    );
  }

  /** Connected, with every subscription subscribed. */
  subscribed(nc: NodeClient): boolean {
    return (
      nc.client.state === "connected" &&
      (this.#subscriptions.get(nc) ?? []).every(
        (ch) => nc.client.channel(ch).state === "subscribed",
      )
    );
  }

  channelsOf(nc: NodeClient): readonly string[] {
    return this.#subscriptions.get(nc) ?? [];
  }

  /** How many subscribers follow `channel`. */
  subscribersOf(channel: string): number {
    return [...this.#subscriptions.values()].filter((chs) => chs.includes(channel)).length;
  }

  startPublishing(): void {
    const o = this.options;
    this.#running = true;
    this.#loops = this.publishers.map(async (nc, p) => {
      for (let seq = 0; this.#running; seq++) {
        const channel = o.channels[(seq + p) % o.channels.length]!;
        const data = { p, seq };
        try {
          const r = await nc.client.publish(channel, data);
          this.acks.push({
            channel,
            offset: r.offset,
            epoch: r.epoch,
            data,
            duplicate: r.duplicate === true,
          });
        } catch (e) {
          if (this.publishErrors.length < 20) this.publishErrors.push(String(e));
        }
        await sleep(o.publishPauseMs);
      }
    });
  }

  async stopPublishing(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  /** The top of each channel's stream, asked through a publisher. */
  async tops(): Promise<Map<string, Position>> {
    const asker = this.publishers[0]!.client;
    const tops = new Map<string, Position>();
    for (const ch of this.options.channels) {
      const page = await asker.channel(ch).history({ limit: 0 });
      tops.set(ch, { offset: page.offset, epoch: page.epoch });
    }
    return tops;
  }

  /** Wait until every subscriber is at the top of each of its channels. */
  async converge(ms: number): Promise<Map<string, Position>> {
    const tops = await this.tops();
    const behind = (): NodeClient[] =>
      this.subscribers.filter((nc) =>
        this.channelsOf(nc).some((ch) => {
          const pos = this.checker.position(nc, ch);
          const top = tops.get(ch)!;
          return pos === undefined || pos.offset !== top.offset || pos.epoch !== top.epoch;
        }),
      );
    await until(
      () => behind().length === 0,
      ms,
      "every subscriber at the top of its channels",
      () => {
        const late = behind();
        const first = late[0];
        return `${late.length} behind; e.g. ${first?.name} (${first?.client.state}) at ${JSON.stringify(
          first === undefined
            ? null
            : this.channelsOf(first).map((ch) => this.checker.position(first, ch)),
        )}; tops ${JSON.stringify([...tops])}`;
      },
    );
    return tops;
  }

  /** Every publication of a channel's current history: offset → data (JSON). */
  async history(channel: string): Promise<{ epoch: string; data: Map<number, string> }> {
    const asker = this.publishers[0]!.client.channel(channel);
    const data = new Map<number, string>();
    let since = 0;
    let epoch = "";
    for (;;) {
      const page = await asker.history({ since: { offset: since, epoch: "" }, limit: 1000 });
      epoch = page.epoch;
      for (const p of page.publications) data.set(p.offset, JSON.stringify(p.data));
      const last = page.publications.at(-1);
      if (last === undefined || last.offset >= page.offset) break;
      since = last.offset;
    }
    return { epoch, data };
  }

  /** Check every acknowledgement against history and deliveries. */
  async verify(): Promise<WorkloadReport> {
    const histories = new Map<string, { epoch: string; data: Map<number, string> }>();
    for (const ch of this.options.channels) histories.set(ch, await this.history(ch));
    let received = 0;
    let told = 0;
    let silent = 0;
    let falseAcks = 0;
    let doubled = 0;
    for (const h of histories.values()) doubled += h.data.size - new Set(h.data.values()).size;
    for (const a of this.acks) {
      const data = JSON.stringify(a.data);
      const h = histories.get(a.channel)!;
      const inHistory = h.epoch === a.epoch && h.data.get(a.offset) === data;
      const delivered = this.checker.content.get(`${a.channel}|${a.epoch}|${a.offset}`) === data;
      if (!inHistory && !delivered) falseAcks++;
      const c = this.checker.coverage(a.channel, a);
      received += c.received;
      told += c.told;
      silent += c.silent;
    }
    return {
      acks: this.acks.length,
      duplicateAcks: this.acks.filter((a) => a.duplicate).length,
      deliveries: this.checker.delivered,
      subscribes: this.checker.subscribes,
      unrecovered: this.checker.unrecovered,
      received,
      told,
      silent,
      falseAcks,
      doubled,
    };
  }

  close(): void {
    for (const nc of [...this.subscribers, ...this.publishers]) nc.client.close();
  }
}

/** A suite's cluster, and the workload its test runs on it. */
export interface ClusterSuite {
  /** The cluster (from the suite's `before` hook on). */
  readonly cluster: Cluster;
  /** The workload made by `workload()`. */
  readonly work: Workload;
  /** A Workload through nginx (the cluster's realtimeUrl); the suite's `after` hook closes it. */
  workload(options: Omit<WorkloadOptions, "url">): Workload;
}

/**
 * Start a cluster with `options` in a `before` hook; in an `after` hook close the workload (if
 * one was made), then whatever `cleanup` closes, then the cluster.
 */
export function clusterSuite(
  options: ClusterOptions,
  cleanup: () => void = () => undefined,
): ClusterSuite {
  let cluster: Cluster | undefined;
  let work: Workload | undefined;
  before(async () => {
    cluster = await startCluster(options);
  });
  after(async () => {
    work?.close();
    cleanup();
    await cluster?.close();
  });
  return {
    get cluster() {
      if (cluster === undefined) throw new Error("the cluster has not started");
      return cluster;
    },
    get work() {
      if (work === undefined) throw new Error("no workload yet");
      return work;
    },
    workload(o) {
      work = new Workload({ url: this.cluster.realtimeUrl, ...o });
      return work;
    },
  };
}
