// The second applier of compiler plans (beside src/compiler/apply.ts): records a plan's steps as
// IR nodes instead of running tfjs ops. Plans are made for concrete shapes; a symbolic batch is
// planned with a stand-in prime length (`StandIns`) and mapped back here, so every reshape target
// keeps the symbol (one symbolic dim per target, written -1 in ONNX).
import { CompileError } from '../errors.js';
import type { Plan } from '../compiler/plan.js';
import type { EinsumPlan } from '../compiler/einsum.js';
import type { StandIns } from './dims.js';
import type { Sym } from './builder.js';
import type { ReduceOp } from './kinds.js';

/**
 * Records `plan` (reshape / transpose / reduce / tile steps) applied to `x`.
 *
 * @example
 * const y = applyPlanIR(planFor('rearrange', 'b h w c -> b c h w', [P, 4, 4, 3], new Map()), x, standIns);
 */
export function applyPlanIR(plan: Plan, x: Sym, s: StandIns): Sym {
  let y = x;
  for (const step of plan.steps) {
    switch (step.kind) {
      case 'reshape':
        y = y.reshape(s.symbolicShape(step.shape));
        break;
      case 'transpose':
        y = y.transpose(step.perm);
        break;
      case 'reduce': {
        const op = step.reduction as ReduceOp;
        y = y.reduce(op, step.axes);
        break;
      }
      case 'tile':
        y = y.tile(step.reps);
        break;
    }
  }
  return y;
}

/**
 * Records an einsum plan (prepare / contract / finish steps, src/compiler/einsum.ts) applied to
 * `xs`: contractions become MatMul nodes ([g, m, k] @ [g, k, n], or 2-D when g is 1).
 *
 * @example
 * const scores = applyEinsumPlanIR(plan, [q, k], standIns);
 */
export function applyEinsumPlanIR(plan: EinsumPlan, xs: readonly Sym[], s: StandIns): Sym {
  const b = xs[0].builder;
  const allBool = xs.every((t) => t.dtype === 'bool');
  const dtype = xs.some((t) => t.dtype === 'float32') ? 'float32' : 'int32';
  const inputs = xs.map((t) => t.cast(dtype));
  if (plan.zeroSize) {
    const shape = plan.outputShape;
    const n = shape.reduce((p, d) => p * d, 1);
    if (shape.some((d) => s.symbolic(d) !== d)) {
      throw new CompileError('einsum: an empty contraction over a symbolic dim cannot be traced', {
        rule: 'untraceable',
      });
    }
    const z = b.constant(new Array<number>(n).fill(0), [...shape], dtype);
    return allBool ? z.equal(0).not() : z;
  }
  const slots: Sym[] = [];
  let result: Sym | undefined;
  for (const step of plan.steps) {
    if (step.kind === 'prepare') {
      let y = inputs[step.operand];
      if (step.squeezeTo) y = y.reshape(s.symbolicShape(step.squeezeTo));
      for (const { a, b: bAxis, n } of step.diagonals) {
        const eye = new Array<number>(n * n).fill(0);
        for (let i = 0; i < n; i++) eye[i * n + i] = 1;
        const maskShape = y.shape.map((_, axis) => (axis === a || axis === bAxis ? n : 1));
        y = y.mul(b.constant(eye, maskShape, y.dtype)).sum([bAxis]);
      }
      if (step.sumAxes.length > 0) y = y.sum(step.sumAxes);
      slots.push(y);
    } else if (step.kind === 'contract') {
      const { g, m, k, n } = step;
      const dims = (...d: number[]) => s.symbolicShape(g === 1 ? d.slice(1) : d);
      let l = slots[step.left];
      let r = slots[step.right];
      if (step.permLeft) l = l.transpose(step.permLeft);
      if (step.permRight) r = r.transpose(step.permRight);
      l = l.reshape(step.leftT ? dims(g, k, m) : dims(g, m, k));
      r = r.reshape(step.rightT ? dims(g, n, k) : dims(g, k, n));
      const swap = g === 1 ? [1, 0] : [0, 2, 1];
      if (step.leftT) l = l.transpose(swap);
      if (step.rightT) r = r.transpose(swap);
      slots.push(l.matMul(r).reshape(s.symbolicShape(step.shape)));
    } else {
      const last = slots[slots.length - 1];
      result = (step.perm ? last.transpose(step.perm) : last).reshape(s.symbolicShape(step.shape));
    }
  }
  const out = result!;
  return allBool ? out.equal(b.scalar(0, out.dtype)).not() : out;
}
