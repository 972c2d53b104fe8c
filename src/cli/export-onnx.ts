// `einvit export-onnx`: writes a traced graph as an ONNX file and describes what was written. The
// model is traced by its owner (ViT.compile in src/vit); this file only exports and reports.
import { UsageError } from '../errors.js';
import { graphInputs, graphParams, type Graph } from '../ir/graph.js';
import { fmtShape } from '../ir/dims.js';
import { optimize } from '../ir/passes.js';
import { exportOnnx, type EmitOptions } from '../onnx/emit.js';

/** Options of {@link exportOnnxCommand}. */
export interface ExportOnnxOptions extends EmitOptions {
  /** Skip the graph passes. */
  readonly raw?: boolean;
}

/**
 * Optimises `graph`, writes it to `out` (`.onnx`) and returns the lines the CLI prints.
 *
 * @example
 * const lines = await exportOnnxCommand(model.trace(), 'model.onnx');
 */
export async function exportOnnxCommand(
  graph: Graph,
  out: string,
  options: ExportOnnxOptions = {},
): Promise<string[]> {
  if (!out.endsWith('.onnx'))
    throw new UsageError(`--out must name a .onnx file, got '${out}'`, { rule: 'bad-argument' });
  const g = options.raw ? graph : optimize(graph);
  await exportOnnx(g, out, options);
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
