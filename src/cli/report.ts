// Placeholder until the report command lands (owned by its engineer; replace this file).
import { Fp8kitError } from "../errors.js";

export const summary = "(not yet available)";

export async function run(_argv: string[]): Promise<number> {
  throw new Fp8kitError("not-implemented", "fp8kit report is not available in this build");
}
