"""The producers' quantizers, re-implemented in torch from their upstream source (described in our own
words; the files are cited on each function). Every function takes one 2-D weight in the dtype the
producer would see and returns what it stores:

    (codes: U8 [rows, bytes], scales: float32 multipliers, tensor_scale: float32 or None)

Where ModelOpt is importable its own quantizers run instead of the re-implementations.
"""

import torch
from decode import HAVE_MODELOPT
from formats import E2M1_MAGNITUDES, blocks, e8m0_values, groups, pack_nibbles, unblocks

if HAVE_MODELOPT:
    from modelopt.torch.quantization.qtensor import MXFP8QTensor, NVFP4QTensor

E4M3_MAX = 448.0
FP4_BOUNDS = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])


def _u8(fp8):
    return fp8.view(torch.uint8)


# ---- block FP8 with UE8M0 (power-of-two) scales, 128x128 ----------------------------------------


def ceil_to_ue8m0_bits(sf):
    """DeepGEMM `ceil_to_ue8m0` as SGLang copies it (python/sglang/srt/layers/quantization/fp8_utils.py):
    the biased exponent field, plus one when any mantissa bit is set, clamped to [1, 254]."""
    bits = sf.view(torch.int32)
    exp = ((bits >> 23) & 0xFF) + ((bits & 0x7FFFFF) != 0).to(torch.int32)
    return (exp.clamp(1, 254) << 23).view(torch.float32)


def per_block_cast_to_fp8(x, log2_ceil):
    """`per_block_cast_to_fp8` with UE8M0 scales: zero padding to 128, amax over each 128x128 block in
    float32 clamped at 1e-4, sf = amax/448 rounded up to a power of two, codes = e4m3(x * (1/sf)).
    `log2_ceil`: vLLM's `_ceil_to_ue8m0` = 2^ceil(log2(sf)) (vllm/utils/deep_gemm.py); otherwise the bit rule."""
    rows, cols = x.shape
    b = blocks(x, 128, 128)
    amax = b.abs().float().amax(dim=(1, 3), keepdim=True).clamp(min=1e-4)
    sf = amax / E4M3_MAX
    sf = torch.exp2(torch.ceil(torch.log2(sf))) if log2_ceil else ceil_to_ue8m0_bits(sf)
    q = (b * (1.0 / sf)).to(torch.float8_e4m3fn)  # a BF16 block times an F32 scale promotes to F32
    return _u8(unblocks(q, rows, cols)), sf.reshape(sf.shape[0], sf.shape[2]), None


def vllm_requant(x_f32):
    """vLLM `requant_weight_ue8m0_inplace` (model_executor/layers/quantization/utils/fp8_utils.py): the
    float32 dequantization, then `per_block_cast_to_fp8(..., use_ue8m0=True)`."""
    return per_block_cast_to_fp8(x_f32, log2_ceil=True)


def sglang_requant(x_f32):
    """SGLang `requant_weight_ue8m0` (srt/layers/quantization/fp8_utils.py): `block_quant_dequant` to
    BF16 first, then its copy of DeepGEMM's `per_block_cast_to_fp8`."""
    return per_block_cast_to_fp8(x_f32.to(torch.bfloat16), log2_ceil=False)


def deepgemm_quant(x):
    """DeepGEMM `per_block_cast_to_fp8(x, use_ue8m0=True)` on a BF16 weight (bit-exact ceil)."""
    return per_block_cast_to_fp8(x, log2_ceil=False)


# ---- compressed-tensors MX (MXFP8 / MXFP4) ------------------------------------------------------


def round_to_power_2(a):
    """compressed-tensors `round_to_power_2` (quantization/utils/mxfp_utils.py): add half of the FP4
    mantissa step to the float's bits (2^5 for BF16, 2^21 for F32), then keep sign and exponent. The
    result is the amax rounded to a power of two, up when its significand is at least 1.75."""
    if a.dtype == torch.bfloat16:
        i = a.view(torch.int16).to(torch.int32) & 0xFFFF
        i = (i + (1 << 5)) & 0xFF80
        return i.to(torch.int16).view(torch.bfloat16)
    i = a.to(torch.float32).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    i = (i + (1 << 21)) & 0xFF800000
    return i.to(torch.int32).view(torch.float32)


def ct_cast_fp4(x):
    """compressed-tensors `FP4_E2M1_DATA.cast_to_fp4` (quantization/quant_args.py): round |x| on the
    E2M1 grid, ties to the even code, and restore the sign by multiplying with sign(x); then
    `pack_fp4_to_uint8` (compressors/nvfp4/helpers.py) takes the sign bit from torch.signbit. So a
    negative that rounds to 0 packs as 0x8, but an exact -0.0 as 0x0 (torch.sign(-0.0) is +0.0)."""
    a = x.abs()
    q = torch.full_like(a, 6.0)
    for upper, inclusive, v in [(5.0, True, 4.0), (3.5, False, 3.0), (2.5, True, 2.0), (1.75, False, 1.5),
                                (1.25, True, 1.0), (0.75, False, 0.5), (0.25, True, 0.0)]:  # fmt: skip
        q = torch.where(a <= upper if inclusive else a < upper, v, q)
    q = q * torch.sign(x)
    index = (q.abs().unsqueeze(-1) == E2M1_MAGNITUDES.to(q.dtype)).to(torch.uint8).argmax(-1)
    return pack_nibbles(index.to(torch.uint8) | (torch.signbit(q).to(torch.uint8) << 3))


def ct_mx(x, bits):
    """compressed-tensors MX quantization (`calculate_qparams` -> `generate_mx_scales`, then
    lifecycle/forward.py `_quantize`), in the weight's own dtype: byte = clamp(127 + log2(p2) - offset,
    0, 255) with offset 8 (E4M3) or 2 (E2M1); scale = 2^(byte-127) in the weight dtype; codes from
    x / scale clamped to the element maximum. No zero point is added: llm-compressor's model-free
    path initializes without one; `oneshot` adds a zero point of 0, which only turns an exact -0.0
    into +0.0 (E4M3 0x00 instead of 0x80)."""
    g = groups(x, 32)
    amax = g.abs().amax(-1)
    offset = 8 if bits == 8 else 2
    byte = (127 + torch.floor(torch.log2(round_to_power_2(amax).float())) - offset).clamp(0, 255).round()
    scale = torch.exp2(byte - 127).to(x.dtype)
    scale[scale == 0] = 1.0  # `_get_dtype_eps(uint8)` is 1 (only reached in fp16)
    scaled = (g / scale.unsqueeze(-1)).clamp(-(448.0 if bits == 8 else 6.0), 448.0 if bits == 8 else 6.0)
    rows = x.shape[0]
    if bits == 8:
        codes = _u8(scaled.to(torch.float8_e4m3fn)).reshape(rows, -1)
    else:
        codes = ct_cast_fp4(scaled.reshape(rows, -1))
    return codes, e8m0_values(byte.to(torch.uint8)), None


def ct_mxfp8(x):
    return ct_mx(x, 8)


def ct_mxfp4(x):
    return ct_mx(x, 4)


# ---- ModelOpt MXFP8 ------------------------------------------------------------------------------


def modelopt_mxfp8(x):
    """ModelOpt `MXFP8QTensor.quantize` (modelopt/torch/quantization/qtensor/mxfp8_tensor.py): exponent
    = clamp(ceil(log2(amax/448)), -127, 127) in float32 (-127 for amax 0), byte = exponent + 127,
    codes = e4m3(clamp(x * 2^(127-byte), +-448))."""
    if HAVE_MODELOPT:
        qt, byte = MXFP8QTensor.quantize(x)
        return _u8(qt._quantized_data), e8m0_values(byte), None
    g = groups(x, 32)
    d = g.abs().amax(-1).float() / E4M3_MAX
    e = torch.where(d > 0, torch.log2(d), torch.tensor(-127.0)).ceil().clamp(-127, 127)
    byte = (e + 127).to(torch.uint8)
    q = (g * torch.exp2(127 - byte.float()).unsqueeze(-1)).clamp(-E4M3_MAX, E4M3_MAX)
    return _u8(q.to(torch.float8_e4m3fn)).reshape(x.shape[0], -1), e8m0_values(byte), None


# ---- gpt-oss MXFP4 (triton_kernels, as transformers' quantize_to_mxfp4 calls it) ----------------


def triton_mxfp4(x):
    """triton_kernels `downcast_to_mxfp_torch(w, uint8, axis)` with the default
    `DequantScaleRoundingMode.ROUND_UP` (numerics_details/mxfp.py): d = f32(amax/6) rounded up to a
    power of two on its bits, byte = its exponent field, codes = E2M1 of x * (1/d) rounded to nearest
    with ties away from zero, sign copied from the float (so -0.0 gives 0x8)."""
    g = groups(x.float(), 32)
    d = g.abs().amax(-1) / 6.0
    bits = (d.view(torch.int32).to(torch.int64) + 0x7FFFFF) & 0x7F800000
    byte = (bits >> 23).to(torch.uint8)
    dr = bits.to(torch.int32).view(torch.float32)
    inv = torch.where(dr == 0, torch.zeros_like(dr), 1.0 / dr)
    q = g * inv.unsqueeze(-1)
    index = torch.searchsorted(FP4_BOUNDS, q.abs().contiguous(), right=True).to(torch.uint8)
    codes = index | (torch.signbit(q).to(torch.uint8) << 3)
    return pack_nibbles(codes.reshape(x.shape[0], -1)), e8m0_values(byte), None


# ---- NVFP4 ---------------------------------------------------------------------------------------


def ct_nvfp4(x, amax):
    """compressed-tensors NVFP4 (quantization/utils/helpers.py `generate_gparam`, `calculate_qparams`,
    lifecycle/forward.py `_quantize`), in the weight's dtype: global = 2688/amax (weight dtype, then
    F32; `amax` is the fusion group's); group scale = e4m3(global * (amax16/6)) (0 -> 0.125);
    codes = E2M1(x / (scale/global))."""
    amax = amax.to(x.dtype).clamp(min=torch.finfo(x.dtype).tiny)
    # `448.0 * 6.0 / max_val_pos`: PyTorch runs a Python float divided by a tensor as
    # `tensor.reciprocal() * 2688.0` (Tensor.__rtruediv__), two roundings in the weight dtype.
    gs = amax.reciprocal() * 2688.0
    gs = torch.nan_to_num(gs, nan=1.0, posinf=1.0, neginf=1.0).to(torch.float32).reshape([1])
    g = groups(x, 16)
    s = (gs * (g.abs().amax(-1) / 6.0)).clamp(-448, 448).to(torch.float8_e4m3fn).to(torch.float32)
    s[s == 0] = 0.125
    ws = s.to(x.dtype)
    scaled = (g / (ws / gs).unsqueeze(-1)).clamp(-6.0, 6.0)
    return ct_cast_fp4(scaled.reshape(x.shape[0], -1)), s, gs


def modelopt_cast_fp4(x):
    """ModelOpt `NVFP4QTensor._cast_fp4`: sign = (x < 0), index = searchsorted(bounds, |x|) plus one
    where |x| is 0.75, 1.75 or 3.5 (ties to even)."""
    a = x.abs().contiguous()
    index = torch.searchsorted(FP4_BOUNDS, a).to(torch.uint8)
    index += (a.unsqueeze(-1) == FP4_BOUNDS[[1, 3, 5]]).any(-1).to(torch.uint8)
    return pack_nibbles(index | ((x < 0).to(torch.uint8) << 3))


def modelopt_nvfp4(x, amax):
    """ModelOpt `NVFP4QTensor.quantize(w, 16, weights_scaling_factor_2=wsf2)` (qtensor/nvfp4_tensor.py):
    wsf2 = f32(amax/2688) with the fusion group's amax; scale = e4m3(max(amax16 / (6*wsf2), 2^-9))
    (0 -> 1); codes = E2M1(x / (scale*wsf2))."""
    wsf2 = amax.float() / 2688.0
    if HAVE_MODELOPT:
        qt, ws, wsf2 = NVFP4QTensor.quantize(x, 16, weights_scaling_factor_2=wsf2)
        return qt._quantized_data, ws.to(torch.float32), wsf2.float()
    g = groups(x, 16)
    s = g.abs().amax(-1).float() / (6.0 * wsf2)
    s[s == 0] = 1.0
    ws = s.clamp(min=2**-9).to(torch.float8_e4m3fn).to(torch.float32)
    scaled = g / (ws * wsf2).unsqueeze(-1)
    return modelopt_cast_fp4(scaled.reshape(x.shape[0], -1)), ws, wsf2
