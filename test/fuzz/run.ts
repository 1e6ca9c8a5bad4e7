/**
 * Fuzz target for the sans-I/O Connection: `npm run fuzz -- --seconds 60 [--seed N]`.
 *
 * Until time is up, generates cases (random bytes, valid frame streams with and without random
 * mutations, compressed messages, both roles, random small limits, with and without an
 * RSV1-allowing codec, random chunkings) and checks each with harness.ts's checkCase: the
 * invariants of a total function, segmentation invariance and agreement with the reference decoder.
 * A failing case is shrunk a little, then saved as JSON into test/fixtures/corpus/<hash>.json
 * (corpus.test.ts replays it on every `npm test`). Exits 1 when anything failed.
 *
 * Flags: --seconds S (default 10), --seed N (default: from the clock; printed so a run can be
 * repeated), --max-failures N (stop early, default 20), --corpus DIR.
 */
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import * as zlib from "node:zlib";
import { encodeFrame } from "../../src/protocol/frame.js";
import {
  type CaseLimits,
  type CorpusEntry,
  caseToEntry,
  checkCase,
  concatBytes,
  type FeedCase,
  type InflateSpec,
  prng,
  type Role,
} from "./harness.js";

/** Random choices over a seeded PRNG. */
export class Gen {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.next() / 0x1_0000_0000) * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
  /** A length biased towards small values and the length-encoding boundaries. */
  size(max: number): number {
    const r = this.int(10);
    if (r < 5) return this.int(Math.min(max, 16) + 1);
    if (r < 8) return this.int(Math.min(max, 300) + 1);
    if (r < 9) return Math.min(max, this.pick([0, 1, 125, 126, 127, 65535, 65536]));
    return this.int(max + 1);
  }
}

// ---- generating valid streams -----------------------------------------------------------------

const CODE_POINT_RANGES: readonly [number, number][] = [
  [0x20, 0x7e],
  [0x00, 0x7f],
  [0x80, 0x7ff],
  [0x800, 0xd7ff],
  [0xe000, 0xfffd],
  [0x10000, 0x10ffff],
];

function text(g: Gen, maxBytes: number): Uint8Array {
  const points: number[] = [];
  let bytes = 0;
  const target = g.size(maxBytes);
  while (bytes < target) {
    const [lo, hi] = g.pick(CODE_POINT_RANGES);
    const cp = g.range(lo, hi);
    points.push(cp);
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return new TextEncoder().encode(String.fromCodePoint(...points));
}

/** Byte sequences that are never valid UTF-8 at a code point boundary. */
const INVALID_UTF8: readonly number[][] = [
  [0x80],
  [0xbf],
  [0xc0, 0xaf],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0x80],
  [0xed, 0xa0, 0x80],
  [0xf0, 0x80, 0x80, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5],
  [0xff],
  [0xc3],
  [0xe2, 0x82],
];

function splitAt(data: Uint8Array, g: Gen, maxPieces: number): Uint8Array[] {
  const n = g.chance(0.5) ? 1 : g.range(1, maxPieces);
  const cuts = Array.from({ length: n - 1 }, () => g.int(data.length + 1)).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const cut of cuts) {
    out.push(data.subarray(at, cut));
    at = cut;
  }
  out.push(data.subarray(at));
  return out;
}

function compress(data: Uint8Array, spec: InflateSpec): Uint8Array {
  const out = zlib.deflateRawSync(data, {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
    windowBits: Math.max(9, spec.windowBits),
    level: 1,
  });
  return out.length >= 4 ? out.subarray(0, out.length - 4) : out;
}

/** Frames of a valid (or nearly valid, when `sloppy`) stream for the receiver of `c`. */
function validStream(g: Gen, role: Role, codec: InflateSpec | null, sloppy: boolean): Uint8Array {
  const masked = role === "server";
  const frames: Uint8Array[] = [];
  const frame = (opcode: number, payload: Uint8Array, fin = true, rsv1 = false): void => {
    frames.push(encodeFrame({ opcode, payload, fin, rsv1, mask: masked ? g.bytes(4) : undefined }));
  };
  const control = (): void => {
    const r = g.int(3);
    if (r < 2) frame(r === 0 ? 0x9 : 0xa, g.bytes(g.size(125)));
  };
  const items = g.range(0, 6);
  for (let i = 0; i < items; i++) {
    if (g.chance(0.25)) {
      control();
      continue;
    }
    const binary = g.chance(0.4);
    let data = binary
      ? g.bytes(g.chance(0.01) ? g.range(65536, 70000) : g.size(2000))
      : text(g, g.chance(0.02) ? 70000 : 600);
    if (!binary && sloppy && g.chance(0.3)) {
      const at = g.int(data.length + 1);
      data = concatBytes([
        data.subarray(0, at),
        new Uint8Array(g.pick(INVALID_UTF8)),
        data.subarray(at),
      ]);
    }
    if (codec !== null && g.chance(0.1)) data = new Uint8Array(g.range(1000, 200000)); // a bomb
    const deflate = codec !== null && g.chance(0.7);
    const pieces = splitAt(deflate ? compress(data, codec) : data, g, g.chance(0.1) ? 20 : 5);
    pieces.forEach((piece, k) => {
      if (k > 0 && g.chance(0.2)) control();
      frame(
        k === 0 ? (binary ? 0x2 : 0x1) : 0x0,
        piece,
        k === pieces.length - 1,
        deflate && k === 0,
      );
    });
  }
  if (g.chance(0.2)) {
    const r = g.int(4);
    if (r === 0) frame(0x8, new Uint8Array(0));
    else {
      const code = g.pick([1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999, 999, 1004, 1005, 5000]);
      const reason = text(g, 40);
      frame(0x8, concatBytes([new Uint8Array([code >> 8, code & 0xff]), reason.subarray(0, 123)]));
    }
  }
  return concatBytes(frames);
}

/** Random edits of a byte stream: bit flips, overwrites, insertions, deletions, truncation. */
function mutate(g: Gen, input: Uint8Array): Uint8Array {
  let b: Uint8Array = input.slice();
  const edits = g.range(1, 4);
  for (let i = 0; i < edits; i++) {
    const at = g.int(b.length + 1);
    switch (g.int(7)) {
      case 0:
        if (at < b.length) b[at]! ^= 1 << g.int(8);
        break;
      case 1:
        if (at < b.length) b[at] = g.pick([0x00, 0x7e, 0x7f, 0x80, 0xff, g.int(256)]);
        break;
      case 2:
        b = concatBytes([b.subarray(0, at), g.bytes(g.range(1, 8)), b.subarray(at)]);
        break;
      case 3:
        b = concatBytes([b.subarray(0, at), b.subarray(Math.min(b.length, at + g.range(1, 8)))]);
        break;
      case 4:
        b = b.slice(0, at);
        break;
      case 5: {
        // Header-ish bytes: an opcode/flags byte or a length byte.
        if (at < b.length)
          b[at] = g.pick([0x80, 0x81, 0x82, 0x88, 0x89, 0x8a, 0x00, 0x01, 0xc1, 0xfe, 0xff]);
        break;
      }
      default: {
        const from = g.int(b.length + 1);
        const piece = b.slice(from, from + g.range(1, 32));
        b = concatBytes([b.subarray(0, at), piece, b.subarray(at)]);
      }
    }
  }
  return b;
}

function randomBytes(g: Gen, role: Role): Uint8Array {
  const b = g.bytes(g.chance(0.9) ? g.range(0, 64) : g.range(0, 1024));
  // Often make the first header plausible so that deeper rules are reached.
  if (b.length >= 2 && g.chance(0.6)) {
    b[0] = (b[0]! & 0xcf) | (g.chance(0.7) ? 0x80 : 0);
    b[0] = (b[0]! & 0xf0) | g.pick([0, 1, 2, 8, 9, 10, 3, 11]);
    b[1] = role === "server" ? b[1]! | 0x80 : b[1]! & 0x7f;
  }
  return b;
}

function chunking(g: Gen, length: number): number[] {
  switch (g.int(5)) {
    case 0:
      return [];
    case 1:
      return length <= 2048 ? new Array<number>(length).fill(1) : [];
    case 2:
      return Array.from({ length: g.range(1, 40) }, () => g.range(0, 16));
    case 3:
      return Array.from({ length: g.range(1, 6) }, () => g.int(length + 1));
    default:
      return Array.from({ length: g.range(1, 200) }, () => g.range(1, 4));
  }
}

export function generateCase(g: Gen): FeedCase {
  const role: Role = g.chance(0.5) ? "server" : "client";
  const limits: CaseLimits | null = g.chance(0.25)
    ? null
    : {
        maxMessageBytes: g.pick([1, 2, 7, 16, 100, 125, 1000, 4096, 65536, 100_000]),
        maxFragments: g.pick([1, 2, 3, 8, 20, 1000]),
      };
  const codec: InflateSpec | null = g.chance(0.4)
    ? { windowBits: g.range(8, 15), noContextTakeover: g.chance(0.5) }
    : null;
  const kind = g.int(10);
  const input =
    kind < 2
      ? randomBytes(g, role)
      : kind < 4
        ? validStream(g, role, codec, g.chance(0.5))
        : mutate(g, validStream(g, role, codec, g.chance(0.3)));
  return { role, limits, codec, input, chunks: chunking(g, input.length) };
}

// ---- shrinking and saving ---------------------------------------------------------------------

function fails(c: FeedCase): boolean {
  try {
    return checkCase(c).violations.length > 0;
  } catch {
    return true;
  }
}

/** Greedy shrinking within a time budget: drop the chunking, then byte ranges, then limits. */
export function shrink(c: FeedCase, budgetMs = 2000): FeedCase {
  const deadline = Date.now() + budgetMs;
  let best = c;
  const attempt = (next: FeedCase): boolean => {
    if (Date.now() > deadline || !fails(next)) return false;
    best = next;
    return true;
  };
  attempt({ ...best, chunks: [] });
  for (let size = Math.max(1, best.input.length >> 1); size >= 1; size >>= 1) {
    for (let at = 0; at + size <= best.input.length && Date.now() <= deadline; ) {
      const input = concatBytes([best.input.subarray(0, at), best.input.subarray(at + size)]);
      if (!attempt({ ...best, input, chunks: best.chunks.length > 0 ? [...best.chunks] : [] })) {
        at += size;
      }
    }
  }
  if (best.codec !== null) attempt({ ...best, codec: null });
  return best;
}

function save(
  dir: string,
  c: FeedCase,
  violations: string[],
  seed: number,
  iteration: number,
): string {
  const entry: CorpusEntry = { ...caseToEntry(c), violations, seed, iteration };
  const key = JSON.stringify(caseToEntry(c));
  const name = `${createHash("sha256").update(key).digest("hex").slice(0, 16)}.json`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), `${JSON.stringify(entry, null, 2)}\n`);
  return join(dir, name);
}

// ---- main -------------------------------------------------------------------------------------

function main(): void {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      seconds: { type: "string", default: "10" },
      seed: { type: "string" },
      "max-failures": { type: "string", default: "20" },
      corpus: { type: "string" },
    },
    strict: true,
  });
  const seconds = Number(values.seconds);
  const seed = values.seed === undefined ? Date.now() % 0x1_0000_0000 : Number(values.seed);
  const maxFailures = Number(values["max-failures"]);
  if (!(seconds > 0) || !Number.isInteger(seed) || seed < 0 || !(maxFailures > 0)) {
    console.error("usage: npm run fuzz -- [--seconds S] [--seed N] [--max-failures N]");
    process.exit(2);
  }
  const dir = resolve(values.corpus ?? join(import.meta.dirname, "..", "fixtures", "corpus"));
  console.log(`fuzz: seed ${seed}, ${seconds} s, findings go to ${dir}`);

  const started = Date.now();
  const deadline = started + seconds * 1000;
  let inputs = 0;
  let failures = 0;
  let saved = 0;
  const seen = new Set<string>();
  const signature = (violations: string[]): string =>
    violations.map((v) => v.split("\n")[0]!.replace(/[0-9a-f]{6,}|\d+/g, "#")).join("|");
  // Each case gets its own generator seeded from (seed, iteration): any case can be regenerated.
  while (Date.now() < deadline && failures < maxFailures) {
    const iteration = inputs++;
    const g = new Gen((seed ^ Math.imul(iteration + 1, 0x9e3779b1)) >>> 0);
    const c = generateCase(g);
    let violations: string[];
    try {
      violations = checkCase(c).violations;
    } catch (error) {
      violations = [`harness threw: ${error instanceof Error ? error.stack : String(error)}`];
    }
    if (violations.length === 0) continue;
    failures++;
    // Shrink and save one input per kind of failure.
    const before = signature(violations);
    if (seen.has(before)) continue;
    seen.add(before);
    const small = shrink(c);
    let smallViolations = violations;
    try {
      smallViolations = checkCase(small).violations;
    } catch {}
    const after = signature(smallViolations);
    if (after !== before && seen.has(after)) continue;
    seen.add(after);
    saved++;
    const file = save(dir, small, smallViolations, seed, iteration);
    console.log(`fuzz: failure (iteration ${iteration}) saved to ${file}`);
    for (const v of smallViolations) console.log(`  ${v.split("\n")[0]}`);
  }
  const elapsed = (Date.now() - started) / 1000;
  const rate = Math.round(inputs / elapsed);
  console.log(
    `fuzz: ${inputs} inputs in ${elapsed.toFixed(1)} s, ${failures} failures (${saved} saved, ${rate} inputs/s, seed ${seed})`,
  );
  process.exitCode = failures > 0 ? 1 : 0;
}

if (process.argv[1]?.endsWith("run.ts")) main();
