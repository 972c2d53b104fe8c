// The tracing op surface: each op records graph IR nodes through the IR builder instead of computing,
// so running the network definition (network.ts) on it yields the whole program as one graph. It emits
// the forms onnxruntime runs fastest rather than the wasm-friendly ones of eager.ts: one wide q/k/v
// product, an `attention` node (the ONNX emitter picks the fused form), LayerNorm and GELU as single
// nodes. Inference only: dropout is the identity.
import { CompileError } from '../errors.js';
import { GraphBuilder, sym, type Graph, type Sym } from '../ir/index.js';
import type { SymDim } from '../ir/dims.js';
import type { ViTConfig } from './config.js';
import { sincosTable } from './posembed.js';
import { vitNetwork } from './network.js';
import { mapParams, type ViTParams } from './params.js';
import type { TensorData } from './safetensors.js';
import type { SurfaceReduction, VitOps } from './surface.js';
import { tracePattern } from './trace-patterns.js';

/**
 * The op surface on symbolic tensors of `g`.
 *
 * @example
 * const g = new GraphBuilder();
 * const ops = traceOps(g);
 * const y = ops.linear(g.input('x', [sym('N'), 4]), w); // records MatMul + Add
 */
export function traceOps(g: GraphBuilder): VitOps<Sym, SymDim> {
  const linear = (x: Sym, weight: Sym, bias?: Sym): Sym => {
    // The weight is stored [out, in]; the transpose of a parameter folds into the initializer.
    const y = x.matMul(tracePattern('rearrange', weight, 'o i -> i o'));
    return bias ? y.add(bias) : y;
  };
  const ops: VitOps<Sym, SymDim> = {
    shape: (x) => x.shape,
    constant: (data, shape) => g.constant(data, [...shape]),
    scope: (_name, fn) => fn(),
    rearrange: (x, pattern, lengths) => tracePattern('rearrange', x, pattern, lengths),
    reduce: (x, pattern, reduction: SurfaceReduction, lengths) =>
      tracePattern('reduce', x, pattern, lengths, reduction),
    repeat: (x, pattern, lengths) => tracePattern('repeat', x, pattern, lengths),
    einsum: (pattern) => {
      throw new CompileError(`einsum '${pattern}' is not traceable yet`, { rule: 'not-traceable' });
    },
    pack: (xs, pattern) => {
      if (pattern !== 'b * e') throw notTraceable('pack', pattern);
      return g.concat(xs, 1);
    },
    unpack: (x, shapes, pattern) => {
      if (pattern !== 'b * e' || shapes.some((s) => s.length !== 1)) throw notTraceable('unpack', pattern);
      let start = 0;
      return shapes.map(([len]) => {
        const part = x.slice(1, start, start + len);
        start += len;
        return part;
      });
    },
    linear,
    linearSplit: (x, weight, bias, parts) => {
      // One wide product, then slices of its output features: one MatMul kernel instead of `parts`.
      const y = linear(x, weight, bias);
      const axis = y.rank - 1;
      const width = (y.shape[axis] as number) / parts;
      return Array.from({ length: parts }, (_, i) => y.slice(axis, i * width, (i + 1) * width));
    },
    patchEmbed: (pixels, weight, bias, patch) => {
      const patches = tracePattern('rearrange', pixels, 'b c (h p1) (w p2) -> b (h w) (c p1 p2)', {
        p1: patch,
        p2: patch,
      });
      const kernel = tracePattern('rearrange', weight, 'e c p1 p2 -> e (c p1 p2)');
      return linear(patches, kernel, bias);
    },
    layerNorm: (x, gamma, beta, eps) => x.layerNorm(gamma, beta, eps),
    activation: (x, name) => x.gelu(name === 'gelu' ? 'none' : 'tanh'),
    attention: (q, k, v, scale) => {
      // The explicit probabilities are recorded too; they are dead code (dropped) unless the graph
      // outputs the attention maps.
      const probs = q
        .matMul(tracePattern('rearrange', k, 'b h k d -> b h d k'))
        .mul(scale)
        .softmax(-1);
      return { out: g.attention(q, k, v, scale), probs };
    },
    add: (a, b) => a.add(b),
    addBroadcast: (x, b) => x.add(b),
    mul: (x, b) => x.mul(b),
    dropout: (x) => x,
  };
  return ops;
}

function notTraceable(op: string, pattern: string): CompileError {
  return new CompileError(`${op} '${pattern}' is not traceable yet`, { rule: 'not-traceable' });
}

/** Options of {@link traceViT}. */
export interface TraceOptions {
  /** A fixed batch size, or 'dynamic' (default): a symbolic batch axis `N`. */
  batch?: 'dynamic' | number;
  /** Also output `hidden_states.0` ... `hidden_states.L`. */
  outputHiddenStates?: boolean;
  /** Also output `attentions.0` ... `attentions.{L-1}`. */
  outputAttentions?: boolean;
  /** Also output `pre_logits` and `last_hidden_state`. */
  outputFeatures?: boolean;
}

/** Name of the graph input (HF's name, so exported files drop in where transformers.js expects it). */
export const PIXEL_INPUT = 'pixel_values';

/**
 * Records the whole ViT forward pass as a graph: input `pixel_values` `[N, C, H, W]` (the config's
 * image size), parameters under timm names, outputs `logits` and the requested optional tensors (names
 * as in test/vit-reference: `pre_logits`, `last_hidden_state`, `hidden_states.i`, `attentions.i`).
 *
 * @example
 * const graph = traceViT(cfg, model.state(), { batch: 'dynamic', outputAttentions: true });
 */
export function traceViT(cfg: ViTConfig, params: ViTParams<TensorData>, opts: TraceOptions = {}): Graph {
  const batch = opts.batch ?? 'dynamic';
  if (batch !== 'dynamic' && !(Number.isSafeInteger(batch) && batch > 0)) {
    throw new CompileError(`batch must be 'dynamic' or a positive integer, got ${String(batch)}`, {
      rule: 'batch',
    });
  }
  const g = new GraphBuilder();
  const n = batch === 'dynamic' ? sym('N') : batch;
  const pixels = g.input(PIXEL_INPUT, [n, cfg.num_channels, cfg.image_size, cfg.image_size]);
  const tree = mapParams(cfg, params, (t, name) => g.param(name, t.data, t.shape));
  const grid = cfg.image_size / cfg.patch_size;
  const positions =
    tree.posEmbed ??
    g.constant(sincosTable(cfg.hidden_size, grid, grid, cfg.class_token ? 1 : 0), [
      1,
      grid * grid + (cfg.class_token ? 1 : 0),
      cfg.hidden_size,
    ]);
  const ops = traceOps(g);
  const out = vitNetwork(ops, cfg, tree, pixels, positions, { hidden: 0, attention: 0 });
  const outputs: Record<string, Sym> = { logits: out.logits };
  if (opts.outputFeatures) {
    outputs.pre_logits = out.preLogits;
    outputs.last_hidden_state = out.lastHiddenState;
  }
  if (opts.outputHiddenStates) out.hiddenStates.forEach((h, i) => (outputs[`hidden_states.${i}`] = h));
  if (opts.outputAttentions) out.attentions.forEach((a, i) => (outputs[`attentions.${i}`] = a));
  return g.build(outputs);
}
