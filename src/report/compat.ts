import { ASCEND_DESCRIPTION_FILE, conversionRefusal } from "../checkpoint/index.js";
import { isRemoteAddress } from "../safetensors/index.js";
import type { ReportLayout } from "./layout.js";

/** Serving targets of the compatibility matrix. */
export const TARGETS = [
  "vllm-sglang-hopper",
  "vllm-sglang-blackwell",
  "ascend-910b",
  "ascend-910c",
  "ascend-950",
  "cpu",
] as const;
export type Target = (typeof TARGETS)[number];

/** `loads`: as is; `requantizes`: loads, but the runtime requantizes tensors at load; `needs-conversion`. */
export type CompatStatus = "loads" | "requantizes" | "needs-conversion";

export interface CompatEntry {
  target: Target;
  status: CompatStatus;
  /** Tensors requantized at load (`requantizes`) or to convert (`needs-conversion`); 0 for `loads`. */
  tensors: number;
  /** One line: why. */
  reason: string;
  /**
   * The `fp8kit convert` command that makes it load, for `needs-conversion` (and `requantizes`); for
   * `loads`, a conversion that serves it better (`--to w8a8` on Ascend 910B/910C), else null.
   */
  command: string | null;
}

/** What the compatibility matrix knows of a checkpoint besides its layout. */
export interface CompatModel {
  /** A DeepSeek-style MLA model (`isDeepSeekStyle`): Ascend 910B/910C get `--to w8a8` suggested. */
  deepseekStyle?: boolean;
  /** Ascend's `quant_model_description.json` when present (`inspect`'s `ascend` section). */
  ascend?: { modelQuantType: string | null } | null;
}

const LABELS: Record<Target, string> = {
  "vllm-sglang-hopper": "vLLM/SGLang, Hopper (SM90)",
  "vllm-sglang-blackwell": "vLLM/SGLang, Blackwell (SM100/SM120)",
  "ascend-910b": "Ascend 910B (Atlas A2)",
  "ascend-910c": "Ascend 910C (Atlas A3)",
  "ascend-950": "Ascend 950 (Atlas 350)",
  cpu: "CPU runtimes (llama.cpp, transformers CPU)",
};

/** A human label for a target. */
export function targetLabel(t: Target): string {
  return LABELS[t];
}

/**
 * Where the checkpoint loads: Hopper DeepGEMM reads F32 block scales; Blackwell's DeepGEMM path
 * requantizes block FP8 whose scales are not declared UE8M0 (`sf = 2^ceil(log2(amax/448))`) at
 * load (vLLM `utils/deep_gemm.py` `VLLM_USE_DEEP_GEMM_E8M0` and `requant_weight_ue8m0_inplace`;
 * SGLang `deep_gemm_wrapper/configurer.py` `DEEPGEMM_SCALE_UE8M0`); MX and NVFP4 need Blackwell
 * tensor cores (DeepGEMM README, sm100 packed UE8M0 scales), though gpt-oss MXFP4 also runs on
 * Hopper through vLLM's Marlin/Triton MoE kernels (`quantization/mxfp4.py`); Ascend 910B/910C have
 * no FP8 or FP4, BF16 or INT8 W8A8 only (deepseek-ai/DeepSeek-V3 PR #903, tilelang-ascend PR #1177,
 * CANN 9.0 `aclDataType` reference); Ascend 950 has FP8, MXFP8, MXFP4 and HiF8 (same `aclDataType`
 * reference; vllm-ascend `device/device_op.py`, MXFP MoE only on A5); CPU runtimes need
 * BF16/F16/F32. For a DeepSeek-style model in FP8 or BF16, Atlas A2/A3 get `--to w8a8`: INT8
 * W8A8_DYNAMIC, the format DeepSeek deployments there run (vllm-ascend docs/source/tutorials/models/
 * DeepSeek-R1.md), at about half of BF16's memory. The Ascend msModelSlim layouts load through
 * vllm-ascend only, and only with their `quant_model_description.json` (vllm-ascend
 * quantization/utils.py:120-175; ASCEND.md §1.4, §6). `input` and `output` fill the suggested commands.
 */
export function compatibility(
  layout: ReportLayout,
  input = "<in>",
  output = "<out>",
  model: CompatModel = {},
): CompatEntry[] {
  const n = layout.quantized.length;
  // convert reads local files only, and a remote audit needs --sample (it would download every weight).
  const remote = isRemoteAddress(input);
  const local = remote ? `<local copy of ${input}>` : input;
  // Suggest only what convert accepts: the same rule convert applies before planning.
  const refusal = conversionRefusal(layout, { name: "bf16", dense: true });
  const toBf16 = refusal === null ? `fp8kit convert ${local} ${output} --to bf16` : null;
  const entry = (target: Target, status: CompatStatus, reason: string, command: string | null = null) => ({
    target,
    status,
    tensors: status === "loads" ? 0 : n,
    reason,
    command,
  });
  const convert = (target: Target, reason: string) =>
    entry(
      target,
      "needs-conversion",
      refusal === null ? reason : `${reason}; fp8kit cannot convert it: ${refusal}`,
      toBf16,
    );
  const k = layout.kind;
  const fp8 = k === "fp8-block" || k === "ct-fp8-block" || k === "fp8-tensor" || k === "modelopt-fp8";
  const w8a8Ok = conversionRefusal(layout, { name: "w8a8", dense: false }) === null;
  const toW8a8 =
    model.deepseekStyle && (fp8 || k === "unquantized") && w8a8Ok
      ? `fp8kit convert ${local} ${output} --to w8a8`
      : null;
  if (k === "unquantized") {
    return TARGETS.map((t) =>
      toW8a8 && (t === "ascend-910b" || t === "ascend-910c")
        ? entry(t, "loads", "BF16 loads; INT8 W8A8_DYNAMIC (--to w8a8) needs about half the memory", toW8a8)
        : entry(t, "loads", "unquantized weights load everywhere"),
    );
  }
  if (k === "ascend-w8a8" || k === "ascend-w4a8" || k === "ascend-mxfp8") {
    const described = model.ascend?.modelQuantType ?? null;
    const what =
      described ??
      (k === "ascend-w4a8" ? "W4A8_DYNAMIC" : k === "ascend-mxfp8" ? "W8A8_MXFP8" : "W8A8_DYNAMIC");
    const gpu = `msModelSlim ${what} layout: read by vllm-ascend and SGLang's Ascend backend, not by GPU stacks`;
    const out = [convert("vllm-sglang-hopper", gpu), convert("vllm-sglang-blackwell", gpu)];
    const ascendRow = (t: Target, native: boolean, why: string): CompatEntry =>
      !native
        ? convert(t, why)
        : model.ascend
          ? entry(t, "loads", why)
          : entry(
              t,
              "needs-conversion",
              `no ${ASCEND_DESCRIPTION_FILE}: vllm-ascend cannot load it (run fp8kit lint)`,
            );
    const mx = k === "ascend-mxfp8";
    const int8 = `INT8 ${what} through vllm-ascend (${ASCEND_DESCRIPTION_FILE}; --quantization ascend, auto-detected from v0.18)`;
    // MXFP8 on A2/A3: INT8 is what they run (from the MXFP8 weights, no BF16 copy in between).
    const mxOnA2 = "MXFP8 needs Ascend 950: no FP8 on Atlas A2/A3; INT8 W8A8_DYNAMIC (--to w8a8) runs there";
    for (const t of ["ascend-910b", "ascend-910c"] as const)
      out.push(
        mx && w8a8Ok
          ? entry(t, "needs-conversion", mxOnA2, `fp8kit convert ${local} ${output} --to w8a8`)
          : ascendRow(t, !mx, mx ? "MXFP8 needs Ascend 950: no FP8 on Atlas A2/A3" : int8),
      );
    out.push(
      ascendRow(
        "ascend-950",
        true,
        mx
          ? "W8A8_MXFP8 is Ascend 950's MX format (vllm-ascend w8a8_mxfp8.py)"
          : `${int8}; its W8A8/W4A8 MoE kernels target A2/A3`,
      ),
    );
    out.push(convert("cpu", "CPU runtimes need BF16/F16/F32 weights"));
    return out;
  }
  if (k === "unknown") {
    return TARGETS.map((t) => convert(t, "quantization declared but its tensors are not recognised"));
  }
  const mx8 = k === "ct-mxfp8" || k === "modelopt-mxfp8";
  const fp4 = k === "ct-mxfp4" || k === "gpt-oss-mxfp4" || k === "ct-nvfp4" || k === "modelopt-nvfp4";
  const out: CompatEntry[] = [];
  // Hopper
  if (fp8)
    out.push(
      entry("vllm-sglang-hopper", "loads", "FP8 E4M3 with float scales runs on SM90 (DeepGEMM/CUTLASS)"),
    );
  else if (k === "gpt-oss-mxfp4")
    out.push(
      entry("vllm-sglang-hopper", "loads", "gpt-oss MXFP4 runs on SM90 through Marlin/Triton kernels"),
    );
  else
    out.push(
      convert(
        "vllm-sglang-hopper",
        `${fp4 ? "FP4" : mx8 ? "MXFP8" : "this format"} needs Blackwell tensor cores`,
      ),
    );
  // Blackwell
  const blockFp8 = k === "fp8-block" || k === "ct-fp8-block";
  if (blockFp8 && layout.scaleFmt !== "ue8m0") {
    out.push(
      entry(
        "vllm-sglang-blackwell",
        "requantizes",
        "block scales are not declared UE8M0: DeepGEMM requantizes them to powers of two at load (run `fp8kit audit` for the error this adds)",
        remote ? `fp8kit audit ${input} --sample 4` : `fp8kit audit ${input}`,
      ),
    );
  } else if (blockFp8) {
    out.push(
      entry(
        "vllm-sglang-blackwell",
        "loads",
        "UE8M0 block scales are used as is (verify with `fp8kit audit`)",
      ),
    );
  } else {
    out.push(entry("vllm-sglang-blackwell", "loads", "FP8/MX/NVFP4 are native on SM100"));
  }
  for (const t of ["ascend-910b", "ascend-910c"] as const) {
    if (toW8a8) {
      const why = "no FP8 on Atlas A2/A3: INT8 W8A8_DYNAMIC, about half of BF16's memory (or --to bf16)";
      out.push(entry(t, "needs-conversion", why, toW8a8));
    } else out.push(convert(t, "no FP8/FP4 on Atlas A2/A3: needs BF16 (or INT8 W8A8)"));
  }
  if (k === "ct-nvfp4" || k === "modelopt-nvfp4")
    out.push(convert("ascend-950", "NVFP4 (E4M3 scale per 16) is not an Ascend 950 format"));
  else out.push(entry("ascend-950", "loads", "Ascend 950 has FP8, MXFP8 and MXFP4"));
  out.push(convert("cpu", "CPU runtimes need BF16/F16/F32 weights"));
  return out;
}
