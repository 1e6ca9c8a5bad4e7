/** `duplex publish|subscribe <channel>` through the realtime protocol (lands with its issue). */
import { CliError, type Command } from "./command.js";

export const publishCommand: Command = {
  name: "publish",
  summary: "publish to a channel of a running server",
  usage: "Usage: duplex publish <channel> [message] [options]",
  async run(): Promise<number> {
    throw new CliError("not yet available in this version");
  },
};

export const subscribeCommand: Command = {
  name: "subscribe",
  summary: "print a channel's publications",
  usage: "Usage: duplex subscribe <channel> [options]",
  async run(): Promise<number> {
    throw new CliError("not yet available in this version");
  },
};
