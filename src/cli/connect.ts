/** `duplex connect <url>`: an interactive WebSocket client (lands with its issue). */
import { CliError, type Command } from "./command.js";

export const CONNECT_USAGE = `Usage: duplex connect <url> [options]

Interactive WebSocket client: lines typed are sent, messages are printed.`;

export const connectCommand: Command = {
  name: "connect",
  summary: "interactive WebSocket client (like wscat)",
  usage: CONNECT_USAGE,
  async run(): Promise<number> {
    throw new CliError("not yet available in this version");
  },
};
