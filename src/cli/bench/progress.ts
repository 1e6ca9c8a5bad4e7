/**
 * A one-line progress bar for a terminal: `echo [█████░░░░░] 2.0/5 s  12,345 msg/s  0 errors`,
 * redrawn in place (carriage return + erase line) five times a second, erased when done. The
 * rate is that of the last redraw interval. Only used when stderr is a TTY.
 */
import { performance } from "node:perf_hooks";
import type { Live } from "./scenarios.js";

const WIDTH = 24;
const REDRAW_MS = 200;
const ERASE = "\r\x1b[2K";

const count = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export class ProgressBar {
  readonly #out: { write(text: string): unknown };
  #timer: NodeJS.Timeout | undefined;
  #lastCount = 0;
  #lastAt = 0;
  #noted = false;

  constructor(out: { write(text: string): unknown }) {
    this.#out = out;
  }

  start(label: string, totalMs: number, unit: string, live: Live): void {
    this.stop();
    this.#lastCount = 0;
    this.#lastAt = performance.now();
    const draw = (): void => {
      this.#out.write(ERASE + this.#line(label, totalMs, unit, live));
    };
    draw();
    this.#timer = setInterval(draw, REDRAW_MS);
    this.#timer.unref();
  }

  /** A one-off status line (e.g. while a server starts), replaced by the next draw. */
  note(text: string): void {
    this.stop();
    this.#out.write(ERASE + text);
    this.#noted = true;
  }

  stop(): void {
    if (this.#noted) {
      this.#noted = false;
      this.#out.write(ERASE);
    }
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#out.write(ERASE);
  }

  #line(label: string, totalMs: number, unit: string, live: Live): string {
    const name = label.padEnd(10);
    if (live.phase === "connecting") {
      return live.toOpen === 0
        ? `${name}connecting`
        : `${name}connecting ${live.opened}/${live.toOpen}`;
    }
    if (live.phase === "closing") return `${name}closing connections`;
    const now = performance.now();
    if (this.#lastAt < live.startedAt) this.#lastAt = live.startedAt;
    const elapsed = Math.min(now - live.startedAt, totalMs);
    const filled = Math.round((elapsed / totalMs) * WIDTH);
    const bar = "█".repeat(filled) + "░".repeat(WIDTH - filled);
    const dt = (now - this.#lastAt) / 1000;
    const rate = dt > 0 ? (live.count - this.#lastCount) / dt : 0;
    this.#lastCount = live.count;
    this.#lastAt = now;
    const errors = live.errors === 1 ? "1 error" : `${live.errors} errors`;
    return `${name}[${bar}] ${(elapsed / 1000).toFixed(1)}/${totalMs / 1000} s  ${count.format(rate)} ${unit}  ${errors}`;
  }
}
