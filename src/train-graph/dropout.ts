// Dropout for the compiled training step: the network is traced with every dropout site multiplying
// by a mask that is a graph input, and the host draws the masks for each step from the run's seeded
// generator (src/train/random.ts). Training stays reproducible and resumable (a step's masks depend
// on the run's seed and the step number only), and the graph needs no random-number op whose stream
// would differ between runtimes. The masks are inverted dropout's: 0 with probability `rate`, else
// `1 / (1 - rate)`, as tf.dropout's.
import { GraphBuilder, sym, type Graph, type Sym } from '../ir/index.js';
import { isSym, type Dim } from '../ir/dims.js';
import { einsum } from '../ops.js';
import type { ViTConfig } from '../vit/config.js';
import { vitNetwork } from '../vit/network.js';
import type { ViTParams } from '../vit/params.js';
import { traceInputs, traceOps } from '../vit/trace.js';
import type { TensorData } from '../vit/safetensors.js';
import { Rng } from '../train/random.js';

/** One dropout site of a traced network: the mask input's name, shape (batch axis `N`) and rate. */
export interface DropoutSite {
  readonly name: string;
  readonly shape: readonly Dim[];
  readonly rate: number;
}

/**
 * Traces the ViT forward pass in training mode: as `traceViT` (input `pixel_values` `[N, C, H, W]`,
 * output `logits`), with a mask input `dropout.<i>` at every dropout site of the config's non-zero
 * rates (hidden: after the position embedding, the attention projection and both MLP layers;
 * attention: on the probabilities, which then feed an explicit `probs · v` instead of the fused
 * attention node). With both rates zero it is `traceViT` and `sites` is empty.
 *
 * @example
 * const { graph, sites } = traceTrainingViT(cfg, tree);
 * const masks = dropoutMasks(sites, 64, stepSeed);
 */
export function traceTrainingViT(
  cfg: ViTConfig,
  params: ViTParams<TensorData>,
): { graph: Graph; sites: DropoutSite[] } {
  const g = new GraphBuilder();
  const { pixels, tree, positions } = traceInputs(g, cfg, params, sym('N'));
  const sites: DropoutSite[] = [];
  const mask = (shape: readonly Dim[], rate: number): Sym => {
    const name = `dropout.${sites.length}`;
    sites.push({ name, shape, rate });
    return g.input(name, shape);
  };
  const base = traceOps(g);
  const ops = {
    ...base,
    dropout: (x: Sym, rate: number) => (rate > 0 ? x.mul(mask(x.shape, rate)) : x),
    attention: (q: Sym, k: Sym, v: Sym, scale: number, rate: number) => {
      if (!(rate > 0)) return base.attention(q, k, v, scale, rate);
      const probs = einsum('b h q d, b h k d -> b h q k', q, k).mul(scale).softmax(-1);
      return { out: einsum('b h q k, b h k d -> b h q d', probs.mul(mask(probs.shape, rate)), v), probs };
    },
  };
  const out = vitNetwork(ops, cfg, tree, pixels, positions, {
    hidden: cfg.hidden_dropout_prob,
    attention: cfg.attention_probs_dropout_prob,
  });
  return { graph: g.build({ logits: out.logits }), sites };
}

/**
 * Draws one step's masks: for each site, `1 / (1 - rate)` with probability `1 - rate`, else 0, with
 * the batch axis bound to `batch`. The same `seed` gives the same masks.
 *
 * @example
 * const feeds = dropoutMasks(sites, 64, 12345); // { 'dropout.0': { data, shape: [64, 17, 96] }, ... }
 */
export function dropoutMasks(
  sites: readonly DropoutSite[],
  batch: number,
  seed: number,
): Record<string, { data: Float32Array; shape: number[] }> {
  const rng = new Rng(seed);
  const out: Record<string, { data: Float32Array; shape: number[] }> = {};
  for (const s of sites) {
    const shape = s.shape.map((d) => (isSym(d) ? d.coeff * batch : d));
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const keep = 1 / (1 - s.rate);
    // One 32-bit draw per element against a fixed threshold: exact and fast.
    const threshold = Math.floor(s.rate * 4294967296);
    for (let i = 0; i < data.length; i++) data[i] = rng.nextU32() >= threshold ? keep : 0;
    out[s.name] = { data, shape };
  }
  return out;
}
