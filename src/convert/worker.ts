/**
 * Worker-thread entry of the conversion pool (compiled to dist/convert/worker.js). Receives a band
 * spec, its bytes and spare output buffers (all transferred), converts, and transfers back the
 * result and the input buffers (which the main thread reuses for its next reads).
 */
import { parentPort } from "node:worker_threads";
import { BufferList, setBufferSource } from "../quant/kernels/buffers.js";
import { convertBand } from "../quant/kernels/convert-band.js";
import type { BandSpec } from "../quant/kernels/types.js";

interface Request {
  id: number;
  spec: BandSpec;
  data: Uint8Array;
  scale: Uint8Array | null;
  spare: ArrayBuffer[];
}

const free = new BufferList(4);
setBufferSource((bytes) => free.take(bytes));

parentPort?.on("message", (m: Request) => {
  for (const b of m.spare) free.give(b);
  try {
    const r = convertBand(m.spec, m.data, m.scale);
    const transfer: ArrayBuffer[] = [r.data.buffer as ArrayBuffer];
    if (r.scale && r.scale.buffer !== r.data.buffer) transfer.push(r.scale.buffer as ArrayBuffer);
    const input = m.data.buffer as ArrayBuffer;
    if (!transfer.includes(input)) transfer.push(input);
    parentPort!.postMessage({ id: m.id, data: r.data, scale: r.scale, stats: r.stats, input }, transfer);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
