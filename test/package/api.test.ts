/**
 * The public API, pinned: every name `fp8kit` and `fp8kit/node` export (values and types), as
 * TypeScript sees the entry points. A name added or removed here is an API decision to review.
 * Kernels, worker pools, the conversion journal, markers and WebAssembly stay internal.
 */
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** Sorted names a module exports (values and types), from the TypeScript checker. */
function exportsOf(files: string[]): string[][] {
  const program = ts.createProgram(
    files.map((f) => `${root}${f}`),
    {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ["node"],
    },
  );
  const checker = program.getTypeChecker();
  return files.map((f) => {
    const source = program.getSourceFile(`${root}${f}`);
    const symbol = source && checker.getSymbolAtLocation(source);
    if (!symbol) throw new Error(`${f}: not a module`);
    return checker
      .getExportsOfModule(symbol)
      .map((s) => s.name)
      .sort();
  });
}

/** `fp8kit` (src/index.ts): browser-safe. */
const FP8KIT = [
  "ASCEND_DESCRIPTION_FILE",
  "AscendProblem",
  "AscendQuantType",
  "AuditOptions",
  "AuditResult",
  "BlobCheckpointDir",
  "BlobSource",
  "BufferSource",
  "ByteFormatName",
  "ByteSource",
  "COMPARE_FORMAT_NAMES",
  "ChartLibraries",
  "Checkpoint",
  "CheckpointDir",
  "CheckpointError",
  "CheckpointErrorCode",
  "CheckpointTensor",
  "CompareFormat",
  "ComputedScales",
  "ConfigTarget",
  "ConvertError",
  "ConvertErrorCode",
  "ConvertOptions",
  "ConvertPlan",
  "DTYPES",
  "DataScaling",
  "DequantizeOptions",
  "DetectedLayout",
  "Dtype",
  "ElementFormat",
  "EncodeInput",
  "EncodeOptions",
  "ErrorAccumulator",
  "ErrorMetrics",
  "FORMAT_NAMES",
  "Finding",
  "FindingCode",
  "FormatComparison",
  "FormatError",
  "FormatErrorCode",
  "FormatInfo",
  "FormatName",
  "Fp8kitError",
  "HttpCheckpointDir",
  "HttpSource",
  "INDEX_FILE_NAME",
  "InspectOptions",
  "InspectResult",
  "Int8ChannelBand",
  "LAYOUT_NAMES",
  "LayoutKind",
  "LayoutName",
  "LayoutProblem",
  "LayoutProblemCode",
  "LintOptions",
  "LintResult",
  "MetadataInput",
  "MetricsOptions",
  "OpAction",
  "Overflow",
  "ParsedHeader",
  "PlannedShard",
  "PresetName",
  "QuantError",
  "QuantErrorCode",
  "QuantInput",
  "QuantizeOptions",
  "QuantizedTensor",
  "QuantizedWeight",
  "RULE_NAMES",
  "RemoteAddress",
  "RemoteOptions",
  "ReportData",
  "ReportError",
  "ReportErrorCode",
  "ReportOptions",
  "RequantReport",
  "Rounding",
  "RuleName",
  "SELECTION_PRESETS",
  "SafetensorsError",
  "SafetensorsErrorCode",
  "SafetensorsFile",
  "SafetensorsLayout",
  "ScaleArray",
  "ScaleConversion",
  "ScaleException",
  "ScaleFormat",
  "ScaleRounding",
  "ScaleRuleInfo",
  "ScaleStorage",
  "Scheme",
  "SelectOptions",
  "SelectionPreset",
  "Severity",
  "ShardIndex",
  "ShardOpener",
  "TARGET_NAMES",
  "TargetName",
  "TensorAudit",
  "TensorChoice",
  "TensorDescriptor",
  "TensorEntry",
  "TensorInfo",
  "TensorOp",
  "TensorRow",
  "TensorSelection",
  "TensorWithData",
  "TypedTensor",
  "WordFormatName",
  "ascendDescription",
  "auditCheckpoint",
  "buildIndexJson",
  "buildReportData",
  "checkAscendDescription",
  "computeScales",
  "convertScales",
  "decode",
  "decodeInt8Channel",
  "decodeInto",
  "decodeTable",
  "dequantize",
  "detectLayout",
  "encode",
  "encodeInto",
  "errorMetrics",
  "float32BitsEncoder",
  "formatInfo",
  "fp8BlockToBf16",
  "inspectCheckpoint",
  "int8ChannelScale",
  "isFormatName",
  "isFp8kitError",
  "isRemoteAddress",
  "lintCheckpoint",
  "openRemoteCheckpoint",
  "packFp4",
  "parseIndexJson",
  "planConversion",
  "planLayout",
  "presets",
  "quantize",
  "quantizeInt8Channel",
  "renderReportHtml",
  "resolveRemoteAddress",
  "rewriteConfig",
  "scaleRules",
  "selectTensors",
  "serializeSafetensors",
  "unpackFp4",
];

/** What `fp8kit/node` (src/node.ts) adds: the file-system entry points. */
const NODE_ONLY = [
  "ConvertEvent",
  "ConvertResult",
  "FetchStats",
  "NodeCheckpointDir",
  "NodeFileSource",
  "PathOptions",
  "RunOptions",
  "SafetensorsFileWriter",
  "ShardedWriteResult",
  "ShardedWriter",
  "ShardedWriterOptions",
  "TensorBytesSource",
  "TensorReport",
  "VerifyResult",
  "WriteReportResult",
  "auditPath",
  "convertCheckpoint",
  "inspectPath",
  "lintPath",
  "openCheckpoint",
  "writeReport",
  "writeSafetensorsFile",
  "writeShardedCheckpoint",
];

describe("public API", () => {
  const [fp8kit, node] = exportsOf(["src/index.ts", "src/node.ts"]);

  it("fp8kit exports exactly the pinned names", () => {
    expect(fp8kit).toEqual(FP8KIT);
  });

  it("fp8kit/node exports fp8kit's names and the pinned file-system entry points", () => {
    expect(node).toEqual([...FP8KIT, ...NODE_ONLY].sort());
  });

  it("the built entry points export no runtime value outside the pinned lists", async () => {
    const built = await import(`${root}dist/index.js`);
    const builtNode = await import(`${root}dist/node.js`);
    expect(Object.keys(built).filter((k) => !FP8KIT.includes(k))).toEqual([]);
    expect(Object.keys(builtNode).filter((k) => !FP8KIT.includes(k) && !NODE_ONLY.includes(k))).toEqual([]);
    expect(typeof builtNode.convertCheckpoint).toBe("function");
  });
});
