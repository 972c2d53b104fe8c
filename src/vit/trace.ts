// The tracing op surface: each op records graph IR nodes through the IR builder instead of computing,
// so running the network definition (network.ts) on it yields the whole program as one graph. It emits
// the forms onnxruntime runs fastest rather than the wasm-friendly ones of eager.ts: one wide q/k/v
// product, an `attention` node (the ONNX emitter picks the fused form), LayerNorm and GELU as single
// nodes. Inference only: dropout is the identity.
import { CompileError } from '../errors.js';
import { GraphBuilder, sym, type Graph, type Sym } from '../ir/index.js';
import type { Dim, SymDim } from '../ir/dims.js';
import type { ViTConfig } from './config.js';
import { sincosTable } from './posembed.js';
import { vitNetwork } from './network.js';
import { mapParams, type ViTParams } from './params.js';
import type { TensorData } from './safetensors.js';
import type { SurfaceReduction, VitOps } from './surface.js';
import { einsum, pack, rearrange, reduce, repeat, unpack } from '../ops.js';

/**
 * The op surface on symbolic tensors of `g`.
 *
 * @example
 * const g = new GraphBuilder();
 * const ops = traceOps(g);
 * const y = ops.linear(g.input('x', [sym('N'), 4]), w); // records MatMul + Add
 */
export function traceOps(g: GraphBuilder, opts: { attentionMaps?: boolean } = {}): VitOps<Sym, SymDim> {
  const linear = (x: Sym, weight: Sym, bias?: Sym): Sym => {
    // The weight is stored [out, in]; the transpose of a parameter folds into the initializer.
    const y = x.matMul(rearrange(weight, 'o i -> i o'));
    return bias ? y.add(bias) : y;
  };
  return {
    shape: (x) => x.shape,
    constant: (data, shape) => g.constant(data, [...shape]),
    scope: (_name, fn) => fn(),
    rearrange: (x, pattern, lengths) => rearrange(x, pattern, concrete('rearrange', pattern, lengths)),
    reduce: (x, pattern, reduction: SurfaceReduction, lengths) =>
      reduce(x, pattern, reduction, concrete('reduce', pattern, lengths)),
    repeat: (x, pattern, lengths) => {
      const b = lengths?.b;
      // The pattern planner takes concrete lengths; a new batch axis of symbolic length is a broadcast.
      if (pattern === '1 n e -> b n e' && b !== undefined && typeof b !== 'number') {
        return x.expand([b, ...x.shape.slice(1)]);
      }
      return repeat(x, pattern, concrete('repeat', pattern, lengths));
    },
    einsum: (pattern, ...xs) => einsum(pattern, ...xs),
    pack: (xs, pattern) => pack([...xs], pattern)[0],
    unpack: (x, shapes, pattern) => unpack(x, shapes, pattern),
    linear,
    linearSplit: (x, weight, bias, parts) => {
      // One wide product, then slices of its output features: one MatMul kernel instead of `parts`.
      const y = linear(x, weight, bias);
      const width = (y.shape[y.rank - 1] as number) / parts;
      const lead = Array.from({ length: y.rank - 1 }, (_, i) => `a${i}`).join(' ');
      return unpack(
        y,
        Array.from({ length: parts }, () => [width]),
        `${lead} *`,
      );
    },
    patchEmbed: (pixels, weight, bias, patch) => {
      const patches = rearrange(pixels, 'b c (h p1) (w p2) -> b (h w) (c p1 p2)', { p1: patch, p2: patch });
      return linear(patches, rearrange(weight, 'e c p1 p2 -> e (c p1 p2)'), bias);
    },
    layerNorm: (x, gamma, beta, eps) => x.layerNorm(gamma, beta, eps),
    activation: (x, name) => (name === 'linear' ? x : x.gelu(name === 'gelu' ? 'none' : 'tanh')),
    attention: (q, k, v, scale) => {
      // When the maps are outputs, the attended values use them; otherwise one attention node (the
      // emitter picks its fused form) and the probabilities are dead code the passes drop.
      const probs = einsum('b h q d, b h k d -> b h q k', q, k).mul(scale).softmax(-1);
      return {
        out: opts.attentionMaps
          ? einsum('b h q k, b h k d -> b h q d', probs, v)
          : g.attention(q, k, v, scale),
        probs,
      };
    },
    softmax: (x) => x.softmax(-1),
    scale: (x, s) => x.mul(s),
    add: (a, b) => a.add(b),
    addBroadcast: (x, b) => x.add(b),
    mul: (x, b) => x.mul(b),
    dropout: (x) => x,
  };
}

/** Pattern lengths as the planner takes them: numbers (a symbolic one is outside the traceable set). */
function concrete(
  op: string,
  pattern: string,
  lengths: Record<string, number | SymDim> | undefined,
): Record<string, number> | undefined {
  if (lengths === undefined) return undefined;
  for (const [k, v] of Object.entries(lengths)) {
    if (typeof v !== 'number') {
      throw new CompileError(`${op} "${pattern}": axis ${k} has a symbolic length; give it a number`, {
        rule: 'untraceable',
      });
    }
  }
  return lengths as Record<string, number>;
}

/** Options of {@link traceViT}. */
export interface TraceOptions {
  /** A fixed batch size, or 'dynamic' (default): a symbolic batch axis `N`. */
  batch?: 'dynamic' | number;
  /** Also output `hidden_states.0` ... `hidden_states.L`. */
  outputHiddenStates?: boolean;
  /** Also output `attentions.0` ... `attentions.{L-1}`. */
  outputAttentions?: boolean;
  /** Also output `pre_logits`. */
  outputPreLogits?: boolean;
  /** Also output `last_hidden_state`. */
  outputLastHiddenState?: boolean;
}

/** Name of the graph input (HF's name, so exported files drop in where transformers.js expects it). */
export const PIXEL_INPUT = 'pixel_values';

/**
 * The graph inputs every traced ViT starts from: `pixel_values` `[batch, C, H, W]`, the parameters
 * under timm names, and the position table (the parameter, or the fixed 2-D sine/cosine constant of
 * configs without one).
 *
 * @example
 * const { pixels, tree, positions } = traceInputs(new GraphBuilder(), cfg, model.state(), sym('N'));
 */
export function traceInputs(
  g: GraphBuilder,
  cfg: ViTConfig,
  params: ViTParams<TensorData>,
  batch: Dim,
): { pixels: Sym; tree: ViTParams<Sym>; positions: Sym } {
  const pixels = g.input(PIXEL_INPUT, [batch, cfg.num_channels, cfg.image_size, cfg.image_size]);
  const tree = mapParams(cfg, params, (t, name) => g.param(name, t.data, t.shape));
  const grid = cfg.image_size / cfg.patch_size;
  const prefix = cfg.class_token ? 1 : 0;
  const positions =
    tree.posEmbed ??
    g.constant(sincosTable(cfg.hidden_size, grid, grid, prefix), [1, grid * grid + prefix, cfg.hidden_size]);
  return { pixels, tree, positions };
}

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
  const { pixels, tree, positions } = traceInputs(g, cfg, params, batch === 'dynamic' ? sym('N') : batch);
  const ops = traceOps(g, { attentionMaps: opts.outputAttentions });
  const out = vitNetwork(ops, cfg, tree, pixels, positions, { hidden: 0, attention: 0 });
  const outputs: Record<string, Sym> = { logits: out.logits };
  if (opts.outputPreLogits) outputs.pre_logits = out.preLogits;
  if (opts.outputLastHiddenState) outputs.last_hidden_state = out.lastHiddenState;
  if (opts.outputHiddenStates) out.hiddenStates.forEach((h, i) => (outputs[`hidden_states.${i}`] = h));
  if (opts.outputAttentions) out.attentions.forEach((a, i) => (outputs[`attentions.${i}`] = a));
  return g.build(outputs);
}
