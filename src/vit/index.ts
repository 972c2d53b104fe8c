// Everything in src/vit: the model, its definition and op surfaces, layers, position tables, attention
// maps, configs and checkpoints.
export * from './model.js';
export * from './params.js';
export * from './surface.js';
export * from './network.js';
export * from './eager.js';
export * from './layers.js';
export * from './posembed.js';
export * from './attention.js';
export * from './config.js';
export * from './weights.js';
export * from './safetensors.js';
