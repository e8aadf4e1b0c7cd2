/**
 * Where the kernels take their large output arrays from. In a worker thread this is a small free
 * list of buffers handed back by the main thread after it wrote them (see pool.ts): reusing them
 * avoids faulting in fresh pages for every band, which costs as much as the conversion itself on
 * small VMs. Without a source (in-process), arrays are allocated normally.
 */
let source: ((bytes: number) => ArrayBuffer) | null = null;

export function setBufferSource(f: ((bytes: number) => ArrayBuffer) | null): void {
  source = f;
}

/** A zero-offset Uint8Array of `n` bytes (contents undefined: callers overwrite every byte). */
export function outBytes(n: number): Uint8Array {
  return source === null ? new Uint8Array(n) : new Uint8Array(source(n), 0, n);
}

let scratch: Float32Array | null = null;

/**
 * This thread's float32 scratch array, `n` elements (contents undefined), for values a kernel
 * consumes before it returns (the decoded band of decode-then-encode). The next call reuses it:
 * never return it or keep it. Reusing it spares a fresh 16 MB array per band, whose page faults
 * cost more than decoding into it on small VMs.
 */
export function scratchF32(n: number): Float32Array {
  if (scratch === null || scratch.length < n) scratch = new Float32Array(n);
  return scratch.subarray(0, n);
}

/** A free list of ArrayBuffers, taking one at least `bytes` long (and at most 4x that). */
export class BufferList {
  private readonly free: ArrayBuffer[] = [];
  constructor(private readonly cap = 8) {}
  take(bytes: number): ArrayBuffer {
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.byteLength >= bytes && b.byteLength <= 4 * bytes) {
        this.free.splice(i, 1);
        return b;
      }
    }
    return new ArrayBuffer(bytes);
  }
  give(b: ArrayBuffer): void {
    if (b.byteLength < 1 << 16 || b.byteLength === 0) return;
    this.free.push(b);
    if (this.free.length > this.cap) this.free.shift();
  }
  drain(n: number): ArrayBuffer[] {
    return this.free.splice(0, n);
  }
}
