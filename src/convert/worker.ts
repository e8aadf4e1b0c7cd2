/**
 * Worker-thread entry of the conversion pool (compiled to dist/convert/worker.js). A job names its
 * input and output slots (shared memory, pool.ts): the input is read in place, and the kernels'
 * main output array (`outBytes`) is the output slot's memory when it fits. The reply gives the
 * output's place in the slot, or transfers it when a kernel wrote it elsewhere; scales, auxiliary
 * arrays and statistics are small and travel in the message.
 */
import { parentPort } from "node:worker_threads";
import { setBufferSource } from "../quant/kernels/buffers.js";
import { convertBand } from "../quant/kernels/convert-band.js";
import type { PoolReply, PoolRequest } from "./pool.js";

const slots = new Map<number, SharedArrayBuffer>();

/** The output slot of the job running now; the first array that fits takes it. */
let outSlot: SharedArrayBuffer | null = null;
setBufferSource((bytes) => {
  const s = outSlot;
  if (s !== null && bytes <= s.byteLength) {
    outSlot = null;
    return s as unknown as ArrayBuffer;
  }
  return new ArrayBuffer(bytes);
});

parentPort?.on("message", (m: PoolRequest) => {
  for (const [id, sab] of m.slots) slots.set(id, sab);
  try {
    const input =
      "slot" in m.input ? new Uint8Array(slots.get(m.input.slot)!, 0, m.input.length) : m.input.data;
    const out = slots.get(m.out.slot)!;
    outSlot = out;
    const r = convertBand(m.spec, input, m.scale);
    outSlot = null;
    const inSlot = r.data.buffer === (out as ArrayBufferLike);
    const transfer: ArrayBuffer[] = [];
    // A small array in the output slot stays there only while the slot is held (data in the slot).
    const own = (a: Uint8Array | null | undefined): Uint8Array | null => {
      if (!a) return null;
      const b = a.buffer;
      if (b instanceof SharedArrayBuffer) return inSlot && b === out ? a : a.slice();
      if (!transfer.includes(b as ArrayBuffer)) transfer.push(b as ArrayBuffer);
      return a;
    };
    const data = inSlot ? r.data : own(r.data)!;
    const scale = own(r.scale);
    const aux = own(r.aux);
    const reply: PoolReply = {
      id: m.id,
      scale,
      aux,
      stats: r.stats,
      ...(inSlot ? { out: { offset: r.data.byteOffset, length: r.data.length } } : { data }),
    };
    parentPort!.postMessage(reply, transfer);
  } catch (e) {
    outSlot = null;
    parentPort!.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
