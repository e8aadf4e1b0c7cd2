"""Compare two safetensors checkpoints tensor by tensor, by name (sharding and order may differ).

    python compare_checkpoints.py A B

Every tensor must have the same dtype, shape and bytes in both. Prints one JSON line
{"tensors", "identical", "differ": [...], "only_a": [...], "only_b": [...]} and exits 1 when any
tensor differs or is missing on one side.
"""

import json
import os
import sys

import torch
from safetensors import safe_open


def names_in(d):
    where = {}
    for shard in sorted(n for n in os.listdir(d) if n.endswith(".safetensors")):
        with safe_open(os.path.join(d, shard), framework="pt") as f:
            for name in f.keys():
                where[name] = os.path.join(d, shard)
    return where


def tensor(path, name):
    with safe_open(path, framework="pt") as f:
        return f.get_tensor(name)


def same(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))


def main():
    a_dir, b_dir = sys.argv[1], sys.argv[2]
    a, b = names_in(a_dir), names_in(b_dir)
    differ = []
    common = sorted(set(a) & set(b))
    for name in common:
        ta, tb = tensor(a[name], name), tensor(b[name], name)
        if not same(ta, tb):
            differ.append(f"{name}: {ta.dtype}{list(ta.shape)} vs {tb.dtype}{list(tb.shape)}")
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    result = {
        "tensors": len(common),
        "identical": len(common) - len(differ),
        "differ": differ[:20],
        "only_a": only_a[:20],
        "only_b": only_b[:20],
    }
    print(json.dumps(result))
    return 1 if differ or only_a or only_b else 0


if __name__ == "__main__":
    sys.exit(main())
