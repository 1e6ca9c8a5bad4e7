/** Every benchmark case, in table order. */
import { deflateCases } from "./deflate.bench.js";
import type { CaseSpec } from "./harness.js";
import { protocolCases } from "./protocol.bench.js";

export function allCases(): CaseSpec[] {
  return [...protocolCases(), ...deflateCases()];
}
