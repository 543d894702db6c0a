/** The global the worker glue bundle defines. */
export const GLUE_GLOBAL: string;
/** The worker glue (src/wasm/worker-glue.ts and what it imports) bundled as one script. */
export function bundleWorkerGlue(): Promise<string>;
/** The TypeScript module source that scripts/embed-wasm.mjs writes around the bundle. */
export function glueModule(text: string): string;
