// Renders a plan as the tfjs calls it runs, one line per step, with shapes.
import type { Plan } from './plan.js';

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Describes a plan step by step, e.g.
 * `tf.transpose(x, [0, 2, 1])   [2, 3, 4] -> [2, 4, 3]`.
 */
export function explainPlan(plan: Plan): string[] {
  const lines: string[] = [];
  let shape: readonly number[] = plan.inputShape;
  for (const step of plan.steps) {
    let call: string;
    let next: readonly number[];
    switch (step.kind) {
      case 'reshape':
        call = `tf.reshape(x, ${fmt(step.shape)})`;
        next = step.shape;
        break;
      case 'transpose':
        call = `tf.transpose(x, ${fmt(step.perm)})`;
        next = step.perm.map((p) => shape[p]);
        break;
      case 'reduce':
        call = `tf.${step.reduction}(x, ${fmt(step.axes)})`;
        next = shape.filter((_, i) => !step.axes.includes(i));
        break;
      case 'tile':
        call = `tf.tile(x, ${fmt(step.reps)})`;
        next = shape.map((d, i) => d * step.reps[i]);
        break;
    }
    lines.push(`${call.padEnd(40)} ${fmt(shape)} -> ${fmt(next)}`);
    shape = next;
  }
  if (lines.length === 0) lines.push(`(no op: the output is the input) ${fmt(shape)}`);
  return lines;
}
