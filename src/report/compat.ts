import { conversionRefusal } from "../checkpoint/index.js";
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
  /** The `fp8kit convert` command that makes it load, for `needs-conversion` (and `requantizes`). */
  command: string | null;
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
 * BF16/F16/F32. `input` and `output` fill the suggested commands.
 */
export function compatibility(layout: ReportLayout, input = "<in>", output = "<out>"): CompatEntry[] {
  const n = layout.quantized.length;
  // Suggest only what convert accepts: the same rule convert applies before planning.
  const refusal = conversionRefusal(layout, { name: "bf16", dense: true });
  const toBf16 = refusal === null ? `fp8kit convert ${input} ${output} --to bf16` : null;
  const entry = (target: Target, status: CompatStatus, reason: string, command: string | null = null) => ({
    target,
    status,
    tensors: status === "loads" ? 0 : n,
    reason,
    command: status === "loads" ? null : command,
  });
  const convert = (target: Target, reason: string) =>
    entry(
      target,
      "needs-conversion",
      refusal === null ? reason : `${reason}; fp8kit cannot convert it: ${refusal}`,
      toBf16,
    );
  const k = layout.kind;
  if (k === "unquantized") {
    return TARGETS.map((t) => entry(t, "loads", "unquantized weights load everywhere"));
  }
  if (k === "unknown") {
    return TARGETS.map((t) => convert(t, "quantization declared but its tensors are not recognised"));
  }
  const fp8 = k === "fp8-block" || k === "ct-fp8-block" || k === "fp8-tensor" || k === "modelopt-fp8";
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
        `fp8kit audit ${input}`,
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
  for (const t of ["ascend-910b", "ascend-910c"] as const)
    out.push(convert(t, "no FP8/FP4 on Atlas A2/A3: needs BF16 (or INT8 W8A8)"));
  if (k === "ct-nvfp4" || k === "modelopt-nvfp4")
    out.push(convert("ascend-950", "NVFP4 (E4M3 scale per 16) is not an Ascend 950 format"));
  else out.push(entry("ascend-950", "loads", "Ascend 950 has FP8, MXFP8 and MXFP4"));
  out.push(convert("cpu", "CPU runtimes need BF16/F16/F32 weights"));
  return out;
}
