/**
 * Ctrl-C and SIGTERM for long commands: the first signal aborts the work through an AbortSignal so
 * it can stop cleanly (temporary files removed, locks released); a second one exits at once.
 */
import { CliError } from "./errors.js";

const SIGNALS = { SIGINT: 2, SIGTERM: 15 } as const;
type SignalName = keyof typeof SIGNALS;

/** The exit code of a command stopped by `signal` (128 + its number, as shells report it). */
export const exitCodeOfSignal = (signal: SignalName) => 128 + SIGNALS[signal];

/**
 * Run `work` with an AbortSignal that SIGINT/SIGTERM abort (with a `CliError` "interrupted" whose
 * message is `stopped`). Returns `work`'s result, or, when a signal arrived, prints the message and
 * returns the signal's exit code whatever `work` then did.
 */
export async function interruptible(
  stopped: string,
  work: (signal: AbortSignal) => Promise<number>,
): Promise<number> {
  const controller = new AbortController();
  let received: SignalName | null = null;
  const onSignal = (name: SignalName) => {
    if (received !== null) process.exit(exitCodeOfSignal(name));
    received = name;
    process.stderr.write(`\nfp8kit: ${name} received, stopping (press Ctrl-C again to quit at once)\n`);
    controller.abort(new CliError("interrupted", stopped));
  };
  const handlers = (Object.keys(SIGNALS) as SignalName[]).map((name) => {
    const h = () => onSignal(name);
    process.on(name, h);
    return [name, h] as const;
  });
  try {
    const code = await work(controller.signal).catch((e) => {
      if (received === null) throw e;
      return 0;
    });
    if (received === null) return code;
    process.stderr.write(`fp8kit: ${stopped}\n`);
    return exitCodeOfSignal(received);
  } finally {
    for (const [name, h] of handlers) process.off(name, h);
  }
}
