// The ONNX schema through protobufjs (the official onnx.proto, compiled to a JSON descriptor in
// schema.ts): encode and decode ModelProto without a hand-written encoder.
import protobuf from 'protobufjs';
import { ONNX_SCHEMA } from './schema.js';

let root: protobuf.Root | undefined;

/** The protobufjs type of an ONNX message, e.g. `onnxType('ModelProto')`. */
export function onnxType(name: string): protobuf.Type {
  root ??= protobuf.Root.fromJSON(ONNX_SCHEMA as unknown as protobuf.INamespace);
  return root.lookupType(`onnx.${name}`);
}

/** ONNX TensorProto.DataType values einvit uses. */
export const ONNX_DTYPE = { float32: 1, int32: 6, int64: 7, bool: 9 } as const;

/** Plain-object ModelProto (the fields einvit writes and reads). */
export interface ModelJson {
  irVersion?: number | protobuf.Long;
  producerName?: string;
  producerVersion?: string;
  opsetImport?: Array<{ domain?: string; version?: number | protobuf.Long }>;
  graph?: {
    name?: string;
    node?: unknown[];
    initializer?: unknown[];
    input?: Array<{ name?: string; type?: unknown }>;
    output?: Array<{ name?: string; type?: unknown }>;
  };
  metadataProps?: Array<{ key?: string; value?: string }>;
}

/** Encodes a ModelProto given as a plain object. */
export function encodeModel(model: ModelJson): Uint8Array {
  const T = onnxType('ModelProto');
  return T.encode(T.fromObject(model)).finish();
}

/** Decodes ModelProto bytes (throws protobufjs' error on malformed input). */
export function decodeModel(bytes: Uint8Array): ModelJson {
  const T = onnxType('ModelProto');
  return T.toObject(T.decode(bytes), { longs: Number, bytes: Uint8Array as never }) as ModelJson;
}
