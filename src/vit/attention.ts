// Attention maps for explaining a ViT's prediction: the class token's last-layer attention and
// attention rollout (Abnar & Zuidema, 2020), both over the `[N, heads, T, T]` probabilities that
// `ViT.forward(..., { outputAttentions: true })` returns.
import { tf } from '../tf.js';
import { einsum, rearrange, reduce, unpack } from '../ops.js';
import { EinopsError } from '../errors.js';

/** How heads are combined before a map is formed. */
export type HeadFusion = 'mean' | 'max' | 'min';

function checkLayer(a: tf.Tensor, where: string): void {
  if (a.rank !== 4 || a.shape[2] !== a.shape[3]) {
    throw new EinopsError(
      `${where}: expected attention probabilities [N, heads, T, T], got [${a.shape.join(', ')}]`,
    );
  }
}

// Row 0 (the class token) over the patch columns of a [N, T, T] matrix, as an [N, gh, gw] map.
function classRowToGrid(m: tf.Tensor, gridH: number, gridW: number, where: string): tf.Tensor {
  const tokens = m.shape[2] as number;
  const prefix = tokens - gridH * gridW;
  if (prefix < 1) {
    throw new EinopsError(
      `${where}: ${tokens} tokens leave no class token in front of a ${gridH}x${gridW} grid (need T = prefix + ${gridH * gridW}, prefix >= 1)`,
    );
  }
  const [clsRow] = unpack(m, [[1], [tokens - 1]], 'b * k');
  const row = rearrange(clsRow, 'b 1 k -> b k');
  const [, patches] = unpack(row, [[prefix], [gridH * gridW]], 'b *');
  return rearrange(patches, 'b (h w) -> b h w', { h: gridH, w: gridW });
}

/**
 * The class token's attention to each patch in the LAST layer, fused over heads: `[N, gridH, gridW]`.
 * `attentions` is the per-layer list from `forward` (or one layer's tensor).
 *
 * @example
 * const out = model.forward(pixels, { outputAttentions: true });
 * const map = classTokenAttention(out.attentions!, 14, 14); // [N, 14, 14]
 */
export function classTokenAttention(
  attentions: tf.Tensor[] | tf.Tensor,
  gridH: number,
  gridW: number,
  headFusion: HeadFusion = 'mean',
): tf.Tensor {
  const last = Array.isArray(attentions) ? attentions[attentions.length - 1] : attentions;
  if (!last) throw new EinopsError('classTokenAttention: no attention layers given');
  checkLayer(last, 'classTokenAttention');
  return tf.tidy(() =>
    classRowToGrid(reduce(last, 'b h q k -> b q k', headFusion), gridH, gridW, 'classTokenAttention'),
  );
}

/**
 * Attention rollout matrix `[N, T, T]`: per layer, fuse heads, add the identity (the residual path),
 * renormalise rows to sum to one, then multiply the layers together (last layer on the left).
 *
 * @example
 * const r = rolloutMatrix(out.attentions!); // [N, T, T], rows sum to 1
 */
export function rolloutMatrix(attentions: tf.Tensor[], headFusion: HeadFusion = 'mean'): tf.Tensor {
  if (attentions.length === 0) throw new EinopsError('attentionRollout: no attention layers given');
  attentions.forEach((a, i) => checkLayer(a, `attentionRollout (layer ${i})`));
  return tf.tidy(() => {
    const tokens = attentions[0].shape[2] as number;
    const eye = tf.eye(tokens);
    let joint: tf.Tensor | undefined;
    for (const a of attentions) {
      const fused = tf.add(reduce(a, 'b h q k -> b q k', headFusion), eye);
      const rowSums = reduce(fused, 'b q k -> b q 1', 'sum');
      const normed = tf.div(fused, rowSums);
      joint = joint ? einsum('b i j, b j k -> b i k', normed, joint) : normed;
    }
    return joint as tf.Tensor;
  });
}

/**
 * Attention rollout (Abnar & Zuidema, 2020) read out at the class token: how much each patch flows
 * into the class token through all layers, `[N, gridH, gridW]`.
 *
 * @example
 * const out = model.forward(pixels, { outputAttentions: true });
 * const map = attentionRollout(out.attentions!, 14, 14); // [N, 14, 14]
 */
export function attentionRollout(
  attentions: tf.Tensor[],
  gridH: number,
  gridW: number,
  headFusion: HeadFusion = 'mean',
): tf.Tensor {
  return tf.tidy(() =>
    classRowToGrid(rolloutMatrix(attentions, headFusion), gridH, gridW, 'attentionRollout'),
  );
}
