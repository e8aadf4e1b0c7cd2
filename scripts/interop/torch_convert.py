"""The torch-CPU conversion script a user writes, for `npm run bench:convert` to time fp8kit against.

    python torch_convert.py SRC DST --to bf16 [--threads N]
    python torch_convert.py SRC DST --to fp8  [--threads N]

`--to bf16` follows DeepSeek's `inference/fp8_cast_bf16.py`: shard by shard, `load_file`, every FP8
weight that has a `weight_scale_inv` is multiplied in float32 by its scale expanded over 128x128
blocks, cast to BF16, and saved under the same shard name without the scale; the index loses the scale
entries and the config its `quantization_config`. DeepSeek's script runs a Triton kernel on the GPU;
on a CPU users expand the scale with `repeat_interleave`, which is what is done here.

`--to fp8` quantizes a BF16 DeepSeek-V3 checkpoint to block FP8 with UE8M0 scales as DeepGEMM's
`per_block_cast_to_fp8(x, use_ue8m0=True)` does: zero padding to 128, amax of each 128x128 block in
float32 clamped at 1e-4, sf = 2^ceil(log2(amax / 448)) (`ceil_to_ue8m0`), codes = e4m3(x * (1 / sf)),
stored as `weight` (F8_E4M3) + `weight_scale_inv` (F32, the power of two sf).

Other files (tokenizer, generation config...) are copied. The last line printed is JSON:
{"seconds", "import_s", "max_rss_bytes", "tensors", "converted"}.
"""

import argparse
import json
import os
import re
import resource
import shutil
import sys
import time

T_START = time.perf_counter()
import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

IMPORT_S = time.perf_counter() - T_START
BLOCK = 128
E4M3_MAX = 448.0
# The DeepSeek-V3 release quantizes the linear projections, not the MTP `eh_proj` (nor embeddings,
# heads, norms or the router, whose names do not end in `_proj.weight` / `_proj_with_mqa.weight`).
QUANTIZED = re.compile(r"_proj(_with_mqa)?\.weight$")
KEPT = re.compile(r"eh_proj|shared_head")


def expand(scale, rows, cols):
    """A [ceil(rows/128), ceil(cols/128)] scale grid repeated over its blocks and cropped to the weight."""
    return scale.repeat_interleave(BLOCK, dim=0)[:rows].repeat_interleave(BLOCK, dim=1)[:, :cols]


def fp8_to_bf16(weight, scale_inv):
    rows, cols = weight.shape
    return (weight.float() * expand(scale_inv.float(), rows, cols)).to(torch.bfloat16)


def bf16_to_fp8_ue8m0(x):
    rows, cols = x.shape
    pr, pc = -(-rows // BLOCK) * BLOCK, -(-cols // BLOCK) * BLOCK
    padded = torch.zeros(pr, pc, dtype=x.dtype)
    padded[:rows, :cols] = x
    blocks = padded.view(pr // BLOCK, BLOCK, pc // BLOCK, BLOCK)
    amax = blocks.abs().float().amax(dim=(1, 3), keepdim=True).clamp(min=1e-4)
    sf = torch.pow(2.0, torch.ceil(torch.log2(amax / E4M3_MAX)))
    codes = (blocks * (1.0 / sf)).to(torch.float8_e4m3fn)
    codes = codes.view(pr, pc)[:rows, :cols].contiguous()
    return codes, sf.view(pr // BLOCK, pc // BLOCK).contiguous()


def shards_of(src):
    index_path = os.path.join(src, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            weight_map = json.load(f)["weight_map"]
        return weight_map, sorted(set(weight_map.values()))
    names = sorted(n for n in os.listdir(src) if n.endswith(".safetensors"))
    return None, names


def find_tensor(src, weight_map, name, loaded):
    """A tensor from the shard being converted, or (as DeepSeek's script allows) from another shard."""
    if name in loaded:
        return loaded[name]
    if weight_map is None or name not in weight_map:
        return None
    with safe_open(os.path.join(src, weight_map[name]), framework="pt") as f:
        return f.get_tensor(name)


def convert(src, dst, to):
    os.makedirs(dst, exist_ok=True)
    weight_map, shards = shards_of(src)
    new_map = {}
    tensors = converted = 0
    for shard in shards:
        state = load_file(os.path.join(src, shard))
        out = {}
        for name, t in state.items():
            tensors += 1
            if to == "bf16":
                if name.endswith("_scale_inv"):
                    continue
                scale = find_tensor(src, weight_map, name + "_scale_inv", state)
                if t.element_size() == 1 and scale is not None:
                    out[name] = fp8_to_bf16(t, scale)
                    converted += 1
                else:
                    out[name] = t
            elif t.dim() == 2 and t.is_floating_point() and QUANTIZED.search(name) and not KEPT.search(name):
                out[name], out[name + "_scale_inv"] = bf16_to_fp8_ue8m0(t)
                converted += 1
            else:
                out[name] = t
        save_file(out, os.path.join(dst, shard), metadata={"format": "pt"})
        new_map.update((name, shard) for name in out)
        del state, out
    total = 0
    for shard in shards:
        total += os.path.getsize(os.path.join(dst, shard))
    with open(os.path.join(dst, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": new_map}, f, indent=2)
    for name in os.listdir(src):
        if name.endswith(".safetensors") or name == "model.safetensors.index.json":
            continue
        path = os.path.join(src, name)
        if name == "config.json":
            with open(path) as f:
                config = json.load(f)
            config.pop("quantization_config", None)
            if to == "fp8":
                config["quantization_config"] = {
                    "quant_method": "fp8",
                    "fmt": "e4m3",
                    "activation_scheme": "dynamic",
                    "weight_block_size": [BLOCK, BLOCK],
                    "scale_fmt": "ue8m0",
                }
            with open(os.path.join(dst, name), "w") as f:
                json.dump(config, f, indent=2)
        elif os.path.isfile(path):
            shutil.copyfile(path, os.path.join(dst, name))
    return tensors, converted


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--to", choices=["bf16", "fp8"], default="bf16")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    tensors, converted = convert(a.src, a.dst, a.to)
    # ru_maxrss is in KiB on Linux.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {
        "seconds": round(time.perf_counter() - T_START, 3),
        "import_s": round(IMPORT_S, 3),
        "max_rss_bytes": rss,
        "tensors": tensors,
        "converted": converted,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
