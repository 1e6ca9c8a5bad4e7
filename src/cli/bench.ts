/** `duplex bench`: the load benchmark (lands with its issue). */
import { CliError, type Command } from "./command.js";

export const benchCommand: Command = {
  name: "bench",
  summary: "load benchmark with a results table and chart",
  usage: "Usage: duplex bench [options]",
  async run(): Promise<number> {
    throw new CliError("not yet available in this version");
  },
};
