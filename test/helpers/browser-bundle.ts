/**
 * The public API bundled for the browser with esbuild, as one IIFE script
 * that defines `IomapVerity`. `#platform` resolves to its browser side (as
 * the package's "imports" map gives it to bundlers targeting browsers), and
 * no `node:` module may be reached: the build fails if one is.
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
    plugins: [
      {
        name: 'platform-browser',
        setup(b) {
          b.onResolve({ filter: /^#platform$/ }, () => ({ path: resolve(__dirname, '../../src/platform/browser.ts') }));
        },
      },
    ],
    logLevel: 'silent',
  });
  return out.outputFiles[0]!.text;
}
