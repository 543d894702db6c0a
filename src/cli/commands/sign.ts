/**
 * `iomap-verity sign FILE OUT_SIGFILE --key=KEY.pem [--cert=CERT.pem]`:
 * fsverity-utils' `fsverity sign`, same options, output line, exit statuses
 * (2 for a bad command line, 1 for a failure) and, for RSA keys, the same
 * signature bytes. PKCS#11 tokens are refused: they need OpenSSL engines or
 * providers, which have no counterpart in WebCrypto.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { isErrno, signFsverityDigest, toHex } from '../../index.js';
import { EXIT_FAILURE, strerror, UsageError, type CliIo, type Command } from '../command.js';
import { getoptLong } from '../getopt.js';
import { closeTreeOutputs, digestWithTreeOptions, newTreeOptions, parseTreeOption, reportDigestFailure, TREE_LONGOPTS } from './digest.js';

const USAGE = `Usage:
    iomap-verity sign FILE OUT_SIGFILE
               [--key=KEYFILE] [--cert=CERTFILE]
               [--hash-alg=HASH_ALG] [--block-size=BLOCK_SIZE] [--salt=SALT]
               [--out-merkle-tree=FILE] [--out-descriptor=FILE]
`;

const LONGOPTS = [
  ...TREE_LONGOPTS,
  { name: 'key', hasArg: true },
  { name: 'cert', hasArg: true },
  { name: 'pkcs11-engine', hasArg: true },
  { name: 'pkcs11-module', hasArg: true },
  { name: 'pkcs11-keyid', hasArg: true },
] as const;

function signFailure(io: CliIo, message: string): number {
  io.stderr.write(`ERROR: ${message}\nERROR: failed to sign digest\n`);
  return EXIT_FAILURE;
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch (e) {
    throw new PemReadError(`can't open '${path}' for reading: ${strerror(e)}`, what);
  }
}

class PemReadError extends Error {
  constructor(message: string, readonly what: string) {
    super(message);
  }
}

async function run(args: string[], io: CliIo): Promise<number> {
  const { options, operands } = getoptLong('sign', args, LONGOPTS);
  const t = newTreeOptions();
  let key: string | undefined;
  let cert: string | undefined;
  let pkcs11: string | undefined;
  try {
    for (const { name, value } of options) {
      if (parseTreeOption(t, name, value)) continue;
      if (name === 'key' || name === 'cert') {
        if ((name === 'key' ? key : cert) !== undefined) throw new UsageError(`ERROR: --${name} can only be specified once`);
        if (name === 'key') key = value;
        else cert = value;
      } else {
        pkcs11 ??= name;
      }
    }
    if (operands.length !== 2) throw new UsageError('');
    const [file, sigPath] = operands as [string, string];

    let digest;
    try {
      digest = await digestWithTreeOptions(file, t, io);
    } catch (e) {
      return reportDigestFailure(e, io);
    }

    if (pkcs11 !== undefined) {
      return signFailure(
        io,
        `--${pkcs11}: PKCS#11 tokens are not supported (EOPNOTSUPP): sign with a PEM key file (--key), or use fsverity-utils' \`fsverity sign\` for keys held in a token`,
      );
    }
    if (key === undefined) return signFailure(io, 'no private key specified');
    let sig: Uint8Array;
    try {
      sig = await signFsverityDigest(digest.result, { key: readPem(key, 'key'), cert: readPem(cert ?? key, 'certificate') });
    } catch (e) {
      if (e instanceof PemReadError) return signFailure(io, e.message);
      if (!isErrno(e)) throw e;
      return signFailure(io, `${e.message} (${e.code})`);
    }
    try {
      writeFileSync(sigPath, sig, { mode: 0o644 });
    } catch (e) {
      io.stderr.write(`ERROR: can't open '${sigPath}' for writing: ${strerror(e)}\n`);
      return EXIT_FAILURE;
    }
    io.stdout.write(`Signed file '${file}' (${digest.alg.name}:${toHex(digest.result.digest)})\n`);
    return 0;
  } finally {
    closeTreeOutputs(t);
  }
}

export const signCommand: Command = {
  name: 'sign',
  summary: 'sign a file for fs-verity built-in signature verification, as `fsverity sign` does',
  usage: USAGE,
  run,
};
