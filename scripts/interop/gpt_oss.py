"""gpt-oss: a tiny MXFP4 checkpoint shaped like openai/gpt-oss-*, and transformers' own loader.

The DeepSeek sample has no stacked experts, and gpt-oss quantizes nothing else, so the gpt-oss
targets start from this fixture: a random 1-layer GptOssForCausalLM (transformers' own module
shapes) whose experts are replaced by random E2M1 codes and E8M0 scales in the released layout
(`*_blocks` U8 [E, rows, cols/32, 16], `*_scales` U8 [E, rows, cols/32], config as
openai/gpt-oss-20b's `quantization_config`). One group is all zero; random codes include -0 (0x8).
"""

import json
import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import GptOssConfig, GptOssForCausalLM
from transformers.utils import logging

logging.set_verbosity_error()  # the tiny config's RoPE and the CPU MXFP4 fallback are expected
logging.disable_progress_bar()
E, HIDDEN, INTER = 4, 96, 32  # HIDDEN != 2 * INTER, so a transposed expert weight cannot pass unnoticed
EXPERTS = "model.layers.0.mlp.experts."
NOT_CONVERTED = ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]


def make(path: Path) -> None:
    torch.manual_seed(0)
    cfg = GptOssConfig(vocab_size=128, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, head_dim=48, num_local_experts=E,
                       num_experts_per_tok=2, layer_types=["full_attention"], max_position_embeddings=64)  # fmt: skip
    state = {k: v.contiguous() for k, v in GptOssForCausalLM(cfg).to(torch.bfloat16).state_dict().items()}
    g = torch.Generator().manual_seed(1)
    for name, rows, cols in [("gate_up_proj", 2 * INTER, HIDDEN), ("down_proj", HIDDEN, INTER)]:
        del state[EXPERTS + name]  # BF16 [E, cols, rows] in the module; stored output-major as blocks
        blocks = torch.randint(0, 256, (E, rows, cols // 32, 16), generator=g, dtype=torch.uint8)
        blocks[0, 0, 0] = 0  # an all-zero group
        state[EXPERTS + name + "_blocks"] = blocks
        state[EXPERTS + name + "_scales"] = torch.randint(118, 125, (E, rows, cols // 32), generator=g, dtype=torch.uint8)
    path.mkdir(parents=True)
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    config = cfg.to_dict() | {"torch_dtype": "bfloat16"}
    config["quantization_config"] = {"modules_to_not_convert": NOT_CONVERTED, "quant_method": "mxfp4"}
    (path / "config.json").write_text(json.dumps(config, indent=2))


def load(path: Path):
    """transformers' GptOssForCausalLM.from_pretrained on CPU (MXFP4 experts are dequantized to BF16 by
    its Mxfp4HfQuantizer when no kernels are available): {parameter: tensor}, or the error text."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, info = GptOssForCausalLM.from_pretrained(
                str(path), dtype=torch.bfloat16, output_loading_info=True, ignore_mismatched_sizes=True
            )
    except Exception as e:
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160]}"
    if info.get("mismatched_keys"):
        return "shape mismatch " + "; ".join(f"{k}: checkpoint {list(a)}, model {list(b)}" for k, a, b in info["mismatched_keys"])
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys")}
    if bad:
        return f"loaded with {bad}"
    return {n: p.detach() for n, p in model.named_parameters()}


def check_loaded(path: Path, expected: dict) -> list:
    """Problems when transformers' loader does not give `expected` ({weight: [E, rows, cols] float})
    for the experts: GptOssExperts holds each as [E, cols, rows]."""
    params = load(path)
    if isinstance(params, str):
        return [f"transformers GptOssForCausalLM.from_pretrained: {params}"]
    problems = []
    for w, v in expected.items():
        p = params.get(w)
        want = v.transpose(-1, -2).to(torch.bfloat16)
        if p is None or p.shape != want.shape or not torch.equal(p.view(torch.int16), want.contiguous().view(torch.int16)):
            problems.append(f"transformers loads {w} differently" + (f" ({list(p.shape)})" if p is not None else ""))
    return problems
