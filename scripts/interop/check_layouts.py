"""`npm run interop`: every `fp8kit convert` target checked against the Python ecosystem's own code.

Sources: the bundled sample (DeepSeek-V3 FP8, F32 scales), its BF16 and UE8M0 copies (made by
fp8kit), and a tiny gpt-oss MXFP4 checkpoint (gpt_oss.py). fp8kit converts them into each target;
each output is loaded with `safetensors.torch.load_file` and:
  - its config.json / hf_quant_config.json and tensor dtypes/shapes are checked against what the
    loaders read (configs.py); gpt-oss outputs are loaded by transformers' GptOssForCausalLM;
  - every quantized weight is decoded with the producer's decompression semantics in torch, and by
    the producer's own code where installed (decode.py);
  - relabels: the decoded output equals the decoded input bit for bit; requantizations: codes and
    scales equal what the producer's quantizer gives from the same input (quantize.py);
  - fp8kit's own BF16 dequantization of the output (`convert OUT OUT.bf16 --to bf16`) is compared
    with the torch decode (max |difference|).
Prints a table and exits 1 on any mismatch. Everything is written under a temporary directory.
"""

import sys

sys.dont_write_bytecode = True  # nothing written into the repository

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import configs  # noqa: E402
import gpt_oss  # noqa: E402
import quantize as Q  # noqa: E402
import torch  # noqa: E402
from decode import HAVE_CT, HAVE_MODELOPT, SUFFIXES, decode, decode_one  # noqa: E402
from formats import bits32, scale_values, unpack_nibbles  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample" / "deepseek-v3-tiny"


@dataclass
class Target:
    source: str  # "fp8" (the sample, F32 scales), "ue8m0", "bf16" (its copies) or "gpt-oss" (gpt_oss.py)
    args: list
    layout: str
    fmt: str | None
    kind: str  # dequant | relabel | lossy-relabel | requant
    reference: object = None  # quantize.py function for requant targets
    optional: bool = False  # skipped with a note when the CLI refuses it (a target still being built)


CT, MO, GO = "compressed-tensors", "modelopt", "gpt-oss"
TARGETS = [
    Target("fp8", ["--to", "bf16"], "dense", None, "dequant"),
    Target("fp8", ["--to", "fp8"], "deepseek", "fp8", "requant", Q.vllm_requant),
    Target("fp8", ["--to", "fp8", "--scale-dtype", "e8m0"], "deepseek", "fp8", "requant", Q.vllm_requant),
    Target("fp8", ["--to", "fp8", "--requant", "sglang"], "deepseek", "fp8", "requant", Q.sglang_requant),
    Target("fp8", ["--layout", CT, "--scale-dtype", "f32"], CT, "fp8", "relabel"),
    Target("fp8", ["--layout", CT, "--allow-lossy"], CT, "fp8", "lossy-relabel"),
    Target("fp8", ["--to", "mxfp8"], CT, "mxfp8", "requant", Q.ct_mxfp8),
    Target("fp8", ["--to", "mxfp4"], CT, "mxfp4", "requant", Q.ct_mxfp4),
    Target("fp8", ["--layout", MO, "--to", "mxfp8"], MO, "mxfp8", "requant", Q.modelopt_mxfp8),
    # gpt-oss quantizes only stacked experts, which DeepSeek has not: everything is dequantized
    Target("fp8", ["--layout", GO, "--to", "mxfp4"], "dense", None, "dequant"),
    Target("fp8", ["--to", "nvfp4"], CT, "nvfp4", "requant", Q.ct_nvfp4, optional=True),
    Target("fp8", ["--layout", MO, "--to", "nvfp4"], MO, "nvfp4", "requant", Q.modelopt_nvfp4, optional=True),
    Target("ue8m0", ["--layout", "deepseek"], "deepseek", "fp8", "relabel"),
    Target("ue8m0", ["--layout", CT], CT, "fp8", "relabel"),
    Target("ue8m0", ["--layout", CT, "--to", "mxfp8"], CT, "mxfp8", "relabel"),
    Target("ue8m0", ["--layout", MO, "--to", "mxfp8"], MO, "mxfp8", "relabel"),
    Target("bf16", ["--to", "fp8"], "deepseek", "fp8", "requant", Q.deepgemm_quant),
    Target("bf16", ["--to", "mxfp8"], CT, "mxfp8", "requant", Q.ct_mxfp8),
    Target("bf16", ["--to", "mxfp4"], CT, "mxfp4", "requant", Q.ct_mxfp4),
    Target("bf16", ["--layout", MO, "--to", "mxfp8"], MO, "mxfp8", "requant", Q.modelopt_mxfp8),
    Target("bf16", ["--to", "nvfp4"], CT, "nvfp4", "requant", Q.ct_nvfp4, optional=True),
    Target("bf16", ["--layout", MO, "--to", "nvfp4"], MO, "nvfp4", "requant", Q.modelopt_nvfp4, optional=True),
    Target("gpt-oss", ["--to", "bf16"], "dense", None, "dequant"),
    Target("gpt-oss", ["--layout", GO], GO, "mxfp4", "relabel"),
    Target("gpt-oss", ["--layout", GO, "--requantize"], GO, "mxfp4", "requant", Q.triton_mxfp4),
    # gpt-oss's BF16 experts [E, in, out] quantized as transformers' quantize_to_mxfp4 does (along `in`)
    Target("gpt-oss-bf16", ["--layout", GO], GO, "mxfp4", "requant", Q.triton_mxfp4),
]

# Linears that share one per-tensor NVFP4 scale: llm-compressor `update_fused_layer_weight_global_scales`
# (src/llmcompressor/modifiers/utils/helpers.py: q/k/v, MLA q_a + kv_a_proj_with_mqa, gate/up) and
# ModelOpt `preprocess_linear_fusion` (modelopt/torch/export/quant_utils.py: linears sharing an input).
FUSED = [("q_proj", "k_proj", "v_proj"), ("q_a_proj", "kv_a_proj_with_mqa"), ("gate_proj", "up_proj")]


class Checkpoint:
    """A checkpoint directory: every shard's tensors, config.json, hf_quant_config.json."""

    def __init__(self, path: Path):
        self.path = path
        self.tensors = {}
        for f in sorted(path.glob("*.safetensors")):
            self.tensors.update(load_file(str(f)))
        self.config = json.loads((path / "config.json").read_text())
        hq = path / "hf_quant_config.json"
        self.hf_quant = json.loads(hq.read_text()) if hq.exists() else None


def fp8kit(src: Path, out: Path, args: list) -> str | None:
    """Run `fp8kit convert`; None on success, else the CLI's error line."""
    cmd = ["node", str(ROOT / "dist" / "cli" / "main.js"), "convert", str(src), str(out), *args, "--force"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode == 0:
        return None
    lines = [ln for ln in (r.stderr + r.stdout).splitlines() if "error" in ln] or (r.stderr + r.stdout).splitlines()
    return lines[-1] if lines else f"exit {r.returncode}"


def module_of(weight: str) -> str:
    return weight[: -len(".weight")] if weight.endswith(".weight") else weight


def stored(t: Target, ck: Checkpoint, weight: str, rows: int):
    """(codes as U8 [rows, bytes], block scale multipliers as float32, per-tensor scale or None)."""
    data_sfx, scale_sfx, tensor_sfx = SUFFIXES[(t.layout, t.fmt)]
    base = module_of(weight)
    d = ck.tensors[base + data_sfx]
    ts = ck.tensors[base + tensor_sfx] if tensor_sfx else None
    return d.view(torch.uint8).reshape(rows, -1), scale_values(ck.tensors[base + scale_sfx]), ts


def differing(a: torch.Tensor, b: torch.Tensor) -> int:
    """Elements whose float32 bits differ (so -0.0 and +0.0 differ)."""
    return int((bits32(a) != bits32(b)).sum())


def fused_amax(inputs: dict, weight: str) -> torch.Tensor:
    """The amax the producer's per-tensor NVFP4 scale comes from: the largest over the weight's fusion group."""
    parent, _, leaf = module_of(weight).rpartition(".")
    members = next((g for g in FUSED if leaf in g), (leaf,))
    return max(inputs[f"{parent}.{m}.weight"].abs().amax() for m in members if f"{parent}.{m}.weight" in inputs)


# compressed-tensors' rules are rules of BF16 models: the reference runs them on the weight as a
# BF16 tensor (BF16 arithmetic, as llm-compressor on a BF16 model); fp8kit sends other inputs
# (the FP8 sample dequantized) through BF16 first (docs/CONVERT.md, "Scale rules").
CT_RULES = (Q.ct_mxfp8, Q.ct_mxfp4, Q.ct_nvfp4)


def compare_requant(t: Target, ck: Checkpoint, inputs: dict, values: dict) -> tuple[str, bool]:
    codes = scales = total_c = total_s = zero_sign = globals_ = 0
    four_bit = t.fmt in ("mxfp4", "nvfp4")
    if t.reference in CT_RULES:
        inputs = {k: v.to(torch.bfloat16) for k, v in inputs.items()}
    for w in values:
        x = inputs[w].reshape(-1, inputs[w].shape[-1])
        if t.fmt == "nvfp4":
            ref_codes, ref_scales, ref_ts = t.reference(x, fused_amax(inputs, w))
        else:
            ref_codes, ref_scales, ref_ts = t.reference(x)
        mine, s, ts = stored(t, ck, w, x.shape[0])
        if four_bit:  # compare elements, not bytes
            mine, ref_codes = unpack_nibbles(mine), unpack_nibbles(ref_codes)
        sign = 0x8 if four_bit else 0x80
        diff = mine != ref_codes
        codes += int(diff.sum())
        total_c += mine.numel()
        zero_sign += int((diff & ((mine ^ ref_codes) == sign) & ((mine & (sign - 1)) == 0)).sum())
        scales += differing(s.reshape(-1), ref_scales.reshape(-1))
        total_s += s.numel()
        if ref_ts is not None:
            globals_ += differing(ts.reshape(-1), ref_ts.reshape(-1))
            total_s += 1
    scales += globals_
    text = f"codes {codes}/{total_c} differ, scales {scales}/{total_s}" + (f" ({globals_} per-tensor)" if globals_ else "")
    if codes and zero_sign == codes:
        text += " (codes: sign of zero only)"
    return text, codes == 0 and scales == 0


def compare(t: Target, ck: Checkpoint, src: Checkpoint, inputs: dict, values: dict) -> tuple[str, bool]:
    """The producer check of one output (see the module header)."""
    if t.kind == "requant":
        return compare_requant(t, ck, inputs, values)
    if t.kind == "lossy-relabel":  # codes copied, F32 scales cast to the output's scale storage (RNE)
        bad, dtypes = 0, set()
        for w in values:
            base = module_of(w)
            stored_dtype = ck.tensors[base + SUFFIXES[(t.layout, t.fmt)][1]].dtype
            dtypes.add(str(stored_dtype).replace("torch.", ""))
            scale = src.tensors[base + ".weight_scale_inv"].to(stored_dtype)
            bad += differing(values[w], decode_one("deepseek", "fp8", src.tensors[w], scale, None, (128, 128))) > 0
        return f"== input codes x {'/'.join(sorted(dtypes))}(scales): {bad}/{len(values)} differ", bad == 0
    if t.kind == "relabel":
        bad = sum(differing(values[w], inputs[w]) > 0 for w in values)
        return f"decoded == decoded input: {bad}/{len(values)} differ", bad == 0
    # dequant: the BF16 output against the BF16 rounding of the producer's decode, in the orientation
    # the model's own module holds (transformers' GptOssExperts: [E, cols, rows])
    bad = 0
    for w in values:
        want = inputs[w].transpose(-1, -2) if t.source == "gpt-oss" else inputs[w]
        bad += values[w].shape != want.shape or differing(values[w], want.to(torch.bfloat16).float()) > 0
    what = "== transformers' dequantization" if t.source == "gpt-oss" else "== DeepSeek weight_dequant"
    return f"{what}: {bad}/{len(values)} differ", bad == 0


def fp8kit_bf16(t: Target, out: Path, values: dict) -> tuple[str, bool]:
    """fp8kit's own BF16 dequantization of the output against the torch decode. gpt-oss experts come
    out input-major, as transformers' GptOssExperts holds them (the decode's last two dims swapped)."""
    if t.layout == "dense":
        return "(is BF16)", True
    err = fp8kit(out, out.with_name(out.name + ".bf16"), ["--to", "bf16"])
    if err:
        return f"fp8kit cannot read it back: {err}", False
    mine = Checkpoint(out.with_name(out.name + ".bf16")).tensors
    worst, missing = 0.0, 0
    for w, v in values.items():
        if t.layout == GO:
            v = v.transpose(-1, -2)
        if w not in mine or mine[w].shape != v.shape:
            missing += 1
            continue
        worst = max(worst, float((mine[w].float() - v.to(torch.bfloat16).float()).abs().max()))
    text = f"max|d| {worst:.3g}" + (f", {missing} missing or reshaped" if missing else "")
    return text, worst == 0 and missing == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the notes of every target")
    opts = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fp8kit-interop-"))
    try:
        return run(tmp, opts)
    finally:
        if opts.keep:
            print(f"outputs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def load_sources(tmp: Path):
    """The four sources, their decoded weights (what fp8kit's quantizer sees) and which are quantized."""
    paths = {"fp8": SAMPLE, "bf16": tmp / "src-bf16", "ue8m0": tmp / "src-ue8m0", "gpt-oss": tmp / "src-gpt-oss",
             "gpt-oss-bf16": tmp / "src-gpt-oss-bf16"}  # fmt: skip
    for name, args in [("bf16", ["--to", "bf16"]), ("ue8m0", ["--to", "fp8", "--scale-dtype", "e8m0"])]:
        err = fp8kit(SAMPLE, paths[name], args)
        if err:
            raise SystemExit(f"cannot make the {name} copy of the sample: {err}")
    gpt_oss.make(paths["gpt-oss"])
    err = fp8kit(paths["gpt-oss"], paths["gpt-oss-bf16"], ["--to", "bf16"])
    if err:
        raise SystemExit(f"cannot make the BF16 copy of the gpt-oss checkpoint: {err}")
    sources = {k: Checkpoint(p) for k, p in paths.items()}
    inputs = {}
    for k, layout, cfg in [("fp8", "deepseek", None), ("ue8m0", "deepseek", None), ("gpt-oss", GO, None)]:
        d = decode(layout, "fp8" if layout == "deepseek" else "mxfp4", sources[k].tensors,
                   cfg or {"quantization_config": {"weight_block_size": [128, 128]}})  # fmt: skip
        inputs[k] = d.values
        up = "".join(f"; {who} agreed on {n}" for who, n in d.upstream.items())
        print(f"source {k}: {len(d.values)} quantized weights decoded{up}; {len(d.problems)} problems")
    inputs["bf16"] = {w: sources["bf16"].tensors[w] for w in inputs["fp8"]}
    # The BF16 experts are input-major; the quantizer sees each matrix output-major (transposed).
    bf = sources["gpt-oss-bf16"].tensors
    inputs["gpt-oss-bf16"] = {w: bf[w].float().transpose(-1, -2).contiguous() for w in inputs["gpt-oss"]}
    loaded = gpt_oss.check_loaded(paths["gpt-oss"], inputs["gpt-oss"])
    print(f"source gpt-oss: transformers GptOssForCausalLM loads it {'as decoded' if not loaded else loaded}")
    return paths, sources, inputs


def run(tmp: Path, opts) -> int:
    print(f"torch {torch.__version__}; compressed-tensors {'yes' if HAVE_CT else 'not installed (torch re-implementation)'}; "
          f"modelopt {'yes' if HAVE_MODELOPT else 'not installed (torch re-implementation)'}")  # fmt: skip
    paths, sources, inputs = load_sources(tmp)
    rows, failures, details = [], 0, []
    for i, t in enumerate(TARGETS):
        label = " ".join(t.args)
        out = tmp / f"t{i:02d}"
        err = fp8kit(paths[t.source], out, t.args)
        if err:
            skip = t.optional
            rows.append([t.source, label, t.kind, "-", "-", "-", ("not available: " if skip else "") + err[-90:], "-",
                         "skip" if skip else "FAIL"])  # fmt: skip
            failures += not skip
            continue
        ck, src, quantized = Checkpoint(out), sources[t.source], set(inputs[t.source])
        if t.layout == "dense":
            dec = decode("dense", None, ck.tensors, ck.config)
            dec.values = {w: ck.tensors[w].float() for w in quantized if w in ck.tensors}
            dec.used = set(dec.values)
        else:
            dec = decode(t.layout, t.fmt, ck.tensors, ck.config)
        problems, notes = configs.check(t.layout, t.fmt, ck.config, ck.hf_quant, ck.tensors,
                                        {w: list(v.shape) for w, v in dec.values.items()})  # fmt: skip
        problems += dec.problems
        if set(dec.values) != quantized:
            problems.append(f"weights: {sorted(set(dec.values) - quantized)[:2]} extra, {sorted(quantized - set(dec.values))[:2]} missing")
        for name, tensor in ck.tensors.items():  # everything else is copied as it was
            if name not in dec.used and name not in src.tensors:
                problems.append(f"{name}: not in the input")
            elif name not in dec.used and not torch.equal(tensor.view(torch.uint8), src.tensors[name].view(torch.uint8)):
                problems.append(f"{name}: changed, should be a copy")
        values = {w: v for w, v in dec.values.items() if w in quantized}
        verdict, ok1 = compare(t, ck, src, inputs[t.source], values)
        own, ok2 = fp8kit_bf16(t, out, values)
        upstream = ", ".join(f"{who} {n}" for who, n in dec.upstream.items())
        if t.source.startswith("gpt-oss"):  # transformers' own loader must give the decoded (or input) values
            want = {w: (inputs[t.source][w] if t.kind in ("relabel", "dequant") else values[w]) for w in values}
            loader = gpt_oss.check_loaded(out, want)
            problems += loader
            upstream = ", ".join(filter(None, [upstream, "from_pretrained " + ("ok" if not loader else "FAILS")]))
        ok = ok1 and ok2 and not problems
        failures += not ok
        cfg = "ok" if not problems else f"{len(problems)} problem(s)"
        rows.append([t.source, label, t.kind, str(len(values)), cfg, upstream or "-", verdict, own, "ok" if ok else "MISMATCH"])
        details += [f"  [{label} from {t.source}] {p}" for p in problems[:6]]
        if len(problems) > 6:
            details.append(f"  [{label} from {t.source}] ... {len(problems) - 6} more")
        if opts.verbose:
            details += [f"  [{label} from {t.source}] note: {n}" for n in notes]
    head = ["source", "fp8kit convert", "kind", "weights", "config+tensors", "upstream code", "vs producer",
            "fp8kit BF16 vs torch", "result"]  # fmt: skip
    widths = [max(len(str(r[c])) for r in [head, *rows]) for c in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    if details:
        print("details:")
        print("\n".join(details))
    checked = sum(r[-1] != "skip" for r in rows)
    skipped = len(rows) - checked
    print(f"{checked - failures} passed, {failures} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
