// Static dimensions with a symbolic batch: a dim is a number, or `coeff * sym` (e.g. the batch axis
// `N`, or `197N` once a plan folds the batch into rows). One symbol per dim, degree one: that is all
// a batch-polymorphic program needs, and it keeps equality checks exact.
import { CompileError } from '../errors.js';

/** A symbolic length `coeff * sym`, e.g. `{ sym: 'N', coeff: 197 }` prints as `197N`. */
export interface SymDim {
  readonly sym: string;
  readonly coeff: number;
}

/** One dimension: a concrete length or a symbolic one. */
export type Dim = number | SymDim;
/** A static shape, possibly with symbolic dims. */
export type Shape = readonly Dim[];

/**
 * A symbolic dim.
 *
 * @example
 * const batch = sym('N');           // N
 * const rows = sym('N', 197);       // 197N
 */
export function sym(name: string, coeff = 1): SymDim {
  return { sym: name, coeff };
}

export function isSym(d: Dim): d is SymDim {
  return typeof d !== 'number';
}

/** `true` when the shape has no symbolic dim. */
export function isConcrete(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

export function dimEq(a: Dim, b: Dim): boolean {
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  return a.sym === b.sym && a.coeff === b.coeff;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => dimEq(d, b[i]));
}

export function fmtDim(d: Dim): string {
  if (typeof d === 'number') return String(d);
  return d.coeff === 1 ? d.sym : `${d.coeff}${d.sym}`;
}

/** `[N, 197, 768]` */
export function fmtShape(shape: Shape): string {
  return `[${shape.map(fmtDim).join(', ')}]`;
}

/** The product of two dims; a product of two symbolic dims is outside the IR (CompileError). */
export function dimMul(a: Dim, b: Dim, op = 'shape'): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  if (typeof a === 'number') return a === 0 ? 0 : sym((b as SymDim).sym, a * (b as SymDim).coeff);
  if (typeof b === 'number') return b === 0 ? 0 : sym(a.sym, a.coeff * b);
  throw new CompileError(
    `${op}: a product of two symbolic dims (${fmtDim(a)} * ${fmtDim(b)}) is not supported`,
    {
      rule: 'symbolic-product',
    },
  );
}

/** The number of elements of `shape`, symbolic when a dim is. */
export function numel(shape: Shape, op = 'shape'): Dim {
  let p: Dim = 1;
  for (const d of shape) p = dimMul(p, d, op);
  return p;
}

/** Stand-in concrete values for symbols when a concrete-only planner (the einops compiler) runs. */
export class StandIns {
  // Large primes: a planned length divisible by one of them came from that symbol.
  private static readonly PRIMES = [1_000_003, 1_000_033, 1_000_037, 1_000_039];
  private readonly values = new Map<string, number>();

  value(name: string): number {
    let v = this.values.get(name);
    if (v === undefined) {
      v = StandIns.PRIMES[this.values.size];
      if (v === undefined)
        throw new CompileError('more than four symbolic dims in one program', { rule: 'symbolic-dims' });
      this.values.set(name, v);
    }
    return v;
  }

  concrete(d: Dim): number {
    return typeof d === 'number' ? d : d.coeff * this.value(d.sym);
  }

  concreteShape(shape: Shape): number[] {
    return shape.map((d) => this.concrete(d));
  }

  /** Back from a planned length: a multiple of a stand-in is that symbol. */
  symbolic(n: number): Dim {
    for (const [name, v] of this.values) if (n !== 0 && n % v === 0) return sym(name, n / v);
    return n;
  }

  symbolicShape(shape: readonly number[]): Dim[] {
    return shape.map((n) => this.symbolic(n));
  }

  /** Replaces stand-in numbers in a planner's message by the symbols they stand for. */
  explain(message: string): string {
    let m = message;
    for (const [name, v] of this.values)
      m = m.replace(new RegExp(`\\b(\\d+)\\b`, 'g'), (s) => {
        const n = Number(s);
        return n !== 0 && n % v === 0 ? fmtDim(sym(name, n / v)) : s;
      });
    return m;
  }
}
