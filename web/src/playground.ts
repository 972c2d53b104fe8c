// The pattern playground: pattern, shape and axis lengths in, output shape and plan out, live.
import { explain } from '../../src/cli/explain.js';
import { describeError } from './model.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

/** Splits `p1=7 p2=7` (spaces or commas) into `name=value` arguments as the CLI takes them. */
function lengthArgs(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => s !== '');
}

/** Recomputes the playground's output from its inputs; errors go on the page, never to the console. */
export function updatePlayground(): void {
  const op = $<HTMLSelectElement>('pg-op').value;
  $('pg-reduction-label').style.visibility = op === 'reduce' ? 'visible' : 'hidden';
  const out = $('pg-output-shape');
  const plan = $('pg-plan');
  const error = $('pg-error');
  try {
    const lines = explain(
      $<HTMLInputElement>('pg-pattern').value,
      {
        shape: $<HTMLInputElement>('pg-shape').value,
        op,
        reduction: $<HTMLSelectElement>('pg-reduction').value,
      },
      lengthArgs($<HTMLInputElement>('pg-lengths').value),
    );
    // The last line is `output [..]`; the ones between the header and it are the plan's steps.
    out.textContent = lines[lines.length - 1].replace(/^output\s+/, '');
    plan.textContent = lines.slice(0, -1).join('\n');
    error.textContent = '';
  } catch (e) {
    out.textContent = '—';
    plan.textContent = '';
    error.textContent = describeError(e);
  }
}

/** Wires the inputs so every keystroke updates the output. */
export function initPlayground(): void {
  for (const id of ['pg-op', 'pg-reduction', 'pg-pattern', 'pg-shape', 'pg-lengths']) {
    $(id).addEventListener('input', updatePlayground);
  }
  updatePlayground();
}
