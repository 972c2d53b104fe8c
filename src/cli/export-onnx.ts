// `einvit export-onnx`: a model folder as one self-contained ONNX file (opset 17, weights as
// initializers, dynamic batch by default) that onnxruntime loads with no einvit present. The model
// traces itself (src/vit/trace.ts); this file optimises, writes (atomically) and reports.
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { fmtShape } from '../ir/dims.js';
import { graphInputs, graphParams, type Graph } from '../ir/graph.js';
import { optimize } from '../ir/passes.js';
import { passesFor, toOnnx, type EmitOptions } from '../onnx/emit.js';
import { ViT } from '../vit/model.js';
import { PIXEL_INPUT, traceViT, type TraceOptions } from '../vit/trace.js';
import type { ViTConfig } from '../vit/config.js';
import { mapParams } from '../vit/params.js';

/** Options of {@link exportGraph}. */
export interface ExportGraphOptions extends EmitOptions {
  /** Skip the graph passes. */
  readonly raw?: boolean;
}

/**
 * Optimises `graph`, writes it to `out` (`.onnx`, atomically) and returns the lines the CLI prints.
 *
 * @example
 * const lines = exportGraph(traceViT(cfg, params), 'model.onnx');
 */
export function exportGraph(graph: Graph, out: string, options: ExportGraphOptions = {}): string[] {
  if (!out.endsWith('.onnx'))
    throw new UsageError(`--out must name a .onnx file, got '${out}'`, { rule: 'bad-argument' });
  const g = options.raw ? graph : optimize(graph, passesFor(options));
  writeFileAtomic(out, toOnnx(g, options));
  const params = graphParams(g);
  const count = params.reduce((p, n) => p + n.op.data.length, 0);
  return [
    `wrote ${out}: ${g.nodes.length} IR nodes, ${params.length} parameters (${count.toLocaleString('en-US')} values), opset 17`,
    ...graphInputs(g).map((n) => `  input  ${n.op.name} ${fmtShape(n.type.shape)} ${n.type.dtype}`),
    ...g.outputs.map(
      (o) => `  output ${o.name} ${fmtShape(g.nodes[o.id].type.shape)} ${g.nodes[o.id].type.dtype}`,
    ),
  ];
}

/** Options of {@link exportOnnxCommand}. */
export interface ExportOptions {
  /** 'dynamic' (default) or a fixed batch size, as the `--batch` flag gives it. */
  batch?: string;
  /** Also output `hidden_states.i` / `attentions.i` (and `pre_logits`, `last_hidden_state`). */
  hiddenStates?: boolean;
  attentions?: boolean;
}

/**
 * Exports a model folder; returns the lines describing the file's inputs and outputs.
 *
 * @example
 * await exportOnnxCommand('runs/mnist', 'mnist.onnx'); // ['wrote mnist.onnx: ...', '  input  pixel_values [N, 1, 28, 28] float32', ...]
 */
export async function exportOnnxCommand(
  dir: string,
  out: string,
  opts: ExportOptions = {},
): Promise<string[]> {
  const batchText = opts.batch ?? 'dynamic';
  const batch = batchText === 'dynamic' ? 'dynamic' : Number(batchText);
  if (batch !== 'dynamic' && !(Number.isSafeInteger(batch) && batch > 0)) {
    throw new UsageError(`--batch must be 'dynamic' or a positive integer, got '${batchText}'`, {
      rule: 'batch',
    });
  }
  if (!out.endsWith('.onnx'))
    throw new UsageError(`--out must name a .onnx file, got '${out}'`, { rule: 'bad-argument' });
  const extra = Boolean(opts.hiddenStates || opts.attentions);
  const { graph, config } = await traceFolder(dir, {
    batch,
    outputPreLogits: extra,
    outputLastHiddenState: extra,
    outputHiddenStates: opts.hiddenStates,
    outputAttentions: opts.attentions,
  });
  return exportGraph(graph, out, { metadata: { config: JSON.stringify(config), input: PIXEL_INPUT } });
}

/**
 * Loads a model folder and traces its forward pass into a graph (the model's tensors are freed).
 *
 * @example
 * const { graph } = await traceFolder('runs/mnist', { batch: 'dynamic' });
 */
export async function traceFolder(
  dir: string,
  opts: TraceOptions = {},
): Promise<{ graph: Graph; config: ViTConfig }> {
  const model = await ViT.fromPretrained(dir);
  try {
    const cfg = model.config;
    const data = mapParams(cfg, model.params, (v) => ({
      shape: [...v.shape],
      data: v.dataSync() as Float32Array,
    }));
    return { graph: traceViT(cfg, data, opts), config: cfg };
  } finally {
    model.dispose();
  }
}
