"""Ascend W8A8_DYNAMIC / W4A8_DYNAMIC outputs of fp8kit against msModelSlim's steps run in PyTorch.

fp8kit reproduces msModelSlim's data-free min-max path in its own arithmetic (float32 ops rounded to
BF16 one by one, ../shared/docs/ASCEND.md §5 marks that equivalence [derived]). This script runs the
same steps as PyTorch tensor operations on BF16 tensors, the way msModelSlim's code does them
(`msmodelslim/ir/kernels/fp8_block.py` FP8 -> BF16, `core/quantizer/impl/minmax.py` +
`ir/api/impl/int_quantization.py` scale and codes, `save/utils/pack.py` INT4 packing and scale_bias),
and requires the codes and scales fp8kit wrote to be identical. It also reads each output as
vllm-ascend allocates it (ASCEND.md §2.1, §4.2): dtypes, `[out, 1]` scales, zero offsets,
kv_b_proj FLOAT, a description entry for every weight.

Usage: python scripts/interop/ascend.py [--keep]   (run.sh runs it after check_layouts.py)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample" / "deepseek-v3-tiny"


def load_dir(d: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted(d.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def fp8_to_bf16(w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """msModelSlim's converter: float32 product with the repeated 128x128 scale grid, then BF16."""
    m, n = w.shape[-2:]
    grid = s.repeat_interleave(128, -2).repeat_interleave(128, -1)[..., :m, :n]
    return (w.to(torch.float32) * grid).to(torch.bfloat16)


def minmax_int(w: torch.Tensor, qmax: int, qmin: int) -> tuple[torch.Tensor, torch.Tensor]:
    """WeightPerChannelMinmax on a BF16 weight: per-row min/max with 0, max(-min, max) / qmax, eps floor, round, clamp."""
    eps = torch.tensor(torch.finfo(torch.float32).eps).to(w.dtype)
    mn = torch.minimum(torch.amin(w, dim=-1), torch.zeros((), dtype=w.dtype))
    mx = torch.maximum(torch.amax(w, dim=-1), torch.zeros((), dtype=w.dtype))
    scale = torch.maximum(-mn, mx) / float(qmax)
    scale = torch.maximum(scale, eps)
    q = (w / scale.unsqueeze(-1)).round_().clamp(qmin, qmax).to(torch.int8)
    return q, scale


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Two INT4 codes per byte along the output dimension: row 2j low nibble, row 2j+1 high nibble."""
    lo = q[..., 0::2, :].to(torch.int16) & 0x0F
    hi = q[..., 1::2, :].to(torch.int16) & 0x0F
    return ((hi << 4) | lo).to(torch.uint8).view(torch.int8)


def scale_bias(q: torch.Tensor, scale: torch.Tensor, chunks: int) -> torch.Tensor:
    deq = q.to(torch.float64) * scale.to(torch.float64).unsqueeze(-1)
    rows, cols = deq.shape[-2:]
    return (8 * deq.reshape(*deq.shape[:-1], chunks, cols // chunks).sum(-1)).to(torch.float32)


def check(out: Path, target: str) -> list[str]:
    fails: list[str] = []
    src = load_dir(SAMPLE)
    res = load_dir(out)
    desc = json.loads((out / "quant_model_description.json").read_text())
    cfg = json.loads((out / "config.json").read_text())
    if "quantization_config" in cfg:
        fails.append("config.json still has quantization_config")
    if desc.get("model_quant_type") != "W8A8_DYNAMIC":
        fails.append(f"model_quant_type {desc.get('model_quant_type')}")
    n_layers = cfg["num_hidden_layers"]
    compared = 0
    ulp_diffs = [0, 0, 0.0]
    for name, t in res.items():
        if name.endswith(".weight") and t.dim() >= 2 and name not in desc:
            fails.append(f"{name}: no description entry (vllm-ascend KeyError)")
        kind = desc.get(name)
        if not name.endswith(".weight") or kind not in ("W8A8_DYNAMIC", "W4A8_DYNAMIC"):
            continue
        base = name[: -len(".weight")]
        if "kv_b_proj" in name:
            fails.append(f"{name}: kv_b_proj quantized")
        w = fp8_to_bf16(src[name], src[base + ".weight_scale_inv"])
        int4 = kind == "W4A8_DYNAMIC"
        q, s = minmax_int(w, 7, -8) if int4 else minmax_int(w, 127, -128)
        codes = pack_int4(q) if int4 else q
        got_s = res[base + ".weight_scale"]
        off = res[base + ".weight_offset"]
        if got_s.dtype != torch.float32 or list(got_s.shape) != [q.shape[-2], 1]:
            fails.append(f"{name}: weight_scale {got_s.dtype} {list(got_s.shape)}")
        if list(off.shape) != list(got_s.shape) or bool(off.ne(0).any()):
            fails.append(f"{name}: weight_offset not zeros shaped as the scale")
        if t.dtype != torch.int8 or not torch.equal(t, codes):
            fails.append(f"{name}: {int(t.ne(codes).sum())} codes differ from PyTorch")
        if not torch.equal(got_s.squeeze(-1), s.to(torch.float32)):
            fails.append(f"{name}: {int(got_s.squeeze(-1).ne(s.to(torch.float32)).sum())} scales differ")
        if int4:
            chunks = 16 if "down_proj" in name else 1
            sb = res[base + ".scale_bias"]
            want = scale_bias(q, s, chunks)
            if list(sb.shape) != [q.shape[-2], chunks] or not torch.equal(sb, want):
                fails.append(f"{name}: scale_bias differs (max {float((sb - want).abs().max())})")
            # msModelSlim sums float32 products (an order PyTorch leaves open): count the last-bit differences.
            f32 = 8 * (q.to(torch.float32) * s.to(torch.float32).unsqueeze(-1)).reshape(
                *q.shape[:-1], chunks, q.shape[-1] // chunks
            ).sum(-1)
            ulp_diffs[0] += int(sb.ne(f32).sum())
            ulp_diffs[1] += sb.numel()
            rel = ((sb - f32).abs() / f32.abs().clamp_min(1e-30)).max()
            ulp_diffs[2] = max(ulp_diffs[2], float(rel))
        compared += 1
    for name, t in res.items():
        if desc.get(name) == "FLOAT" and name.endswith(".weight") and name + "_scale_inv" not in src:
            if not torch.equal(t, src[name]):
                fails.append(f"{name}: FLOAT tensor differs from the input")
        elif desc.get(name) == "FLOAT" and name.endswith(".weight"):
            base = name[: -len(".weight")]
            if not torch.equal(t, fp8_to_bf16(src[name], src[base + ".weight_scale_inv"])):
                fails.append(f"{name}: FLOAT dequantization differs from msModelSlim's")
    mtp = [n for n in res if n.startswith(f"model.layers.{n_layers}.")]
    if not mtp or any(desc.get(n) != "FLOAT" for n in mtp):
        fails.append("MTP layer not written FLOAT")
    print(f"  {target}: {compared} quantized weights compared with PyTorch, {len(fails)} failures")
    if ulp_diffs[1]:
        print(
            f"    scale_bias vs a float32 torch sum: {ulp_diffs[0]} of {ulp_diffs[1]} values differ "
            f"(largest relative difference {ulp_diffs[2]:.2e}); fp8kit rounds the exact sum once"
        )
    return fails


def main() -> int:
    keep = "--keep" in sys.argv
    tmp = Path(tempfile.mkdtemp(prefix="fp8kit-ascend-"))
    fails: list[str] = []
    print("Ascend outputs vs msModelSlim's steps in PyTorch:")
    for target in ("w8a8", "w4a8"):
        out = tmp / target
        subprocess.run(
            ["node", str(ROOT / "dist" / "cli" / "main.js"), "convert", str(SAMPLE), str(out), "--to", target],
            check=True,
            capture_output=True,
        )
        fails += [f"{target}: {f}" for f in check(out, target)]
    for f in fails:
        print(f"  FAIL {f}")
    if keep:
        print(f"outputs kept in {tmp}")
    else:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
