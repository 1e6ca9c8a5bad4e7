/**
 * The `duplex` command line. Each command is filled in by its issue; until then a command says
 * clearly that it is not available yet and exits without a stack trace.
 */

import { ECHO_USAGE, type EchoOptions, parseEchoArgs } from "./echo.js";

export const USAGE = `Usage: duplex <command> [options]

Commands:
  serve     run the Duplex server with the chat app (not yet available)
  echo      run a WebSocket echo endpoint (duplex echo --help)
  help      print this help

Options:
  -h, --help   print this help
  --version    print the version`;

export const VERSION = "0.1.0";

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** A long-running command to start (the caller owns the process and its signals). */
  readonly run?: { readonly command: "echo"; readonly options: EchoOptions };
}

export function runCli(argv: readonly string[]): CliResult {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "-h" || command === "--help") {
    return { code: 0, stdout: USAGE, stderr: "" };
  }
  if (command === "--version") return { code: 0, stdout: VERSION, stderr: "" };
  if (command === "echo") {
    if (rest.includes("--help") || rest.includes("-h"))
      return { code: 0, stdout: ECHO_USAGE, stderr: "" };
    try {
      const options = parseEchoArgs(rest);
      if (options === "help") return { code: 0, stdout: ECHO_USAGE, stderr: "" };
      return { code: 0, stdout: "", stderr: "", run: { command: "echo", options } };
    } catch (e) {
      return { code: 2, stdout: "", stderr: `duplex echo: ${(e as Error).message}` };
    }
  }
  if (command === "serve") {
    if (rest.includes("--help") || rest.includes("-h"))
      return { code: 0, stdout: USAGE, stderr: "" };
    return {
      code: 0,
      stdout: `duplex ${command}: not yet available in this version — the WebSocket server is being built (see README.md).`,
      stderr: "",
    };
  }
  return {
    code: 2,
    stdout: "",
    stderr: `duplex: unknown command '${command}' (try 'duplex --help')`,
  };
}
