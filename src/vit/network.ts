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

/** How one attention layer computes, from the config's quirk fields (standard ViT by default). */
export interface AttentionForm {
  heads: number;
  /** The factor the scores (or probabilities) are multiplied by. */
  scale: number;
  scaleAt: ViTConfig['attention_scale_at'];
  softmax: ViTConfig['attention_softmax'];
  sharedQkv: boolean;
}

/**
 * The attention form of `cfg`: scale `1/√head_dim` before a softmax over keys unless a quirk field says
 * otherwise.
 *
 * @example
 * attentionForm(PRESETS.tiny).scale; // 1 / √24
 */
export function attentionForm(cfg: ViTConfig): AttentionForm {
  const by = { head_dim: cfg.hidden_size / cfg.num_attention_heads, hidden_size: cfg.hidden_size };
  const d = cfg.attention_scale_dim === 'num_heads' ? cfg.num_attention_heads : by[cfg.attention_scale_dim];
  return {
    heads: cfg.num_attention_heads,
    scale: d ** -0.5,
    scaleAt: cfg.attention_scale_at,
    softmax: cfg.attention_softmax,
    sharedQkv: cfg.shared_qkv,
  };
}

/**
 * Multi-head self-attention on `[N, T, D]` tokens: the output (projected when the block has `proj`) and
 * the attention matrix `[N, heads, Tq, Tk]` that multiplies the values (before attention dropout, as HF
 * and timm report it; after the scale when the scale applies to the probabilities).
 *
 * @example
 * const { out, probs } = selfAttention(ops, x, params.blocks[0].attn, attentionForm(cfg), rates);
 */
export function selfAttention<T, D>(
  ops: VitOps<T, D>,
  x: T,
  p: BlockParams<T>['attn'],
  form: AttentionForm,
  rates: NetworkRates,
): { out: T; probs: T } {
  const heads = form.heads;
  const split = (t: T) => ops.rearrange(t, 'b n (h d) -> b h n d', { h: heads });
  let q: T, k: T, v: T;
  if (form.sharedQkv) {
    // The from-scratch tutorial computes q, k and v all with its `key` layer: the k rows of qkv.
    const rows = (ops.shape(p.qkv.weight)[0] as number) / 3;
    const w = ops.unpack(p.qkv.weight, [[rows], [rows], [rows]], '* i')[1];
    const b = p.qkv.bias ? ops.unpack(p.qkv.bias, [[rows], [rows], [rows]], '*')[1] : undefined;
    q = k = v = split(ops.linear(x, w, b));
  } else {
    // qkv output features are (qkv h d): three equal slices, each split into heads.
    [q, k, v] = ops.linearSplit(x, p.qkv.weight, p.qkv.bias, 3).map(split);
  }
  let attended: T, probs: T;
  if (form.scaleAt === 'logits' && form.softmax === 'keys') {
    // softmax(q·kᵀ·scale)·v per head; eager.ts writes it as two einsum patterns, trace.ts as one node.
    ({ out: attended, probs } = ops.attention(q, k, v, form.scale, rates.attention));
  } else {
    // The tutorials' variants, written out: scores laid out with the softmax axis last.
    const keysLast = form.softmax === 'keys';
    let scores = ops.einsum(keysLast ? 'b h q d, b h k d -> b h q k' : 'b h q d, b h k d -> b h k q', q, k);
    if (form.scaleAt === 'logits') scores = ops.scale(scores, form.scale);
    let weights = ops.softmax(scores);
    if (form.scaleAt === 'probs') weights = ops.scale(weights, form.scale);
    attended = ops.einsum(
      keysLast ? 'b h q k, b h k d -> b h q d' : 'b h k q, b h k d -> b h q d',
      ops.dropout(weights, rates.attention),
      v,
    );
    probs = keysLast ? weights : ops.rearrange(weights, 'b h k q -> b h q k');
  }
  const merged = ops.rearrange(attended, 'b h n d -> b n (h d)');
  const projected = p.proj ? ops.linear(merged, p.proj.weight, p.proj.bias) : merged;
  return { out: ops.dropout(projected, rates.hidden), probs };
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
  const fc1 = ops.linear(x, p.fc1.weight, p.fc1.bias);
  const h = ops.dropout(act === 'linear' ? fc1 : ops.activation(fc1, act), rates.hidden);
  return ops.dropout(ops.linear(h, p.fc2.weight, p.fc2.bias), rates.hidden);
}

/**
 * One pre-norm block: `x + Attn(LN1(x))`, then `+ MLP(LN2(x))`, each branch scaled by LayerScale when
 * the model has it; with `shared_block_norm` LN1 serves both branches (its two uses see different inputs).
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
    attentionForm(cfg),
    rates,
  );
  const y = ops.add(x, p.ls1 ? ops.mul(attn.out, p.ls1.gamma) : attn.out);
  const n2 = p.norm2 ?? p.norm1;
  const m = mlp(ops, ops.layerNorm(y, n2.weight, n2.bias, eps), p.mlp, cfg.hidden_act, rates);
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
  if (cfg.pooling === 'mean_all') {
    pooled = ops.reduce(lastHiddenState, 'b n e -> b e', 'mean');
  } else if (cfg.pooling === 'mean') {
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
