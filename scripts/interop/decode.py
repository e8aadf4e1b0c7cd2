"""Decoding every layout the way its producer / loader does, in torch, without fp8kit.

    decode(layout, fmt, tensors, config) -> Decoded(values, used, upstream, problems)

`values` maps each quantized weight's logical name (`X.weight`) to the producer's float32 intermediate;
`.to(bfloat16)` of it is what the producer's BF16 dequantization gives. Where the producer's own code
is installed it decodes too and must agree: transformers (always: `Fp8Dequantize._dequantize_one`,
`convert_moe_packed_tensors`), compressed-tensors and ModelOpt (when importable; neither is on the
local package mirror, so those two adapters are untested here).
"""

from dataclasses import dataclass, field

import torch
from formats import e2m1_values, expand, groups, scale_values

try:  # transformers' own FP8/MX dequantization (integrations/finegrained_fp8.py)
    from transformers.integrations.finegrained_fp8 import Fp8Dequantize
except ImportError:  # older transformers: no CPU dequantization
    Fp8Dequantize = None
from transformers.integrations.mxfp4 import convert_moe_packed_tensors

try:
    import compressed_tensors  # noqa: F401

    HAVE_CT = True
except ImportError:
    HAVE_CT = False
try:
    from modelopt.torch.quantization.qtensor import MXFP8QTensor, NVFP4QTensor

    HAVE_MODELOPT = True
except ImportError:
    HAVE_MODELOPT = False


@dataclass
class Decoded:
    values: dict = field(default_factory=dict)  # weight name -> float32
    used: set = field(default_factory=set)  # tensor names the decoded weights consumed
    upstream: dict = field(default_factory=dict)  # upstream decoder -> weights it agreed on
    problems: list = field(default_factory=list)


# (data suffix, scale suffix, per-tensor scale suffix) of each layout and format; the weight's
# logical name is the data name with its suffix replaced by ".weight" (gpt-oss: "_blocks" removed).
SUFFIXES = {
    ("deepseek", "fp8"): (".weight", ".weight_scale_inv", None),
    ("compressed-tensors", "fp8"): (".weight", ".weight_scale", None),
    ("compressed-tensors", "mxfp8"): (".weight", ".weight_scale", None),
    ("compressed-tensors", "mxfp4"): (".weight_packed", ".weight_scale", None),
    ("compressed-tensors", "nvfp4"): (".weight_packed", ".weight_scale", ".weight_global_scale"),
    ("modelopt", "mxfp8"): (".weight", ".weight_scale", None),
    ("modelopt", "nvfp4"): (".weight", ".weight_scale", ".weight_scale_2"),
    ("gpt-oss", "mxfp4"): ("_blocks", "_scales", None),
}


def block_of(layout, fmt, config):
    """The scale block the loader assumes: FP8 from the config (DeepSeek `weight_block_size`,
    compressed-tensors `block_structure`), MX 1x32, NVFP4 1x16."""
    if fmt == "fp8":
        q = config["quantization_config"]
        b = q["weight_block_size"] if layout == "deepseek" else q["config_groups"]["group_0"]["weights"]["block_structure"]
        return int(b[0]), int(b[1])
    return (1, 16) if fmt == "nvfp4" else (1, 32)


def decode_one(layout, fmt, data, scale, tensor_scale, block):
    """The producer's float32 intermediate for one weight."""
    if layout == "gpt-oss":
        # transformers integrations/mxfp4.py convert_moe_packed_tensors: [E, rows, G, 16] -> [E, G*32, rows]
        # (the orientation GptOssExperts holds); turned back to the blocks' [E, rows, cols] here.
        stacked = data.dim() == 4
        d, s = (data, scale) if stacked else (data.unsqueeze(0), scale.unsqueeze(0))
        out = convert_moe_packed_tensors(d, s, dtype=torch.float32).transpose(1, 2).contiguous()
        return out if stacked else out[0]
    rows = data.shape[0]
    q = e2m1_values(data) if data.dtype == torch.uint8 else data.to(torch.float32)
    cols = q.shape[1]
    if fmt == "nvfp4":
        s = scale.to(torch.float32)
        if layout == "compressed-tensors":  # forward.py _dequantize: q * (weight_scale / global_scale)
            s = s / tensor_scale.to(torch.float32)
        else:  # ModelOpt NVFP4QTensor.dequantize: (weight_scale * weight_scale_2) first
            s = s * tensor_scale.to(torch.float32)
        return (groups(q, 16) * s.unsqueeze(-1)).reshape(rows, cols)
    # DeepSeek weight_dequant, compressed-tensors _dequantize (MX: decompress_mx_scale 2^(e-127)),
    # ModelOpt MXFP8QTensor.dequantize: one float32 product per element.
    return q * expand(scale_values(scale), rows, cols, *block)


def hf_decode(data, scale, block):
    """transformers' own CPU dequantization (Fp8Dequantize._dequantize_one), or None where it does not
    apply: it infers the block from the scale grid (rows // scale_rows), which is wrong or refused when
    the last block is partial (a 384x192 weight with a 3x2 grid of 128-blocks would use 128x96)."""
    if Fp8Dequantize is None or data.dim() != 2 or scale.dim() != 2:
        return None
    cols = data.shape[1] * (2 if data.dtype == torch.uint8 else 1)
    if (data.shape[0], cols) != (scale.shape[0] * block[0], scale.shape[1] * block[1]):
        return None
    q = data.view(torch.int8) if data.dtype == torch.uint8 else data  # int8 = packed E2M1
    if scale.dtype == torch.float8_e4m3fn:  # NVFP4's two-level scales are not handled
        return None
    try:
        return Fp8Dequantize(None)._dequantize_one(q, scale, output_dtype=torch.bfloat16)
    except ValueError:
        return None


def ct_decode(fmt, config, local):
    """compressed-tensors' own decompressor for one module's tensors (`local`: names without the
    module prefix). The newest API is `Compressor.decompress(state_dict, scheme)`; older ones have
    `decompress_weight(compressed_data, quantization_args)`."""
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

    q = config["quantization_config"]
    group = q["config_groups"]["group_0"]
    args = QuantizationArgs.model_validate(group["weights"])
    cls = BaseCompressor.get_value_from_registry(group.get("format") or q["format"])
    if hasattr(cls, "decompress_weight"):
        return cls(config=None).decompress_weight(compressed_data=local, quantization_args=args).float()
    scheme = QuantizationScheme(targets=group["targets"], weights=args)
    return cls.decompress(dict(local), scheme)["weight"].float()


def modelopt_decode(fmt, data, scale, tensor_scale):
    """ModelOpt's own dequantization (qtensor/mxfp8_tensor.py, qtensor/nvfp4_tensor.py)."""
    shape = (data.shape[0], data.shape[1] * (2 if fmt == "nvfp4" else 1))
    if fmt == "mxfp8":
        return MXFP8QTensor(shape, torch.float32, data).dequantize(torch.float32, scale=scale)
    qt = NVFP4QTensor(shape, torch.float32, data)
    return qt.dequantize(torch.float32, scale=scale, double_scale=tensor_scale, block_sizes={-1: 16})


def same_bf16(a, b):
    return torch.equal(a.to(torch.bfloat16).view(torch.int16), b.to(torch.bfloat16).view(torch.int16))


def decode(layout, fmt, tensors, config):
    """Decode every quantized weight of a checkpoint in `layout`/`fmt` (see the module header)."""
    out = Decoded()
    if layout == "dense":
        return out
    data_sfx, scale_sfx, tensor_sfx = SUFFIXES[(layout, fmt)]
    block = block_of(layout, fmt, config)
    for name, data in tensors.items():
        if not name.endswith(data_sfx) or data.dtype not in (torch.uint8, torch.float8_e4m3fn):
            continue
        base = name[: -len(data_sfx)]
        names = [base + data_sfx, base + scale_sfx] + ([base + tensor_sfx] if tensor_sfx else [])
        missing = [n for n in names if n not in tensors]
        if missing:
            out.problems.append(f"{name}: missing {', '.join(missing)}")
            continue
        scale = tensors[names[1]]
        tscale = tensors[names[2]] if tensor_sfx else None
        weight = base + ".weight" if layout != "gpt-oss" else base  # gpt-oss: experts.gate_up_proj
        values = decode_one(layout, fmt, data, scale, tscale, block)
        out.values[weight] = values
        out.used.update(names)
        checks = []
        if layout != "gpt-oss":
            checks.append(("transformers", lambda: hf_decode(data, scale, block)))
        else:
            out.upstream["transformers"] = out.upstream.get("transformers", 0) + 1  # decode_one is its code
        if HAVE_CT and layout == "compressed-tensors":
            local = {n[len(base) + 1 :]: tensors[n] for n in names}
            checks.append(("compressed_tensors", lambda: ct_decode(fmt, config, local)))
        if HAVE_MODELOPT and layout == "modelopt":
            checks.append(("modelopt", lambda: modelopt_decode(fmt, data, scale, tscale)))
        for who, run in checks:
            try:
                theirs = run()
            except Exception as e:  # an upstream decoder that refuses the output is a finding
                out.problems.append(f"{weight}: {who} could not decode it ({type(e).__name__}: {e})")
                continue
            if theirs is None:
                continue
            if same_bf16(theirs, values):
                out.upstream[who] = out.upstream.get(who, 0) + 1
            else:
                out.problems.append(f"{weight}: {who} decodes it differently")
    return out


def decode_input(kind, tensors):
    """The source checkpoint's weights as fp8kit's quantizer sees them: DeepSeek FP8 decoded to
    float32 (F32 or E8M0 scales, 128x128), or a dense checkpoint's BF16 tensors as they are."""
    if kind == "dense":
        return {n: t for n, t in tensors.items() if t.dtype == torch.bfloat16 and t.dim() == 2}
    cfg = {"quantization_config": {"weight_block_size": [128, 128]}}
    return decode("deepseek", "fp8", tensors, cfg).values
