// Einsum, lowered to transposes, reshapes and plain 2-D matMuls: the pattern's labels (einsum-recipe.ts),
// the plan for given shapes (einsum-plan.ts), the batched-product strategies and their cost model
// (einsum-strategies.ts), and the executor (einsum-apply.ts).
export { einsumLabels } from './einsum-recipe.js';
export {
  planEinsum,
  type BatchStrategy,
  type ContractStep,
  type EinsumOptions,
  type EinsumPlan,
  type EinsumStep,
  type FinishStep,
  type PrepareStep,
} from './einsum-plan.js';
export { chooseBatchStrategy, BATCH_STRATEGY_MEASUREMENTS, SPLIT_MIN_BLOCK } from './einsum-strategies.js';
export { runEinsum } from './einsum-apply.js';
