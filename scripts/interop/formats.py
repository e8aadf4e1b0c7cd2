"""Element formats shared by the decoders and quantizers: E2M1 nibbles, E8M0 bytes, block expansion.

Everything here is plain torch; nothing is taken from fp8kit.
"""

import torch

# E2M1 code -> value, code = sign << 3 | magnitude index (the table every producer and loader uses:
# compressed-tensors FP4_E2M1_DATA, ModelOpt _cast_fp4, transformers integrations/mxfp4.py FP4_VALUES).
E2M1 = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=torch.float32)
E2M1_MAGNITUDES = E2M1[:8]


def unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    """U8 [..., n] -> codes [..., 2n]; the low nibble is the even (first) element."""
    p = packed.view(torch.uint8)
    return torch.stack([p & 0x0F, p >> 4], dim=-1).reshape(*p.shape[:-1], 2 * p.shape[-1])


def pack_nibbles(codes: torch.Tensor) -> torch.Tensor:
    """Codes [..., 2n] (0..15) -> U8 [..., n], element 2i in the low nibble."""
    c = codes.to(torch.uint8)
    return c[..., 0::2] | (c[..., 1::2] << 4)


def e2m1_values(packed: torch.Tensor) -> torch.Tensor:
    """Packed E2M1 bytes -> float32 values."""
    return E2M1[unpack_nibbles(packed).long()]


def e8m0_values(byte: torch.Tensor) -> torch.Tensor:
    """E8M0 biased exponent bytes (stored as U8) -> float32 2^(byte-127)."""
    return torch.exp2(byte.view(torch.uint8).to(torch.float32) - 127)


def scale_values(s: torch.Tensor) -> torch.Tensor:
    """Any stored scale tensor -> float32 multipliers (U8 is an E8M0 byte, as vLLM and compressed-tensors read it)."""
    if s.dtype == torch.uint8:
        return e8m0_values(s)
    return s.to(torch.float32)


def expand(s: torch.Tensor, rows: int, cols: int, br: int, bc: int) -> torch.Tensor:
    """A [ceil(rows/br), ceil(cols/bc)] scale grid -> [rows, cols] (the last block may be partial)."""
    return s.repeat_interleave(br, 0).repeat_interleave(bc, 1)[:rows, :cols]


def blocks(x: torch.Tensor, br: int, bc: int) -> torch.Tensor:
    """[rows, cols] -> [R, br, C, bc] over a zero-padded copy (padding never raises an amax)."""
    rows, cols = x.shape
    pr, pc = -rows % br, -cols % bc
    x = torch.nn.functional.pad(x, (0, pc, 0, pr))
    return x.view(x.shape[0] // br, br, x.shape[1] // bc, bc)


def unblocks(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Inverse of `blocks`, cropped to [rows, cols]."""
    r, br, c, bc = x.shape
    return x.reshape(r * br, c * bc)[:rows, :cols]


def groups(x: torch.Tensor, size: int) -> torch.Tensor:
    """[rows, cols] -> [rows, cols/size, size] (cols must divide: MX and NVFP4 require it)."""
    return x.reshape(x.shape[0], x.shape[1] // size, size)


def bits32(x: torch.Tensor) -> torch.Tensor:
    """The IEEE bits of a float32 tensor, as int64 (for exact comparisons that keep the sign of zero)."""
    return x.to(torch.float32).contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
