// The einvit patterns the ViT uses, lowered to IR nodes for tracing. A stand-in until the IR's general
// pattern tracer (rearrange/reduce/repeat on symbolic tensors through the einops planner) lands; each
// entry is the plan the compiler makes for that pattern.
import { CompileError } from '../errors.js';
import type { SymDim } from '../ir/dims.js';
import type { Sym } from '../ir/index.js';
import type { SurfaceReduction } from './surface.js';

type Lengths = Record<string, number | SymDim> | undefined;

// IR reshape and transpose nodes (the planner's steps for these patterns).
const reshape = (x: Sym, shape: (number | SymDim)[]): Sym => x.builder.node({ kind: 'reshape', shape }, [x]);
const permute = (x: Sym, perm: number[]): Sym => x.builder.node({ kind: 'transpose', perm }, [x]);

function need(lengths: Lengths, name: string, pattern: string): number {
  const v = lengths?.[name];
  if (typeof v !== 'number') {
    throw new CompileError(`'${pattern}': axis ${name} needs a concrete length`, { rule: 'not-traceable' });
  }
  return v;
}

/**
 * Records `op(x, pattern, lengths)` for the patterns of the ViT network.
 *
 * @example
 * const heads = tracePattern('rearrange', qkv, 'b n (h d) -> b h n d', { h: 6 });
 */
export function tracePattern(
  op: 'rearrange' | 'reduce' | 'repeat',
  x: Sym,
  pattern: string,
  lengths?: Lengths,
  reduction?: SurfaceReduction,
): Sym {
  const s = x.shape;
  const key = `${op} ${pattern}`;
  switch (key) {
    case 'rearrange b c (h p1) (w p2) -> b (h w) (c p1 p2)': {
      const [b, c, H, W] = s as [SymDim | number, number, number, number];
      const p1 = need(lengths, 'p1', pattern);
      const p2 = need(lengths, 'p2', pattern);
      const [h, w] = [H / p1, W / p2];
      return reshape(permute(reshape(x, [b, c, h, p1, w, p2]), [0, 2, 4, 1, 3, 5]), [b, h * w, c * p1 * p2]);
    }
    case 'rearrange e c p1 p2 -> e (c p1 p2)': {
      const [e, c, p1, p2] = s as number[];
      return reshape(x, [e, c * p1 * p2]);
    }
    case 'rearrange b n (h d) -> b h n d': {
      const [b, n, hd] = s as [SymDim | number, number, number];
      const h = need(lengths, 'h', pattern);
      return permute(reshape(x, [b, n, h, hd / h]), [0, 2, 1, 3]);
    }
    case 'rearrange b h n d -> b n (h d)': {
      const [b, h, n, d] = s as [SymDim | number, number, number, number];
      return reshape(permute(x, [0, 2, 1, 3]), [b, n, h * d]);
    }
    case 'rearrange b 1 e -> b e': {
      const [b, , e] = s as [SymDim | number, number, number];
      return reshape(x, [b, e]);
    }
    case 'repeat 1 n e -> b n e': {
      const b = lengths?.b;
      if (b === undefined)
        throw new CompileError(`'${pattern}': axis b needs a length`, { rule: 'not-traceable' });
      return x.expand([b, s[1], s[2]]);
    }
    case 'rearrange o i -> i o':
      return permute(x, [1, 0]);
    case 'rearrange b h k d -> b h d k':
      return permute(x, [0, 1, 3, 2]);
    case 'reduce b n e -> b e':
      if (reduction === 'mean' || reduction === 'sum' || reduction === 'max' || reduction === 'min')
        return x.reduce(reduction, [1]);
  }
  throw new CompileError(`${op} '${pattern}' is not traceable yet (the IR's pattern tracer is pending)`, {
    rule: 'not-traceable',
  });
}
