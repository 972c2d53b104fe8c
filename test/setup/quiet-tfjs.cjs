// Preloaded with --require into every test process and, through the execArgv they inherit, every
// worker thread (an ESM --import preload does not reach workers on Node 20). tfjs' PROD flag only
// gates its console warnings, such as the "install tfjs-node" banner the cpu backend prints on first
// use; no check or kernel depends on it (tfjs-core's log.warn/log.log are its only readers).
/* global require */
/* eslint-disable @typescript-eslint/no-require-imports */
require('@tensorflow/tfjs-core').env().set('PROD', true);
