"""What each loader reads from config.json / hf_quant_config.json and the tensors, checked on an output.

    check(layout, fmt, config, hf_quant, tensors, shapes) -> (problems, notes)

`shapes` maps each quantized weight to its logical [rows, cols]. Where the loader's own parser is
installed it parses the config (transformers' FineGrainedFP8Config and Mxfp4Config always;
compressed-tensors' QuantizationArgs when importable); the rest restates the loaders' rules from
their source, cited per check.
"""

import fnmatch
import re

import torch
from transformers.quantizers.quantizers_utils import should_convert_module
from transformers.utils.quantization_config import CompressedTensorsConfig, FineGrainedFP8Config, Mxfp4Config

from decode import HAVE_CT

# compressed-tensors quantization/quant_args.py QuantizationArgs fields (the model forbids others).
CT_ARG_FIELDS = {"num_bits", "type", "symmetric", "group_size", "strategy", "block_structure", "dynamic",
                 "actorder", "scale_dtype", "zp_dtype", "observer", "observer_kwargs"}  # fmt: skip
CT_FORMATS = {"fp8": "float-quantized", "mxfp8": "mxfp8-quantized", "mxfp4": "mxfp4-pack-quantized",
              "nvfp4": "nvfp4-pack-quantized"}  # fmt: skip
CT_SCHEMES = {"fp8": "CompressedTensorsW8A8Fp8", "mxfp8": "CompressedTensorsW8A8Mxfp8",
              "mxfp4": "CompressedTensorsW4A4Mxfp4", "nvfp4": "CompressedTensorsW4A4Fp4"}  # fmt: skip
# vllm/model_executor/layers/quantization/modelopt.py QUANT_ALGOS
MODELOPT_ALGOS = {"FP8", "FP8_PER_CHANNEL_PER_TOKEN", "FP8_PB_WO", "NVFP4", "W4A16_NVFP4", "MXFP8", "MIXED_PRECISION"}
F8, U8, F32, BF16 = torch.float8_e4m3fn, torch.uint8, torch.float32, torch.bfloat16


def cdiv(a, b):
    return -(-a // b)


def module_of(weight):
    return weight[: -len(".weight")] if weight.endswith(".weight") else weight


def vllm_ct_scheme(w, a, fmt):
    """vLLM compressed_tensors.py `_get_scheme_from_parts`, the branches a float weight can reach."""
    float_w = w.get("type") == "float" and w.get("symmetric", True)
    strategy, bits, group = w.get("strategy"), w.get("num_bits"), w.get("group_size")
    if float_w and strategy == "tensor_group" and bits == 4 and group == 16:  # _is_nvfp4_format
        if a is None:
            return "CompressedTensorsW4A4Fp4"  # use_a16=True
        if a.get("strategy") == "tensor_group" and a.get("num_bits") == 4 and a.get("group_size") == 16:
            return "CompressedTensorsW4A4Fp4"
        return "ValueError (NVFP4 weights need NVFP4 or no activations)"
    if float_w and strategy == "group" and bits == 4 and group == 32:  # _is_mxfp4 (no scale_dtype check)
        return "CompressedTensorsW4A4Mxfp4"
    if float_w and strategy == "group" and bits == 8 and group == 32 and w.get("scale_dtype") in ("torch.uint8", "uint8"):
        return "CompressedTensorsW8A8Mxfp8"  # _is_mxfp8 requires scale_dtype uint8
    activation_format = fmt in ("naive-quantized", "int-quantized", "float-quantized", "nvfp4-pack-quantized")
    if activation_format and float_w and bits == 8 and strategy in ("tensor", "channel", "block") and not w.get("dynamic"):
        if strategy == "block" and not w.get("block_structure"):
            return "ValueError (block strategy without block_structure)"
        if a is not None and a.get("type") == "float" and a.get("num_bits") == 8:
            if a.get("dynamic") or a.get("strategy") == "tensor":  # _is_fp8_w8a8
                return "CompressedTensorsW8A8Fp8"
        return "CompressedTensorsW8A16Fp8"
    return "NotImplementedError (No compressed-tensors compatible scheme was found)"


def expect(problems, tensors, name, dtypes, shape):
    """The tensor the loader allocates: present, one of `dtypes`, `shape`."""
    t = tensors.get(name)
    if t is None:
        problems.append(f"{name}: missing")
    elif t.dtype not in dtypes or list(t.shape) != list(shape):
        problems.append(f"{name}: {t.dtype} {list(t.shape)}, loader expects {'/'.join(map(str, dtypes))} {list(shape)}")


def unquantized_linears(tensors, quantized_modules):
    """Modules a loader would build as Linear that hold a plain 2-D float `.weight` (embeddings aside)."""
    return sorted(n[: -len(".weight")] for n, t in tensors.items()
                  if n.endswith(".weight") and t.dim() == 2 and t.is_floating_point() and t.dtype != F8
                  and "embed_tokens" not in n and n[: -len(".weight")] not in quantized_modules)  # fmt: skip


def check_ignore(problems, what, matches, tensors, quantized_modules):
    """Every plain linear is ignored and no quantized one is (the loader would otherwise build the
    wrong module and fail on the tensors)."""
    for m in unquantized_linears(tensors, quantized_modules):
        if not matches(m):
            problems.append(f"{what}: {m} is not quantized but not ignored")
    for m in quantized_modules:
        if matches(m):
            problems.append(f"{what}: {m} is quantized but ignored")


def check_deepseek(cfg, tensors, shapes, problems, notes):
    q = cfg.get("quantization_config") or {}
    if q.get("quant_method") != "fp8":
        problems.append(f"quant_method {q.get('quant_method')!r}, transformers/vLLM Fp8Config read 'fp8'")
    try:  # transformers utils/quantization_config.py (validates block size, scale_fmt)
        hf = FineGrainedFP8Config.from_dict(dict(q))
        notes.append(f"transformers FineGrainedFP8Config: block {list(hf.weight_block_size)}, scale_fmt {hf.scale_fmt}")
    except Exception as e:
        problems.append(f"transformers FineGrainedFP8Config refuses it: {e}")
        return
    br, bc = q.get("weight_block_size", [128, 128])
    for w, (r, c) in shapes.items():
        s = w[: -len(".weight")] + ".weight_scale_inv"
        expect(problems, tensors, w, [F8], [r, c])
        expect(problems, tensors, s, [F32, torch.float8_e8m0fnu], [cdiv(r, br), cdiv(c, bc)])
        st = tensors.get(s)
        if st is not None and st.dtype == torch.float8_e8m0fnu and q.get("scale_fmt") != "ue8m0":
            problems.append(f"{s}: F8_E8M0 scales need scale_fmt 'ue8m0' (FP8Linear allocates float32 otherwise)")
        if st is not None and q.get("scale_fmt") == "ue8m0":
            m, _ = torch.frexp(st.to(F32))
            if not bool((m == 0.5).all()):
                problems.append(f"{s}: scale_fmt 'ue8m0' but scales are not powers of two")


def check_ct(fmt, cfg, tensors, shapes, problems, notes):
    q = cfg.get("quantization_config") or {}
    for k, v in [("quant_method", "compressed-tensors"), ("format", CT_FORMATS[fmt]), ("quantization_status", "compressed")]:
        if q.get(k) != v:
            problems.append(f"quantization_config.{k} = {q.get(k)!r}, expected {v!r}")
    groups = q.get("config_groups") or {}
    if list(groups) != ["group_0"]:
        problems.append(f"config_groups {list(groups)}: expected one group")
        return
    g = groups["group_0"]
    extra = set(g) - {"targets", "weights", "input_activations", "output_activations", "format"}
    if extra or g.get("targets") != ["Linear"]:
        problems.append(f"config group: keys {sorted(extra)} / targets {g.get('targets')}")
    w, a = g.get("weights") or {}, g.get("input_activations")
    for what, args in [("weights", w), ("input_activations", a)]:
        if args is not None and set(args) - CT_ARG_FIELDS:
            problems.append(f"{what}: fields {sorted(set(args) - CT_ARG_FIELDS)} are not QuantizationArgs fields")
    if HAVE_CT:
        from compressed_tensors.quantization import QuantizationArgs

        for args in [w] + ([a] if a else []):
            try:
                QuantizationArgs.model_validate(args)
            except Exception as e:
                problems.append(f"compressed_tensors QuantizationArgs refuses {args}: {e}")
    scheme = vllm_ct_scheme(w, a, g.get("format") or q.get("format"))
    if scheme != CT_SCHEMES[fmt]:
        problems.append(f"vLLM scheme selection gives {scheme}, expected {CT_SCHEMES[fmt]}")
    notes.append(f"vLLM scheme: {scheme}{' (weight-only)' if a is None else ''}")
    try:  # transformers quantizers/quantizer_compressed_tensors.py hands off to the package
        CompressedTensorsConfig.from_dict(dict(q))
    except ImportError:
        notes.append("transformers cannot read it without the compressed-tensors package")
    except Exception as e:
        problems.append(f"transformers CompressedTensorsConfig refuses it: {e}")
    for wname, (r, c) in shapes.items():
        base = wname[: -len(".weight")]
        if fmt == "fp8":
            bn, bk = w.get("block_structure", [128, 128])
            expect(problems, tensors, base + ".weight", [F8], [r, c])
            expect(problems, tensors, base + ".weight_scale", [F32, BF16], [cdiv(r, bn), cdiv(c, bk)])
        elif fmt == "mxfp8":
            expect(problems, tensors, base + ".weight", [F8], [r, c])
            expect(problems, tensors, base + ".weight_scale", [U8], [r, c // 32])
        else:
            expect(problems, tensors, base + ".weight_packed", [U8], [r, c // 2])
            if fmt == "mxfp4":
                expect(problems, tensors, base + ".weight_scale", [U8], [r, c // 32])
            else:
                expect(problems, tensors, base + ".weight_scale", [F8], [r, c // 16])
                expect(problems, tensors, base + ".weight_global_scale", [F32], [1])
                if a is not None:
                    expect(problems, tensors, base + ".input_global_scale", [F32], [1])
    ignore = q.get("ignore") or []
    # compressed-tensors utils/match.py match_name: "re:" prefix = re.match, otherwise exact equality
    matches = lambda m: any(re.match(t[3:], m) if t.startswith("re:") else t == m for t in ignore)  # noqa: E731
    check_ignore(problems, "ignore", matches, tensors, {module_of(w) for w in shapes})


def check_modelopt(fmt, cfg, hfq, tensors, shapes, problems, notes):
    q = cfg.get("quantization_config") or {}
    if hfq is None:
        problems.append("no hf_quant_config.json (vLLM's ModelOpt get_config_filenames)")
        return
    hq = hfq.get("quantization") or {}
    algo = str(hq.get("quant_algo", "")).upper()
    if (hfq.get("producer") or {}).get("name") != "modelopt":
        problems.append("hf_quant_config.json producer.name is not 'modelopt'")
    if algo not in MODELOPT_ALGOS:
        problems.append(f"quant_algo {algo!r} is not one vLLM accepts")
    required = ["kv_cache_quant_algo", "exclude_modules"] + (["group_size"] if "NVFP4" in algo else [])
    for k in required:  # ModelOptNvFp4Config / ModelOptMxFp8Config._from_config
        if k not in hq:
            problems.append(f"hf_quant_config.json quantization.{k} missing (vLLM raises)")
    if not isinstance(hq.get("exclude_modules", []), list):
        problems.append("exclude_modules is not a list")
    allowed = ("MXFP8",) if fmt == "mxfp8" else ("NVFP4", "W4A16_NVFP4")
    if algo not in allowed:
        problems.append(f"quant_algo {algo}, expected {' or '.join(allowed)}")
    if not str(q.get("quant_method", "")).lower().startswith("modelopt") or str(q.get("quant_algo", "")).upper() != algo:
        problems.append("config.json quantization_config: quant_method must start with 'modelopt' and quant_algo match")
    method = "modelopt_mxfp8" if "MXFP8" in algo else "modelopt_fp4" if "FP4" in algo else "modelopt"
    notes.append(f"vLLM method: {method} ({algo})")
    if q.get("ignore") != hq.get("exclude_modules"):
        problems.append("config.json ignore differs from hf_quant_config.json exclude_modules")
    for wname, (r, c) in shapes.items():
        base = wname[: -len(".weight")]
        if fmt == "mxfp8":  # ModelOptMxFp8LinearMethod: e4m3 weight, 2-D uint8 scale
            expect(problems, tensors, base + ".weight", [F8], [r, c])
            expect(problems, tensors, base + ".weight_scale", [U8], [r, c // 32])
        else:  # ModelOptNvFp4LinearMethod / W4A16
            expect(problems, tensors, base + ".weight", [U8], [r, c // 2])
            expect(problems, tensors, base + ".weight_scale", [F8], [r, c // 16])
            expect(problems, tensors, base + ".weight_scale_2", [F32], [])
            if algo == "NVFP4":  # W4A4 allocates input_scale with torch.empty: it must be in the checkpoint
                expect(problems, tensors, base + ".input_scale", [F32], [])
    exclude = hq.get("exclude_modules") or []
    # vLLM modelopt.py is_layer_excluded: exact, substring (legacy), then fnmatch
    matches = lambda m: any(p == m or p in m or fnmatch.fnmatch(m, p) for p in exclude)  # noqa: E731
    check_ignore(problems, "exclude_modules", matches, tensors, {module_of(w) for w in shapes})


def check_gpt_oss(cfg, tensors, shapes, problems, notes):
    q = cfg.get("quantization_config") or {}
    if q.get("quant_method") != "mxfp4":
        problems.append(f"quant_method {q.get('quant_method')!r}, transformers' Mxfp4Config reads 'mxfp4'")
    try:  # transformers utils/quantization_config.py Mxfp4Config
        hf = Mxfp4Config.from_dict(dict(q))
        if set(q) - set(hf.to_dict()):
            problems.append(f"keys {sorted(set(q) - set(hf.to_dict()))} are not Mxfp4Config's")
    except Exception as e:
        problems.append(f"transformers Mxfp4Config refuses it: {e}")
    for wname, shape in shapes.items():  # integrations/mxfp4.py: blocks [E, rows, G, 16], scales [E, rows, G]
        *lead, c = shape
        if len(lead) != 2 or ".experts." not in wname:
            problems.append(f"{wname}: Mxfp4GptOssExperts holds stacked experts only ({shape})")
        expect(problems, tensors, wname + "_blocks", [U8], [*lead, c // 32, 16])
        expect(problems, tensors, wname + "_scales", [U8], [*lead, c // 32])
    keep = q.get("modules_to_not_convert") or []
    # transformers quantizers_utils.should_convert_module (the quantizer's own matcher)
    check_ignore(problems, "modules_to_not_convert", lambda m: not should_convert_module(m, keep), tensors,
                 {module_of(w) for w in shapes})  # fmt: skip


def check_dense(cfg, tensors, problems):
    if "quantization_config" in cfg:
        problems.append("dense output still has quantization_config (transformers would quantize again)")
    if cfg.get("torch_dtype") != "bfloat16":
        problems.append(f"torch_dtype {cfg.get('torch_dtype')!r}, expected 'bfloat16'")
    odd = [n for n, t in tensors.items() if not t.is_floating_point() or t.dtype == F8 or "scale" in n.split(".")[-1]]
    if odd:
        problems.append(f"dense output holds quantized tensors: {odd[:3]}")


def check(layout, fmt, cfg, hfq, tensors, shapes):
    problems, notes = [], []
    if layout == "dense":
        check_dense(cfg, tensors, problems)
    elif layout == "deepseek":
        check_deepseek(cfg, tensors, shapes, problems, notes)
    elif layout == "compressed-tensors":
        check_ct(fmt, cfg, tensors, shapes, problems, notes)
    elif layout == "modelopt":
        check_modelopt(fmt, cfg, hfq, tensors, shapes, problems, notes)
    elif layout == "gpt-oss":
        check_gpt_oss(cfg, tensors, shapes, problems, notes)
    return problems, notes
