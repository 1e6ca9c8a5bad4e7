/**
 * A channel as one node sees it: the local subscribers, and how a publication from the broker
 * reaches each of them — serialised and framed once, then written to every subscriber, with the
 * per-subscriber stream position that rules out duplicates and detects gaps, the buffering that
 * makes the subscribe/recovery seam exact, and the namespace's slow-consumer policy.
 */

import type { SendResult } from "../server/index.js";
import type { BrokerPublication } from "./broker.js";
import type { Namespace } from "./namespaces.js";
import { encodePubPush } from "./wire.js";

/** What a channel needs from a connection (implemented by Session). */
export interface Subscriber {
  readonly id: string;
  /** Bytes waiting to be written to this connection. */
  bufferedAmount(): number;
  /** Write a publication: the frame is shared, `text` is for connections that compress. */
  writePub(frame: Uint8Array, text: string): SendResult;
  /** The subscriber's stream position broke (gap or new epoch): make it resubscribe. */
  lostPosition(channel: string): void;
  /** Disconnect for falling behind (policy "disconnect"). */
  tooSlow(): void;
  /** Call back once when the connection's queue drains (policy "latest"). */
  onDrainOnce(callback: () => void): void;
}

/** One subscriber's state in one channel. */
export class Membership {
  /** Last offset delivered (or covered by the subscribe reply). */
  offset = 0;
  epoch = "";
  /** While subscribing: live publications that arrived before the subscribe reply was sent. */
  buffer: Array<{ epoch: string; pub: BrokerPublication }> | null = [];
  /**
   * The broker asked for a resync while the subscribe reply was being computed: the position
   * in the reply may predate deliveries this node missed, so it is checked again once live.
   */
  resync = false;
  /** Policy "latest": newest frame per conflation key while the connection is slow. */
  conflated: Map<string, { frame: Uint8Array; text: string }> | null = null;

  constructor(readonly subscriber: Subscriber) {}
}

/** A publication encoded at most once, however many subscribers it has. */
class Encoded {
  private text_: string | undefined;
  private frame_: Uint8Array | undefined;
  constructor(
    private readonly channel: string,
    private readonly epoch: string,
    private readonly pub: BrokerPublication,
    private readonly frameOf: (text: string) => Uint8Array,
  ) {}
  get text(): string {
    this.text_ ??= encodePubPush(
      this.channel,
      this.epoch,
      this.pub.offset,
      this.pub.data,
      this.pub.from,
      this.pub.time,
    );
    return this.text_;
  }
  get frame(): Uint8Array {
    this.frame_ ??= this.frameOf(this.text);
    return this.frame_;
  }
}

export class ChannelState {
  readonly members = new Map<string, Membership>();
  /** Resolves when the broker delivers this channel to the node. */
  ready: Promise<void> | null = null;
  /** Subscribes in progress (keeps the state alive while members is empty). */
  pending = 0;

  constructor(
    readonly name: string,
    readonly ns: Namespace,
    private readonly frameOf: (text: string) => Uint8Array,
  ) {}

  get idle(): boolean {
    return this.members.size === 0 && this.pending === 0;
  }

  /** A publication from the broker: deliver it to every member. */
  deliver(epoch: string, pub: BrokerPublication): void {
    const encoded = new Encoded(this.name, epoch, pub, this.frameOf);
    for (const m of this.members.values()) {
      if (m.buffer !== null) {
        m.buffer.push({ epoch, pub });
        continue;
      }
      this.deliverTo(m, epoch, pub, encoded);
    }
  }

  /**
   * End the subscribe seam: the reply said `offset`/`epoch`; write the buffered publications
   * that come after it, then switch the member to live delivery.
   */
  goLive(m: Membership, offset: number, epoch: string): void {
    m.offset = offset;
    m.epoch = epoch;
    const buffered = m.buffer ?? [];
    m.buffer = null;
    for (const { epoch: e, pub } of buffered) {
      if (!this.members.has(m.subscriber.id)) return;
      this.deliverTo(m, e, pub, new Encoded(this.name, e, pub, this.frameOf));
    }
    if (m.resync && this.members.has(m.subscriber.id)) {
      this.members.delete(m.subscriber.id);
      m.subscriber.lostPosition(this.name);
    }
  }

  private deliverTo(m: Membership, epoch: string, pub: BrokerPublication, enc: Encoded): void {
    if (pub.offset > 0) {
      // A stream: exactly the next offset of the same epoch, or the position is lost.
      if (epoch === m.epoch && pub.offset <= m.offset) return; // already delivered (seam)
      // Epoch "" at offset 0: the stream did not exist yet, its first publication starts it.
      const starts = m.epoch === "" && m.offset === 0 && pub.offset === 1;
      if (!starts && (epoch !== m.epoch || pub.offset !== m.offset + 1)) {
        this.members.delete(m.subscriber.id);
        m.subscriber.lostPosition(this.name);
        return;
      }
      m.offset = pub.offset;
      m.epoch = epoch;
    }
    const sub = m.subscriber;
    if (m.conflated !== null) {
      m.conflated.set(pub.conflate ?? "", { frame: enc.frame, text: enc.text });
      return;
    }
    if (sub.bufferedAmount() > this.ns.maxQueueBytes) {
      switch (this.ns.slowConsumer) {
        case "disconnect":
          this.members.delete(sub.id);
          sub.tooSlow();
          return;
        case "drop":
          return; // the offset moved on: a client of a stream sees the gap and recovers
        case "latest":
          m.conflated = new Map([[pub.conflate ?? "", { frame: enc.frame, text: enc.text }]]);
          sub.onDrainOnce(() => this.flushConflated(m));
          return;
      }
    }
    sub.writePub(enc.frame, enc.text);
  }

  private flushConflated(m: Membership): void {
    const pending = m.conflated;
    m.conflated = null;
    if (pending === null || !this.members.has(m.subscriber.id)) return;
    for (const { frame, text } of pending.values()) m.subscriber.writePub(frame, text);
  }
}
