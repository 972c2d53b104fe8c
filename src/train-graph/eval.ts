// The evaluation pass of a training run as one graph: the forward graph with its parameters turned
// into inputs (like the step graph's), so the trainer evaluates the current buffers of a compiled
// step without recompiling anything per epoch.
import { CompileError } from '../errors.js';
import { rebuild } from '../ir/builder.js';
import type { Graph } from '../ir/graph.js';
import type { Dim } from '../ir/dims.js';

/** Names of the evaluation graph's extra input and its outputs. */
export const EVAL_IO = {
  labels: 'labels',
  /** Summed (not averaged) cross-entropy without label smoothing, float32 scalar. */
  lossSum: 'loss_sum',
  /** Arg-max class per image, int32 `[N]`. */
  predictions: 'predictions',
} as const;

/**
 * Builds the evaluation graph of a traced forward graph: every float32 parameter becomes an input of
 * the same name (feed the step graph's current parameter buffers), plus `labels` `[N]` int32; it
 * outputs `loss_sum` (the summed cross-entropy, as `tf.losses.softmaxCrossEntropy` with
 * `Reduction.SUM`) and `predictions`.
 *
 * @example
 * const graph = evalGraph(traceViT(cfg, tree));
 * const program = await compileGraph(graph, { threads: 2 });
 * const out = await program.runRaw({ pixel_values, labels, ...params });
 */
export function evalGraph(forward: Graph, logitsName = 'logits'): Graph {
  const logitsOut = forward.outputs.find((x) => x.name === logitsName);
  if (!logitsOut) {
    throw new CompileError(`evalGraph: the forward graph has no output '${logitsName}'`, {
      rule: 'train-step',
    });
  }
  const { g, syms } = rebuild(forward, (node, b) => {
    if (node.op.kind !== 'param' || node.op.type.dtype !== 'float32') return undefined;
    return b.input(node.op.name, node.op.type.shape);
  });
  const logits = syms[logitsOut.id];
  const [n, classes] = logits.shape as [Dim, Dim];
  if (logits.rank !== 2 || typeof classes !== 'number') {
    throw new CompileError(`evalGraph: logits must be [N, classes] with a known class count`, {
      rule: 'train-step',
    });
  }
  const labels = g.input(EVAL_IO.labels, [n], 'int32');
  const hit = labels.reshape([n, 1]).equal(
    g.constant(
      Int32Array.from({ length: classes }, (_, i) => i),
      [1, classes],
    ),
  );
  const lossSum = g.where(hit, 1, 0).mul(logits.logSoftmax(-1)).sum([0, 1]).neg();
  return g.build({ [EVAL_IO.lossSum]: lossSum, [EVAL_IO.predictions]: logits.argMax(-1) });
}
