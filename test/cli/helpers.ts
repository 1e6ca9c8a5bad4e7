/** Run the `duplex` command line in process with captured output (see src/cli/cli.ts). */
import { Readable } from "node:stream";
import { main } from "../../src/cli/cli.js";

export interface CliRun {
  readonly code: number;
  /** Everything written, without the final newline. */
  readonly stdout: string;
  readonly stderr: string;
}

export async function runCli(
  argv: readonly string[],
  options: { env?: Record<string, string | undefined>; stdin?: string; signal?: AbortSignal } = {},
): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: options.env ?? {},
    signal: options.signal ?? new AbortController().signal,
  });
  return { code, stdout: stdout.replace(/\n$/, ""), stderr: stderr.replace(/\n$/, "") };
}
