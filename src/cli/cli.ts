/**
 * The `duplex` command line: dispatches to the commands, prints help, and turns every error into
 * one line on stderr with a meaningful exit code (2 = bad usage, 1 = failure) — never a stack
 * trace.
 */
import { benchCommand } from "./bench.js";
import { CliError, type Command, type Io, UsageError } from "./command.js";
import { connectCommand } from "./connect.js";
import { echoCommand } from "./echo.js";
import { publishCommand, subscribeCommand } from "./pubsub.js";
import { serveCommand } from "./serve.js";

export const VERSION = "0.1.0";

export const COMMANDS: readonly Command[] = [
  serveCommand,
  echoCommand,
  connectCommand,
  publishCommand,
  subscribeCommand,
  benchCommand,
];

export const USAGE = `Usage: duplex <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)}${c.summary}`).join("\n")}
  help      print this help (duplex <command> --help for a command's options)

Options:
  -h, --help   print this help
  --version    print the version`;

/** Run the command line; resolves with the process exit code. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "-h" || name === "--help") {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (name === "--version") {
    io.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    io.stderr.write(`duplex: unknown command '${name}' (try 'duplex --help')\n`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    io.stderr.write(`duplex ${name}: ${message.split("\n")[0]}\n`);
    if (e instanceof UsageError) return 2;
    if (e instanceof CliError) return e.exitCode;
    return 1;
  }
}
