/**
 * Byte order of this platform. Typed-array views use it, and safetensors, E8M0 words and the
 * word-at-a-time kernels are little-endian, so fast paths that read several codes per 32-bit word
 * only run where it holds (every platform Node and the browsers ship on today).
 */
export const LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
