// The Vision Transformer (Dosovitskiy et al., 2020) as timm and HF compute it, written once against the
// op surface (surface.ts) so that the same code runs eagerly on tfjs and traces into the graph IR.
// Reads top to bottom like the paper's figure: patches -> tokens, class token and positions, L pre-norm
// blocks (attention, MLP), final norm, pooling, classifier.
import type { ViTConfig } from './config.js';
import type { BlockParams, ViTParams } from './params.js';
import type { VitOps } from './surface.js';

/** Every tensor one forward pass can produce; see ForwardOutput in model.ts for their meanings. */
export interface NetworkOutputs<T> {
  logits: T;
  preLogits: T;
  lastHiddenState: T;
  hiddenStates: T[];
  attentions: T[];
}

/** Dropout rates of one pass (zero at inference). */
export interface NetworkRates {
  hidden: number;
  attention: number;
}

/**
 * Multi-head self-attention on `[N, T, D]` tokens: the projected output and the softmax probabilities
 * `[N, heads, T, T]` (before attention dropout, as HF and timm report them).
 *
 * @example
 * const { out, probs } = selfAttention(ops, x, params.blocks[0].attn, 6, { hidden: 0, attention: 0 });
 */
export function selfAttention<T, D>(
  ops: VitOps<T, D>,
  x: T,
  p: BlockParams<T>['attn'],
  heads: number,
  rates: NetworkRates,
): { out: T; probs: T } {
  const dim = ops.shape(x)[2] as number;
  // qkv output features are (qkv h d): three equal slices, each split into heads.
  const [q, k, v] = ops
    .linearSplit(x, p.qkv.weight, p.qkv.bias, 3)
    .map((t) => ops.rearrange(t, 'b n (h d) -> b h n d', { h: heads }));
  // softmax(q·kᵀ / √d)·v per head; eager.ts writes it as two einsum patterns.
  const { out: attended, probs } = ops.attention(q, k, v, (dim / heads) ** -0.5, rates.attention);
  const merged = ops.rearrange(attended, 'b h n d -> b n (h d)');
  const out = ops.dropout(ops.linear(merged, p.proj.weight, p.proj.bias), rates.hidden);
  return { out, probs };
}

/**
 * The transformer MLP: linear, activation, dropout, linear, dropout.
 *
 * @example
 * const y = mlp(ops, x, params.blocks[0].mlp, 'gelu', rates); // same shape as x
 */
export function mlp<T, D>(
  ops: VitOps<T, D>,
  x: T,
  p: BlockParams<T>['mlp'],
  act: ViTConfig['hidden_act'],
  rates: NetworkRates,
): T {
  const h = ops.dropout(ops.activation(ops.linear(x, p.fc1.weight, p.fc1.bias), act), rates.hidden);
  return ops.dropout(ops.linear(h, p.fc2.weight, p.fc2.bias), rates.hidden);
}

/**
 * One pre-norm block: `x + Attn(LN1(x))`, then `+ MLP(LN2(x))`, each branch scaled by LayerScale when
 * the model has it.
 *
 * @example
 * const { out, probs } = block(ops, cfg, params.blocks[0], x, rates);
 */
export function block<T, D>(
  ops: VitOps<T, D>,
  cfg: ViTConfig,
  p: BlockParams<T>,
  x: T,
  rates: NetworkRates,
): { out: T; probs: T } {
  const eps = cfg.layer_norm_eps;
  const attn = selfAttention(
    ops,
    ops.layerNorm(x, p.norm1.weight, p.norm1.bias, eps),
    p.attn,
    cfg.num_attention_heads,
    rates,
  );
  const y = ops.add(x, p.ls1 ? ops.mul(attn.out, p.ls1.gamma) : attn.out);
  const m = mlp(ops, ops.layerNorm(y, p.norm2.weight, p.norm2.bias, eps), p.mlp, cfg.hidden_act, rates);
  return { out: ops.add(y, p.ls2 ? ops.mul(m, p.ls2.gamma) : m), probs: attn.probs };
}

/**
 * The whole forward pass on `[N, C, H, W]` pixels (already normalised and checked). `positions` is the
 * position table `[1, T, D]` for this image's patch grid (learned, resampled or sin-cos).
 *
 * @example
 * const out = vitNetwork(eagerOps(), cfg, model.params, pixels, positions, { hidden: 0, attention: 0 });
 */
export function vitNetwork<T, D>(
  ops: VitOps<T, D>,
  cfg: ViTConfig,
  params: ViTParams<T>,
  pixels: T,
  positions: T,
  rates: NetworkRates,
): NetworkOutputs<T> {
  const batch = ops.shape(pixels)[0];
  let x = ops.patchEmbed(pixels, params.patchEmbed.proj.weight, params.patchEmbed.proj.bias, cfg.patch_size);
  if (params.clsToken) {
    const cls = ops.repeat(params.clsToken, '1 n e -> b n e', { b: batch });
    x = ops.pack([cls, x], 'b * e');
  }
  x = ops.dropout(ops.addBroadcast(x, positions), rates.hidden);

  const hiddenStates = [x];
  const attentions: T[] = [];
  params.blocks.forEach((p, i) => {
    const { out, probs } = ops.scope(`block${i}`, () => block(ops, cfg, p, x, rates));
    x = out;
    hiddenStates.push(out);
    attentions.push(probs);
  });

  const eps = cfg.layer_norm_eps;
  const lastHiddenState = params.norm ? ops.layerNorm(x, params.norm.weight, params.norm.bias, eps) : x;
  const prefix = params.clsToken ? 1 : 0;
  const tokens = ops.shape(lastHiddenState)[1] as number;
  let pooled: T;
  if (cfg.pooling === 'mean') {
    const patches =
      prefix > 0 ? ops.unpack(lastHiddenState, [[prefix], [tokens - prefix]], 'b * e')[1] : lastHiddenState;
    pooled = ops.reduce(patches, 'b n e -> b e', 'mean');
  } else {
    const [first] = ops.unpack(lastHiddenState, [[1], [tokens - 1]], 'b * e');
    pooled = ops.rearrange(first, 'b 1 e -> b e');
  }
  const preLogits = params.fcNorm
    ? ops.layerNorm(pooled, params.fcNorm.weight, params.fcNorm.bias, eps)
    : pooled;
  const logits = params.head ? ops.linear(preLogits, params.head.weight, params.head.bias) : preLogits;
  return { logits, preLogits, lastHiddenState, hiddenStates, attentions };
}
