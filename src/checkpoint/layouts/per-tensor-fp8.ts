/**
 * FP8 weights with one scale per tensor and no ModelOpt description: `X.weight` F8_E4M3 or F8_E5M2
 * + a scalar `X.weight_scale` (compressed-tensors `float-quantized` with `strategy: "tensor"`,
 * FBGEMM/AutoFP8 exports). The value is `decode(code) * scale`.
 */
import { isScalar, perTensor } from "./recognizer.js";

export const perTensorFp8 = perTensor({
  kind: "fp8-tensor",
  family: "compressed-tensors",
  title: "FP8 with per-tensor scales",
  claims: (_ctx, _base, scale) => isScalar(scale),
  details: () => "one scale per tensor",
});
