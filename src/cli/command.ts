/**
 * What every `duplex` command is: a name, its help text, and an async run() that returns the
 * exit code. Errors are one clear line, never a stack trace: a UsageError (bad flags) exits 2,
 * a CliError (e.g. an unreachable server) exits 1 or its own code.
 */
import { parseArgs } from "node:util";

export interface Io {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: {
    write(text: string): unknown;
    readonly isTTY?: boolean;
    readonly columns?: number;
  };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted on SIGINT/SIGTERM: long-running commands stop gracefully and resolve. */
  readonly signal: AbortSignal;
}

export interface Command {
  readonly name: string;
  /** One line for `duplex --help`. */
  readonly summary: string;
  /** The full `duplex <name> --help` text. */
  readonly usage: string;
  run(args: readonly string[], io: Io): Promise<number>;
}

/** Bad flags or arguments: printed as one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The command could not do its job (unreachable server, port in use…): one line, exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export type FlagSpec = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean; default?: string | boolean }
>;

/** What parseFlags returns: parseArgs' result for these flags. */
export type ParsedFlags<T extends FlagSpec> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: boolean }>
>;

/**
 * node:util parseArgs with our error style: unknown flags and missing values become a
 * UsageError with parseArgs' own one-line message.
 */
export function parseFlags<T extends FlagSpec>(
  args: readonly string[],
  options: T,
  positionals = 0,
): ParsedFlags<T> {
  try {
    const parsed = parseArgs({
      args: [...args],
      options,
      strict: true,
      allowPositionals: positionals > 0,
    });
    if (parsed.positionals.length > positionals) {
      throw new UsageError(`unexpected argument '${parsed.positionals[positionals]}'`);
    }
    return parsed;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message.split("\n")[0] ?? "bad arguments");
  }
}

/** An integer flag within [min, max]. */
export function integer(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new UsageError(`${flag} must be an integer between ${min} and ${max}, got '${text}'`);
  }
  return n;
}

/** Wait until the signal aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
}
