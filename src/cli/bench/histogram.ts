/**
 * A latency histogram with bounded memory: logarithmic buckets 1 % wide from 1 µs to 100 s
 * (about 1,850 counters), so a long run at a high rate costs no more than a short one. Quantiles
 * are the upper edge of their bucket (at most 1 % above the true value), clamped to the exact
 * minimum and maximum, so p50 ≤ p90 ≤ p99 ≤ max always holds.
 */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
const MIN_US = 1;
const MAX_US = 100_000_000;
const BUCKETS = Math.ceil(Math.log(MAX_US / MIN_US) / LOG_GROWTH) + 1;

export interface LatencySummary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #min = Number.POSITIVE_INFINITY;
  #max = 0;

  get count(): number {
    return this.#count;
  }

  /** Record one value in milliseconds. */
  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    const us = Math.max(ms * 1000, MIN_US);
    const index = Math.min(Math.ceil(Math.log(us / MIN_US) / LOG_GROWTH), BUCKETS - 1);
    this.#counts[index] = (this.#counts[index] ?? 0) + 1;
    this.#count++;
    this.#sum += ms;
    if (ms < this.#min) this.#min = ms;
    if (ms > this.#max) this.#max = ms;
  }

  /** The value below which a fraction q (0..1) of the recorded values lie, in milliseconds. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i] ?? 0;
      if (seen >= rank) {
        const upperMs = (MIN_US * GROWTH ** i) / 1000;
        return Math.min(Math.max(upperMs, this.#min), this.#max);
      }
    }
    return this.#max;
  }

  summary(): LatencySummary {
    if (this.#count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
    return {
      count: this.#count,
      min: this.#min,
      mean: this.#sum / this.#count,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      max: this.#max,
    };
  }
}
