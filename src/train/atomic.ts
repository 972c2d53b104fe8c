// Moved to src/io/atomic.ts (one atomic writer for every file einvit saves); kept so imports from here work.
export { writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
