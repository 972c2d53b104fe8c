/**
 * The graph IR: node kinds with static shapes (a symbolic batch allowed), a builder that records
 * programs on symbolic tensors, a printer and a reference interpreter on tfjs.
 *
 * @example
 * import { GraphBuilder, sym, printGraph } from './ir/index.js';
 * const g = new GraphBuilder();
 * const x = g.input('x', [sym('N'), 8]);
 * console.log(printGraph(g.build({ y: x.softmax(-1) })));
 */
export { sym, isSym, isConcrete, dimEq, shapeEq, fmtDim, fmtShape, numel, StandIns } from './dims.js';
export type { Dim, SymDim, Shape } from './dims.js';
export { KINDS, inferType, broadcastShapes, UNARY, BINARY, COMPARE, REDUCE } from './kinds.js';
export type {
  Op,
  OpOf,
  Kind,
  KindRule,
  TensorType,
  DType,
  Data,
  UnaryKind,
  BinaryKind,
  CompareKind,
  ReduceOp,
} from './kinds.js';
export { NodeList, graphInputs, graphParams, dataFor } from './graph.js';
export type { Graph, Node, Output } from './graph.js';
export { GraphBuilder, Sym } from './builder.js';
export type { SymLike } from './builder.js';
export { printGraph, formatNode } from './print.js';
export { evaluate } from './evaluate.js';
export { optimize, prune } from './passes.js';
export type { PassOptions } from './passes.js';
export { applyPlanIR, applyEinsumPlanIR } from './from-plan.js';
export { isSymbolic } from './trace.js';
