/**
 * The usage handler of a benchmark's command line: `usage()` prints the usage text and exits 0
 * (--help), `usage(message)` prints `<name>: <message>` first and exits 2.
 */
export function usageHandler(name: string, text: string): (message?: string) => never {
  return (message) => {
    if (message !== undefined) console.error(`${name}: ${message}`);
    console.error(text);
    process.exit(message === undefined ? 0 : 2);
  };
}

/** Remove `flag <value>` from `args` and return the value as a number (undefined when absent). */
export function takeNumber(args: string[], flag: string): number | undefined {
  const i = args.indexOf(flag);
  if (i < 0) return undefined;
  const value = Number(args[i + 1]);
  args.splice(i, 2);
  return value;
}
