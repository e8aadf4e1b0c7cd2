/**
 * Layout detection: from a parsed `config.json` (or null) and the tensor list, say which quantized
 * layout a checkpoint uses and pair every quantized weight with its scale tensor. Pure function,
 * no I/O; inconsistencies are returned as `problems`, never thrown, so `lint` can list them all
 * and `convert` can refuse the first.
 *
 *   detectLayout(config: unknown | null, tensors: readonly TensorEntry[]): DetectedLayout
 *
 * Rules (see docs/CHECKPOINTS.md sections 2-3):
 * - `X.weight_scale_inv` next to an F8_E4M3 `X.weight`: DeepSeek/HF `fp8-block`; the block comes from
 *   `quantization_config.weight_block_size` (default 128x128), `scale_fmt` from the same object.
 * - `X.weight_packed` U8 + `X.weight_scale` U8: compressed-tensors MXFP4 (group 32).
 * - F8_E4M3 `X.weight` + `X.weight_scale` U8/F8_E8M0: MXFP8; + a float `X.weight_scale`: CT FP8 block
 *   (block from `config_groups.*.weights.block_structure`, default 128x128).
 * - `X_blocks` U8 `[..., G, 16]` + `X_scales` U8 `[..., G]`: gpt-oss MXFP4.
 */
import type { Dtype } from "../safetensors/index.js";
import type {
  DetectedLayout,
  LayoutKind,
  LayoutProblem,
  QuantizedWeight,
  ScaleFormat,
  ScaleStorage,
  TensorEntry,
} from "./types.js";

const DEFAULT_FP8_BLOCK: [number, number] = [128, 128];
/** Group size of every MX format. */
export const MX_GROUP = 32;

function obj(x: unknown): Record<string, unknown> | null {
  return x !== null && typeof x === "object" && !Array.isArray(x) ? (x as Record<string, unknown>) : null;
}

/** `config.quantization_config` as an object, or null. */
export function quantizationConfig(config: unknown): Record<string, unknown> | null {
  return obj(obj(config)?.quantization_config);
}

function blockFrom(x: unknown): [number, number] | null {
  if (Array.isArray(x) && x.length === 2 && x.every((n) => Number.isSafeInteger(n) && n > 0)) {
    return [x[0] as number, x[1] as number];
  }
  return null;
}

/** The FP8 block of a compressed-tensors config (first group with `block_structure`). */
function ctBlock(qc: Record<string, unknown> | null): [number, number] | null {
  const groups = obj(qc?.config_groups);
  if (!groups) return null;
  for (const g of Object.values(groups)) {
    const b = blockFrom(obj(obj(g)?.weights)?.block_structure);
    if (b) return b;
  }
  return null;
}

/** How a scale tensor of this dtype stores its scales, or null when it is no scale dtype of these layouts. */
export function scaleStorageOf(dtype: Dtype): ScaleStorage | null {
  switch (dtype) {
    case "F32":
      return "f32";
    case "BF16":
      return "bf16";
    case "F16":
      return "f16";
    case "U8":
    case "F8_E8M0":
      return "ue8m0";
    default:
      return null;
  }
}

const cdiv = (a: number, b: number) => Math.ceil(a / b);

/** Expected scale shape of a weight of logical `shape` with `block` over the last two dims. */
export function expectedScaleShape(shape: readonly number[], block: readonly [number, number]): number[] {
  if (shape.length === 1) return [cdiv(shape[0], block[1])];
  const lead = shape.slice(0, -2);
  return [...lead, cdiv(shape[shape.length - 2], block[0]), cdiv(shape[shape.length - 1], block[1])];
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((v, i) => v === b[i]);

/** Detect the layout; see the file header for the rules. */
export function detectLayout(config: unknown | null, tensors: readonly TensorEntry[]): DetectedLayout {
  const byName = new Map<string, TensorEntry>();
  for (const t of tensors) byName.set(t.name, t);
  const qc = quantizationConfig(config);
  const method = typeof qc?.quant_method === "string" ? qc.quant_method : null;
  const problems: LayoutProblem[] = [];
  const quantized: QuantizedWeight[] = [];
  const consumed = new Set<string>();
  const kinds = new Set<LayoutKind>();
  const fp8Block = blockFrom(qc?.weight_block_size) ?? DEFAULT_FP8_BLOCK;
  const ctFp8Block = ctBlock(qc) ?? DEFAULT_FP8_BLOCK;

  const add = (
    kind: LayoutKind,
    w: Omit<QuantizedWeight, "scaleStorage" | "scaleDtype" | "scaleShape">,
    scale: TensorEntry | undefined,
  ) => {
    kinds.add(kind);
    consumed.add(w.data);
    if (!scale) {
      problems.push({
        code: "missing-scale",
        tensor: w.data,
        related: w.scale,
        message: `quantized weight "${w.data}" has no scale tensor "${w.scale}"`,
      });
      return;
    }
    consumed.add(scale.name);
    const storage = scaleStorageOf(scale.dtype);
    if (storage === null) {
      problems.push({
        code: "scale-dtype",
        tensor: scale.name,
        message: `scale "${scale.name}" has unsupported dtype ${scale.dtype}`,
      });
      return;
    }
    const want = expectedScaleShape(w.shape, w.block);
    if (!sameShape(want, scale.shape)) {
      problems.push({
        code: "scale-grid",
        tensor: scale.name,
        related: w.data,
        message:
          `scale "${scale.name}" has shape [${scale.shape}] but weight "${w.data}" of shape [${w.shape}] ` +
          `with ${w.block[0]}x${w.block[1]} blocks needs [${want}]`,
      });
      return;
    }
    quantized.push({ ...w, scaleStorage: storage, scaleDtype: scale.dtype, scaleShape: [...scale.shape] });
  };

  for (const t of tensors) {
    const n = t.name;
    if (n.endsWith(".weight_packed")) {
      const base = n.slice(0, -"_packed".length);
      const scale = byName.get(`${base}_scale`);
      const shape = [...t.shape];
      if (t.dtype !== "U8" || shape.length < 1) {
        problems.push({
          code: "weight-dtype",
          tensor: n,
          message: `packed weight "${n}" must be U8, got ${t.dtype}`,
        });
        continue;
      }
      shape[shape.length - 1] *= 2;
      add(
        "ct-mxfp4",
        {
          name: base,
          data: n,
          scale: `${base}_scale`,
          element: "float4_e2m1fn",
          packed: true,
          shape,
          block: [1, MX_GROUP],
        },
        scale,
      );
    } else if (n.endsWith("_blocks") && t.dtype === "U8" && byName.has(`${n.slice(0, -7)}_scales`)) {
      const base = n.slice(0, -7);
      const s = t.shape;
      if (s.length < 2) {
        problems.push({
          code: "weight-shape",
          tensor: n,
          message: `gpt-oss blocks "${n}" must have rank >= 2, got [${s}]`,
        });
        continue;
      }
      const shape = [...s.slice(0, -2), s[s.length - 2] * s[s.length - 1] * 2];
      add(
        "gpt-oss-mxfp4",
        {
          name: base,
          data: n,
          scale: `${base}_scales`,
          element: "float4_e2m1fn",
          packed: true,
          shape,
          block: [1, MX_GROUP],
        },
        byName.get(`${base}_scales`),
      );
    } else if (t.dtype === "F8_E4M3" && n.endsWith(".weight")) {
      const inv = byName.get(`${n}_scale_inv`);
      const sc = byName.get(`${n}_scale`);
      if (inv || (!sc && method !== "compressed-tensors")) {
        add(
          "fp8-block",
          {
            name: n,
            data: n,
            scale: `${n}_scale_inv`,
            element: "float8_e4m3fn",
            packed: false,
            shape: [...t.shape],
            block: fp8Block,
          },
          inv,
        );
      } else if (sc && (sc.dtype === "U8" || sc.dtype === "F8_E8M0")) {
        add(
          "ct-mxfp8",
          {
            name: n,
            data: n,
            scale: `${n}_scale`,
            element: "float8_e4m3fn",
            packed: false,
            shape: [...t.shape],
            block: [1, MX_GROUP],
          },
          sc,
        );
      } else {
        add(
          "ct-fp8-block",
          {
            name: n,
            data: n,
            scale: `${n}_scale`,
            element: "float8_e4m3fn",
            packed: false,
            shape: [...t.shape],
            block: ctFp8Block,
          },
          sc,
        );
      }
    }
  }
  for (const t of tensors) {
    if (t.name.endsWith("_scale_inv") && !consumed.has(t.name)) {
      const w = t.name.slice(0, -"_scale_inv".length);
      problems.push({
        code: "orphan-scale",
        tensor: t.name,
        related: w,
        message: `scale "${t.name}" has no F8_E4M3 weight "${w}"`,
      });
      consumed.add(t.name);
    }
  }
  const plain = tensors.filter((t) => !consumed.has(t.name));
  const kindList = [...kinds];
  if (kindList.length > 1) {
    problems.push({
      code: "mixed-layouts",
      tensor: quantized[0]?.data ?? "",
      message: `mixed quantized layouts: ${kindList.join(", ")}`,
    });
  }
  const kind: LayoutKind = kindList[0] ?? "unquantized";
  let scaleFmt: ScaleFormat | null = null;
  let block: [number, number] | null = null;
  if (kind === "fp8-block") {
    scaleFmt = qc?.scale_fmt === "ue8m0" ? "ue8m0" : "float";
    block = fp8Block;
  } else if (kind === "ct-fp8-block") {
    scaleFmt = "float";
    block = ctFp8Block;
  } else if (kind !== "unquantized") {
    scaleFmt = "ue8m0";
    block = [1, MX_GROUP];
  }
  if (kind === "fp8-block" && method !== null && method !== "fp8") {
    problems.push({
      code: "config-mismatch",
      tensor: "",
      message: `config.json quant_method is "${method}" but the tensors are DeepSeek/HF block FP8`,
    });
  }
  return {
    kind,
    label: labelOf(kind, scaleFmt, block, quantized.length),
    scaleFmt,
    block,
    quantized,
    plain,
    problems,
  };
}

function labelOf(
  kind: LayoutKind,
  fmt: ScaleFormat | null,
  block: [number, number] | null,
  n: number,
): string {
  const b = block ? `${block[0]}x${block[1]}` : "";
  switch (kind) {
    case "unquantized":
      return "unquantized (no quantized weights)";
    case "fp8-block":
      return `DeepSeek/HF block FP8 (${b} blocks, ${fmt} scales, ${n} quantized weights)`;
    case "ct-fp8-block":
      return `compressed-tensors FP8 block (${b} blocks, ${n} quantized weights)`;
    case "ct-mxfp8":
      return `compressed-tensors MXFP8 (groups of 32, ${n} quantized weights)`;
    case "ct-mxfp4":
      return `compressed-tensors MXFP4 (groups of 32, ${n} quantized weights)`;
    case "gpt-oss-mxfp4":
      return `gpt-oss MXFP4 (groups of 32, ${n} quantized weights)`;
    default:
      return kind satisfies never;
  }
}
