/**
 * The input of a conversion (Node): a checkpoint directory or one `.safetensors` file, opened
 * through the safetensors layer's `NodeCheckpointDir`, with its config.json and ModelOpt's
 * hf_quant_config.json (directories only) and the fingerprint of its files (for the job id).
 */
import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ASCEND_DESCRIPTION_FILE, parseConfigJson } from "../checkpoint/index.js";
import {
  type Checkpoint,
  type CheckpointTensor,
  openCheckpointIn,
  SafetensorsError,
} from "../safetensors/index.js";
import { NodeCheckpointDir } from "../safetensors/node.js";
import { ConvertError } from "./errors.js";
import type { InputFile } from "./journal.js";

/** ModelOpt's description of how the input is quantized; never true of an output fp8kit writes. */
export const HF_QUANT_CONFIG = "hf_quant_config.json";

/** An opened input: keep `checkpoint` open for the data reads, close it when done. */
export interface InputInfo {
  /** The directory holding the input. */
  dir: string;
  /** True for a checkpoint directory, false for one `.safetensors` file. */
  isDir: boolean;
  config: Record<string, unknown> | null;
  hfQuantConfig: Record<string, unknown> | null;
  /** Ascend's `quant_model_description.json` parsed, or null. */
  ascendDescription: Record<string, unknown> | null;
  checkpoint: Checkpoint;
  tensors: CheckpointTensor[];
  /** Size and mtime of every shard, config.json and hf_quant_config.json: what the job id fingerprints. */
  files: InputFile[];
}

/** The input's directory; an index file or any other path is refused (convert's own rule). */
async function openDir(path: string): Promise<NodeCheckpointDir> {
  try {
    const dir = await NodeCheckpointDir.open(resolve(path));
    if (dir.indexFile === null) return dir;
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    if (e.code === "not-found")
      throw new ConvertError("input-missing", `${path}: no such file or directory`, { cause: e });
    if (e.code !== "invalid-argument") throw e;
  }
  throw new ConvertError(
    "invalid-input",
    `${path}: input must be a checkpoint directory or a .safetensors file`,
  );
}

/** Open the input `path` (as the user gave it, for messages). */
export async function openInput(path: string): Promise<InputInfo> {
  const dir = await openDir(path);
  const isDir = dir.file === null;
  const readJson = async (name: string) => {
    const text = isDir ? await dir.readText(name) : null;
    return text === null ? null : parseConfigJson(text, join(path, name));
  };
  const config = await readJson("config.json");
  const hfQuantConfig = await readJson(HF_QUANT_CONFIG);
  const ascendDescription = await readJson(ASCEND_DESCRIPTION_FILE);
  const checkpoint = await openCheckpointIn(dir);
  const sideFiles = [
    ...(config ? ["config.json"] : []),
    ...(hfQuantConfig ? [HF_QUANT_CONFIG] : []),
    ...(ascendDescription ? [ASCEND_DESCRIPTION_FILE] : []),
  ];
  const names = isDir ? [...checkpoint.shards, ...sideFiles] : checkpoint.shards;
  const files: InputFile[] = [];
  for (const n of names) {
    const p = join(dir.dir, n);
    try {
      const s = await stat(p);
      files.push({ name: n, size: s.size, mtimeMs: Math.floor(s.mtimeMs) });
    } catch (e) {
      await checkpoint.close();
      throw new ConvertError("read-failed", `${p}: cannot stat (${(e as Error).message})`, { cause: e });
    }
  }
  return {
    dir: dir.dir,
    isDir,
    config,
    hfQuantConfig,
    ascendDescription,
    checkpoint,
    tensors: checkpoint.tensors,
    files,
  };
}
