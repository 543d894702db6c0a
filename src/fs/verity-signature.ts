/**
 * The volume's signature policy for sealed files, as the kernel's
 * fs/verity/signature.c applies `fs.verity.require_signatures` and the
 * `.fs-verity` keyring: when a file is sealed and when its descriptor is
 * first read, an unsigned file is EPERM if signatures are required, and a
 * signed one must verify against the trusted certificates when there are
 * any (EKEYREJECTED or EBADMSG otherwise), validity dates not checked.
 */
import { fail, isErrno } from '../errors.js';
import { computeFileDigest } from '../verity/descriptor.js';
import type { HashAlgorithm } from '../verity/hash-algs.js';
import { verifyFsveritySignature } from '../verity/signature.js';
import type { Inode } from './inode.js';
import type { Mount } from './mount.js';

/**
 * Apply the policy to `inode` whose descriptor (256 bytes) is `descriptor`
 * and whose built-in signature is `signature` (empty when none); `when`
 * says whether it is being sealed or opened, for the message.
 */
export async function checkSignaturePolicy(
  mp: Mount,
  inode: Inode,
  algorithm: HashAlgorithm,
  descriptor: Uint8Array,
  signature: Uint8Array,
  when: 'seal' | 'open',
): Promise<void> {
  const { trusted, require } = mp.signatures;
  const name = JSON.stringify(inode.name);
  if (signature.length === 0) {
    if (!require) return;
    throw fail(
      'EPERM',
      when === 'seal'
        ? `this volume requires fs-verity signatures: sealing file ${name} needs a signature (\`iomap-verity sign\` or signFsverityDigest)`
        : `this volume requires fs-verity signatures and file ${name} is sealed without one: it cannot be read`,
    );
  }
  if (!trusted) return;
  const digest = await computeFileDigest(algorithm, descriptor);
  try {
    // The kernel does not look at certificate validity dates: a sealed file
    // does not become unreadable when its certificate expires.
    await verifyFsveritySignature(signature, { algorithm: algorithm.name, digest }, { trusted, time: false });
  } catch (e) {
    if (!isErrno(e)) throw e;
    throw fail(e.code, `file ${name}'s fs-verity signature ${when === 'seal' ? 'is refused' : 'fails'}: ${e.message}`, e);
  }
}
