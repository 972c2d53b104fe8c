// `einvit export-onnx`: a model folder as one self-contained ONNX file (opset 17, weights as
// initializers, dynamic batch by default) that onnxruntime loads with no einvit present.
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { toOnnx } from '../onnx/emit.js';
import { ViT } from '../vit/model.js';
import { vitGraph } from '../vit/compiled.js';
import { mapParams } from '../vit/params.js';

/** Options of {@link exportOnnxCommand}. */
export interface ExportOptions {
  /** 'dynamic' (default) or a fixed batch size, as the `--batch` flag gives it. */
  batch?: string;
  /** Also output `hidden_states.i` / `attentions.i` (and `pre_logits`, `last_hidden_state`). */
  hiddenStates?: boolean;
  attentions?: boolean;
}

/**
 * Writes `out` (atomically) and returns a line describing the graph's inputs and outputs.
 *
 * @example
 * await exportOnnxCommand('runs/mnist', 'mnist.onnx'); // "wrote mnist.onnx: pixel_values [N, 1, 28, 28] -> logits [N, 10] ..."
 */
export async function exportOnnxCommand(dir: string, out: string, opts: ExportOptions = {}): Promise<string> {
  const batchText = opts.batch ?? 'dynamic';
  const batch = batchText === 'dynamic' ? 'dynamic' : Number(batchText);
  if (batch !== 'dynamic' && !(Number.isSafeInteger(batch) && batch > 0)) {
    throw new UsageError(`--batch must be 'dynamic' or a positive integer, got '${batchText}'`, {
      rule: 'batch',
    });
  }
  const model = await ViT.fromPretrained(dir);
  try {
    const cfg = model.config;
    const data = mapParams(cfg, model.params, (v) => ({
      shape: [...v.shape],
      data: v.dataSync() as Float32Array,
    }));
    const graph = vitGraph(cfg, data, {
      batch,
      outputPreLogits: Boolean(opts.hiddenStates || opts.attentions),
      outputLastHiddenState: Boolean(opts.hiddenStates || opts.attentions),
      outputHiddenStates: opts.hiddenStates,
      outputAttentions: opts.attentions,
    });
    const bytes = toOnnx(graph, { metadata: { config: JSON.stringify(cfg) } });
    writeFileAtomic(out, bytes);
    const n = batch === 'dynamic' ? 'N' : String(batch);
    const size = cfg.image_size;
    return (
      `wrote ${out} (${(bytes.length / 1e6).toFixed(1)} MB, ${graph.nodes.length} IR nodes): ` +
      `pixel_values [${n}, ${cfg.num_channels}, ${size}, ${size}] -> ${graph.outputs.map((o) => o.name).join(', ')}`
    );
  } finally {
    model.dispose();
  }
}
