/**
 * The public API bundled for the browser with esbuild, as one IIFE script
 * that defines `IomapVerity`. Node built-ins stay external: FileDevice and
 * fsverityDigestFile load node:fs lazily, only when called.
 */
import { build } from 'esbuild';
import { resolve } from 'node:path';

export async function browserBundle(): Promise<string> {
  const out = await build({
    entryPoints: [resolve(__dirname, '../../src/index.ts')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'IomapVerity',
    write: false,
    external: ['node:*'],
    logLevel: 'silent',
  });
  return out.outputFiles[0]!.text;
}
