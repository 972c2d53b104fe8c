// Everything in src/vit: the model, its layers, position tables, attention maps, configs and checkpoints.
export * from './model.js';
export * from './layers.js';
export * from './posembed.js';
export * from './attention.js';
export * from './config.js';
export * from './weights.js';
export * from './safetensors.js';
