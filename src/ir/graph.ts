// The graph: nodes in topological order (a node's inputs come before it), ids are indices.
import { CompileError } from '../errors.js';
import { inferType, type Data, type DType, type Op, type TensorType } from './kinds.js';
import type { Shape } from './dims.js';

/** One node: its op (kind + attributes), its inputs (node ids) and its inferred static type. */
export interface Node {
  readonly id: number;
  readonly op: Op;
  readonly inputs: readonly number[];
  readonly type: TensorType;
}

/** A named output of a graph. */
export interface Output {
  readonly name: string;
  readonly id: number;
}

/**
 * A whole program: nodes in topological order (`nodes[i].id === i`), graph inputs are the `input`
 * nodes in order, parameters the `param` nodes, and named outputs.
 */
export interface Graph {
  readonly nodes: readonly Node[];
  readonly outputs: readonly Output[];
}

/** The `input` nodes of a graph, in order. */
export function graphInputs(g: Graph): Array<Node & { op: Extract<Op, { kind: 'input' }> }> {
  return g.nodes.filter((n) => n.op.kind === 'input') as Array<Node & { op: Extract<Op, { kind: 'input' }> }>;
}

/** The `param` nodes of a graph, in order. */
export function graphParams(g: Graph): Array<Node & { op: Extract<Op, { kind: 'param' }> }> {
  return g.nodes.filter((n) => n.op.kind === 'param') as Array<Node & { op: Extract<Op, { kind: 'param' }> }>;
}

/** Typed-array constructor for a dtype. */
export function dataFor(dtype: DType, values: ArrayLike<number>): Data {
  if (dtype === 'float32') return Float32Array.from(values);
  if (dtype === 'int32') return Int32Array.from(values);
  return Uint8Array.from(values, (v) => (v ? 1 : 0));
}

/**
 * Appends nodes with their types checked, for builders and passes. `add` infers the type (shape
 * rule of the kind) and throws a CompileError naming the op when shapes do not fit.
 */
export class NodeList {
  readonly nodes: Node[] = [];

  add(op: Op, inputs: readonly number[]): number {
    for (const i of inputs) {
      if (!(i >= 0 && i < this.nodes.length))
        throw new CompileError(`${op.kind}: input %${i} does not exist`, { rule: 'graph' });
    }
    const type = inferType(
      op,
      inputs.map((i) => this.nodes[i].type),
    );
    const id = this.nodes.length;
    this.nodes.push({ id, op, inputs: [...inputs], type });
    return id;
  }

  type(id: number): TensorType {
    return this.nodes[id].type;
  }

  shape(id: number): Shape {
    return this.nodes[id].type.shape;
  }
}
