/**
 * fs-verity built-in signatures: PKCS#7 (CMS SignedData, DER, detached)
 * over the formatted digest, made and checked with WebCrypto so the same
 * code runs in Node and in browsers.
 *
 * What is signed is `fsverity_formatted_digest`: "FSVerity", le16
 * algorithm number, le16 digest size, the digest. The message is the one
 * fsverity-utils builds with OpenSSL's PKCS7_sign under PKCS7_DETACHED,
 * PKCS7_NOATTR and PKCS7_NOCERTS: SignedData version 1, one digest
 * algorithm (the fs-verity hash, NULL parameters), content type `data`
 * without content, no certificates, one SignerInfo version 1 naming the
 * certificate by issuer and serial number, no signed attributes, and the
 * signature over the formatted digest itself. RSA there is PKCS#1 v1.5,
 * which is deterministic, so our bytes equal `fsverity sign`'s.
 *
 * The ASN.1 and CMS structures come from PKI.js and asn1js; the crypto is
 * `crypto.subtle`. Verification follows the kernel's PKCS#7 checks: the
 * content must be detached, every signer's signature must hold, and a
 * signer must be one of the trusted certificates (the kernel finds it in
 * the `.fs-verity` keyring by issuer and serial number or key identifier).
 */
import * as asn1js from 'asn1js';
import {
  AlgorithmIdentifier,
  Certificate,
  ContentInfo,
  createCMSECDSASignature,
  createECDSASignatureFromCMS,
  EncapsulatedContentInfo,
  IssuerAndSerialNumber,
  PrivateKeyInfo,
  SignedData,
  SignerInfo,
} from 'pkijs';
import { fail, isErrno, isUint8Array } from '../errors.js';
import { hashAlgorithmByName, type HashAlgorithm, type HashAlgorithmName } from './hash-algs.js';

/** A file digest to sign or check: `'sha256:<hex>'` as `fsverity digest` prints it, or its parts (what `fsverityDigest` and `measureVerity` return). */
export type FsverityDigestInput = string | { readonly algorithm: HashAlgorithmName; readonly digest: Uint8Array };

/** PEM text, as a string or its bytes (a file read as is). */
export type PemInput = string | Uint8Array;

/** Keys for `signFsverityDigest`. */
export interface SignFsverityDigestOptions {
  /** The private key in PEM: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`); RSA or ECDSA P-256/P-384/P-521; not encrypted. Other PEM blocks in the text are skipped. */
  key: PemInput;
  /** The signer's X.509 certificate in PEM (the first `CERTIFICATE` block is used); it must hold the public half of `key`. */
  cert: PemInput;
}

/** What `verifyFsveritySignature` checks against. */
export interface VerifyFsveritySignatureOptions {
  /** The certificates trusted to sign files, in PEM (each string may hold several): the userspace counterpart of the kernel's `.fs-verity` keyring. */
  trusted: readonly PemInput[];
  /** The time at which the signing certificate must be valid (default: now); `false` skips the check, as the kernel does. */
  time?: Date | false;
}

/** Who signed: the result of a successful `verifyFsveritySignature`. */
export interface FsveritySignatureSigner {
  /** Index of the signing certificate among the certificates of `trusted` (in order, counting every certificate of every PEM text). */
  index: number;
  /** That certificate in PEM. */
  certificate: string;
  /** Its subject, as `CN=…, O=…`. */
  subject: string;
  /** Its serial number in hex. */
  serialNumber: string;
  /** The hash the signer used over the formatted digest. */
  hashAlgorithm: 'sha256' | 'sha384' | 'sha512';
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecPublicKey: '1.2.840.10045.2.1',
  contentTypeAttr: '1.2.840.113549.1.9.3',
  messageDigestAttr: '1.2.840.113549.1.9.4',
  subjectKeyIdentifier: '2.5.29.14',
} as const;

const DIGEST_OIDS: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
const DIGEST_OID_BY_NAME = { sha256: '2.16.840.1.101.3.4.2.1', sha384: '2.16.840.1.101.3.4.2.2', sha512: '2.16.840.1.101.3.4.2.3' };

/** `<hash>WithRSAEncryption`: accepted from other signers, never written (OpenSSL writes rsaEncryption). */
const RSA_SIG_OIDS: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};
const ECDSA_SIG_OIDS: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};
const ECDSA_SIG_OID_BY_HASH = { sha256: '1.2.840.10045.4.3.2', sha384: '1.2.840.10045.4.3.3', sha512: '1.2.840.10045.4.3.4' };

const CURVES: Record<string, { name: 'P-256' | 'P-384' | 'P-521'; size: number }> = {
  '1.2.840.10045.3.1.7': { name: 'P-256', size: 32 },
  '1.3.132.0.34': { name: 'P-384', size: 48 },
  '1.3.132.0.35': { name: 'P-521', size: 66 },
};

const WEBCRYPTO_HASH = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' } as const;

/** A copy in an ArrayBuffer of its own, the BufferSource WebCrypto's types ask for. */
function ab(u: Uint8Array): ArrayBuffer {
  return u.slice().buffer as ArrayBuffer;
}

function subtle(): SubtleCrypto {
  const s = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (!s) throw fail('EOPNOTSUPP', 'fs-verity signatures need WebCrypto (crypto.subtle), which this environment does not offer (browsers give it only to secure contexts: https or localhost)');
  return s;
}

/**
 * The bytes fs-verity signs for a file digest (`fsverity_formatted_digest`):
 * "FSVerity", le16 algorithm number, le16 digest size, then the digest;
 * what `fsverity digest --for-builtin-sig` prints in hex. EINVAL for a
 * digest that is not an fs-verity digest.
 */
export function formatSignedDigest(digest: FsverityDigestInput): Uint8Array {
  const { alg, bytes } = parseDigest(digest);
  const out = new Uint8Array(12 + bytes.length);
  out.set([0x46, 0x53, 0x56, 0x65, 0x72, 0x69, 0x74, 0x79]); // "FSVerity"
  const dv = new DataView(out.buffer);
  dv.setUint16(8, alg.id, true);
  dv.setUint16(10, bytes.length, true);
  out.set(bytes, 12);
  return out;
}

function parseDigest(digest: FsverityDigestInput): { alg: HashAlgorithm; bytes: Uint8Array } {
  let name: unknown;
  let bytes: Uint8Array;
  if (typeof digest === 'string') {
    const m = /^([a-z0-9]+):([0-9a-fA-F]*)$/.exec(digest.trim());
    if (!m || m[2]!.length % 2 !== 0) throw fail('EINVAL', `not an fs-verity digest: ${JSON.stringify(digest)} (expected "sha256:<hex>" as \`fsverity digest\` prints it)`);
    name = m[1];
    bytes = Uint8Array.from(m[2]!.match(/../g) ?? [], (h) => parseInt(h, 16));
  } else if (digest && typeof digest === 'object' && isUint8Array(digest.digest)) {
    name = digest.algorithm;
    bytes = digest.digest;
  } else {
    throw fail('EINVAL', 'the digest must be "sha256:<hex>" or { algorithm, digest: Uint8Array }');
  }
  const alg = typeof name === 'string' ? hashAlgorithmByName(name) : undefined;
  if (!alg) throw fail('EINVAL', `unknown fs-verity hash algorithm ${JSON.stringify(name)}: sha256 and sha512 are defined`);
  if (bytes.length !== alg.digestSize) throw fail('EINVAL', `malformed fs-verity digest: ${alg.name} digests have ${alg.digestSize} bytes, this one has ${bytes.length}`);
  return { alg, bytes: Uint8Array.from(bytes) };
}

// ---------------------------------------------------------------- PEM

interface PemBlock {
  label: string;
  headers: string;
  der: Uint8Array;
}

function pemText(input: PemInput, what: string): string {
  if (typeof input === 'string') return input;
  if (isUint8Array(input)) return new TextDecoder('latin1').decode(input);
  throw fail('EINVAL', `the ${what} must be PEM text (a string or its bytes)`);
}

function pemBlocks(text: string, what: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const body = m[2]!;
    const sep = /\r?\n\r?\n/.exec(body);
    const hasHeaders = /^\s*[A-Za-z-]+:/.test(body);
    const headers = hasHeaders && sep ? body.slice(0, sep.index) : '';
    const b64 = (hasHeaders && sep ? body.slice(sep.index) : body).replace(/\s+/g, '');
    let der: Uint8Array;
    try {
      der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    } catch (e) {
      throw fail('EBADMSG', `the ${what}'s PEM block "${m[1]}" is not valid base64`, e);
    }
    blocks.push({ label: m[1]!, headers, der });
  }
  return blocks;
}

function parseAsn1(der: Uint8Array, what: string): asn1js.AsnType {
  const asn = asn1js.fromBER(der);
  if (asn.offset === -1 || asn.offset !== der.length) {
    throw fail('EBADMSG', `malformed ${what}: not one DER value${asn.offset === -1 ? ` (${asn.result.error})` : ` (${der.length - asn.offset} bytes after its end)`}`);
  }
  return asn.result;
}

/**
 * Parse `der` and insist that it is DER: asn1js accepts a constructed value
 * whose length disagrees with its contents, so the parse is encoded again
 * and must give the same bytes (DER has one encoding per value).
 */
function parseDer(der: Uint8Array, what: string): asn1js.AsnType {
  const result = parseAsn1(der, what);
  if (!bytesEqual(new Uint8Array(result.toBER(false)), der)) throw fail('EBADMSG', `malformed ${what}: not DER (a length or encoding is not the canonical one)`);
  return result;
}

function parseCertificate(der: Uint8Array, what: string): Certificate {
  try {
    return new Certificate({ schema: parseAsn1(der, what) });
  } catch (e) {
    if (isErrno(e)) throw e;
    throw fail('EBADMSG', `malformed ${what}: not an X.509 certificate (${(e as Error).message})`, e);
  }
}

function certificatesOf(input: PemInput, what: string): { cert: Certificate; der: Uint8Array }[] {
  return pemBlocks(pemText(input, what), what)
    .filter((b) => b.label === 'CERTIFICATE' || b.label === 'X509 CERTIFICATE' || b.label === 'TRUSTED CERTIFICATE')
    .map((b) => ({ cert: parseCertificate(b.der, what), der: b.der }));
}

function toPem(label: string, der: Uint8Array): string {
  let bin = '';
  for (const b of der) bin += String.fromCharCode(b);
  const b64 = btoa(bin);
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

// ---------------------------------------------------------------- keys

interface SigningKey {
  type: 'rsa' | 'ec';
  curve?: { name: 'P-256' | 'P-384' | 'P-521'; size: number };
  /** The key as PKCS#8 DER, for importKey. */
  pkcs8: Uint8Array;
}

function algorithmIdentifier(oid: string, params?: asn1js.AsnType): AlgorithmIdentifier {
  return new AlgorithmIdentifier({ algorithmId: oid, algorithmParams: params });
}

function wrapPkcs8(algorithm: AlgorithmIdentifier, inner: Uint8Array): Uint8Array {
  const info = new PrivateKeyInfo();
  info.version = 0;
  info.privateKeyAlgorithm = algorithm;
  info.privateKey = new asn1js.OctetString({ valueHex: inner });
  return new Uint8Array(info.toSchema().toBER(false));
}

function keyProblem(message: string, cause?: unknown): never {
  throw fail('EBADMSG', `failed to parse the private key: ${message}; it must be PEM PKCS#8 ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY")`, cause);
}

function readPrivateKey(input: PemInput): SigningKey {
  const blocks = pemBlocks(pemText(input, 'private key'), 'private key');
  const block = blocks.find((b) => /PRIVATE KEY$/.test(b.label));
  if (!block) keyProblem('no private key block found in the PEM text');
  if (block.label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,\s*ENCRYPTED/i.test(block.headers)) {
    throw fail(
      'EOPNOTSUPP',
      'the private key is encrypted with a passphrase, which is not supported: decrypt it first (`openssl pkey -in KEY.pem -out PLAIN.pem`) and keep the plain key where only the signer can read it',
    );
  }
  const asn = parseAsn1(block.der, 'private key');
  try {
    if (block.label === 'PRIVATE KEY') {
      const info = new PrivateKeyInfo({ schema: asn });
      const oid = info.privateKeyAlgorithm.algorithmId;
      if (oid === OID.rsaEncryption) return { type: 'rsa', pkcs8: block.der };
      if (oid === OID.ecPublicKey) {
        const params = info.privateKeyAlgorithm.algorithmParams;
        const curve = params instanceof asn1js.ObjectIdentifier ? CURVES[params.valueBlock.toString()] : undefined;
        if (!curve) keyProblem('an EC key on a curve other than P-256, P-384 or P-521 (named curves only)');
        return { type: 'ec', curve, pkcs8: block.der };
      }
      keyProblem(`keys of algorithm ${oid} cannot sign fs-verity files here (RSA and ECDSA can)`);
    }
    if (block.label === 'RSA PRIVATE KEY') {
      return { type: 'rsa', pkcs8: wrapPkcs8(algorithmIdentifier(OID.rsaEncryption, new asn1js.Null()), block.der) };
    }
    if (block.label === 'EC PRIVATE KEY') {
      // SEC1 keys name their curve in [0] parameters; PKCS#8 moves the
      // curve into the algorithm identifier, and WebCrypto wants it there.
      const seq = asn as asn1js.Sequence;
      const params = seq.valueBlock?.value?.find((v) => v.idBlock.tagClass === 3 && v.idBlock.tagNumber === 0) as asn1js.Constructed | undefined;
      const curveOid = params?.valueBlock.value[0];
      const curve = curveOid instanceof asn1js.ObjectIdentifier ? CURVES[curveOid.valueBlock.toString()] : undefined;
      if (!curve || !(curveOid instanceof asn1js.ObjectIdentifier)) keyProblem('an EC key without a named curve P-256, P-384 or P-521');
      return {
        type: 'ec',
        curve,
        pkcs8: wrapPkcs8(algorithmIdentifier(OID.ecPublicKey, new asn1js.ObjectIdentifier({ value: curveOid.valueBlock.toString() })), block.der),
      };
    }
  } catch (e) {
    if (isErrno(e)) throw e;
    keyProblem((e as Error).message, e);
  }
  keyProblem(`a "${block.label}" block is not a key type read here`);
}

function rsaParams(hash: keyof typeof WEBCRYPTO_HASH): RsaHashedImportParams {
  return { name: 'RSASSA-PKCS1-v1_5', hash: WEBCRYPTO_HASH[hash] };
}

async function importPrivate(key: SigningKey, hash: 'sha256' | 'sha512'): Promise<CryptoKey> {
  const alg = key.type === 'rsa' ? rsaParams(hash) : { name: 'ECDSA', namedCurve: key.curve!.name };
  try {
    return await subtle().importKey('pkcs8', ab(key.pkcs8), alg, true, ['sign']);
  } catch (e) {
    keyProblem(`WebCrypto refused it (${(e as Error).message})`, e);
  }
}

function spkiOf(cert: Certificate): Uint8Array {
  return new Uint8Array(cert.subjectPublicKeyInfo.toSchema().toBER(false));
}

function certKeyType(cert: Certificate): { type: 'rsa' | 'ec'; curve?: (typeof CURVES)[string] } | undefined {
  const alg = cert.subjectPublicKeyInfo.algorithm;
  if (alg.algorithmId === OID.rsaEncryption) return { type: 'rsa' };
  if (alg.algorithmId === OID.ecPublicKey) {
    const p = alg.algorithmParams;
    const curve = p instanceof asn1js.ObjectIdentifier ? CURVES[p.valueBlock.toString()] : undefined;
    return curve ? { type: 'ec', curve } : undefined;
  }
  return undefined;
}

async function importPublic(cert: Certificate, hash: 'sha256' | 'sha384' | 'sha512'): Promise<CryptoKey> {
  const kt = certKeyType(cert);
  if (!kt) throw fail('EKEYREJECTED', `the certificate's key (algorithm ${cert.subjectPublicKeyInfo.algorithm.algorithmId}) is neither RSA nor ECDSA on P-256, P-384 or P-521`);
  const alg = kt.type === 'rsa' ? rsaParams(hash) : { name: 'ECDSA', namedCurve: kt.curve!.name };
  try {
    return await subtle().importKey('spki', ab(spkiOf(cert)), alg, true, ['verify']);
  } catch (e) {
    throw fail('EBADMSG', `the certificate's public key cannot be read (${(e as Error).message})`, e);
  }
}

// ---------------------------------------------------------------- signing

/**
 * Sign a file digest for fs-verity's built-in signature verification: the
 * DER PKCS#7 message `fsverity sign` writes, byte for byte the same for RSA
 * keys (ECDSA signatures are random, and valid). `digest` is `'sha256:<hex>'`
 * or `{ algorithm, digest }` (`fsverityDigest`'s or `measureVerity`'s
 * result); the CMS digest algorithm is the file digest's hash.
 *
 * Rejects with EBADMSG when the key or certificate cannot be parsed,
 * EOPNOTSUPP for a passphrase-protected key, EKEYREJECTED when the key is
 * not the certificate's, EINVAL for a malformed digest.
 */
export async function signFsverityDigest(digest: FsverityDigestInput, opts: SignFsverityDigestOptions): Promise<Uint8Array> {
  const toSign = formatSignedDigest(digest);
  const hash = parseDigest(digest).alg.name;
  if (!opts || typeof opts !== 'object') throw fail('EINVAL', 'signFsverityDigest needs { key, cert }');
  const key = readPrivateKey(opts.key);
  const certs = certificatesOf(opts.cert, 'certificate');
  if (certs.length === 0) throw fail('EBADMSG', 'failed to parse the X.509 certificate: no "CERTIFICATE" block found in the PEM text');
  const cert = certs[0]!.cert;

  const priv = await importPrivate(key, hash);
  await checkKeyMatchesCertificate(priv, key, cert);

  let signature: Uint8Array;
  let sigAlg: AlgorithmIdentifier;
  if (key.type === 'rsa') {
    signature = new Uint8Array(await subtle().sign({ name: 'RSASSA-PKCS1-v1_5' }, priv, ab(toSign)));
    sigAlg = algorithmIdentifier(OID.rsaEncryption, new asn1js.Null());
  } else {
    const raw = await subtle().sign({ name: 'ECDSA', hash: WEBCRYPTO_HASH[hash] }, priv, ab(toSign));
    signature = new Uint8Array(createCMSECDSASignature(raw));
    sigAlg = algorithmIdentifier(ECDSA_SIG_OID_BY_HASH[hash]);
  }

  const signer = new SignerInfo({
    version: 1,
    sid: new IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
    digestAlgorithm: algorithmIdentifier(DIGEST_OID_BY_NAME[hash], new asn1js.Null()),
    signatureAlgorithm: sigAlg,
    signature: new asn1js.OctetString({ valueHex: signature }),
  });
  const signed = new SignedData({
    version: 1,
    digestAlgorithms: [algorithmIdentifier(DIGEST_OID_BY_NAME[hash], new asn1js.Null())],
    encapContentInfo: new EncapsulatedContentInfo({ eContentType: OID.data }),
    signerInfos: [signer],
  });
  const info = new ContentInfo({ contentType: OID.signedData, content: signed.toSchema(true) });
  return new Uint8Array(info.toSchema().toBER(false));
}

async function checkKeyMatchesCertificate(priv: CryptoKey, key: SigningKey, cert: Certificate): Promise<void> {
  const kt = certKeyType(cert);
  const mismatch = (): never => {
    throw fail('EKEYREJECTED', `the private key does not match the certificate (subject ${subjectOf(cert)}): give the certificate of this key`);
  };
  if (!kt || kt.type !== key.type || kt.curve?.name !== key.curve?.name) mismatch();
  const a = (await subtle().exportKey('jwk', priv)) as JsonWebKey;
  const pub = await importPublic(cert, 'sha256');
  const b = (await subtle().exportKey('jwk', pub)) as JsonWebKey;
  if (key.type === 'rsa' ? a.n !== b.n || a.e !== b.e : a.x !== b.x || a.y !== b.y) mismatch();
}

// ---------------------------------------------------------------- verification

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hex(b: ArrayBuffer | Uint8Array): string {
  return Array.from(b instanceof Uint8Array ? b : new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
}

const ATTR_NAMES: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU' };

function subjectOf(cert: Certificate): string {
  return cert.subject.typesAndValues
    .map((tv) => `${ATTR_NAMES[tv.type] ?? tv.type}=${(tv.value.valueBlock as { value?: unknown }).value ?? ''}`)
    .join(', ');
}

function nameDer(cert: Certificate, which: 'issuer' | 'subject'): Uint8Array {
  return new Uint8Array(cert[which].toSchema().toBER(false));
}

function skidOf(cert: Certificate): Uint8Array | undefined {
  const ext = cert.extensions?.find((e) => e.extnID === OID.subjectKeyIdentifier);
  const v = ext?.parsedValue;
  return v instanceof asn1js.OctetString ? v.valueBlock.valueHexView : undefined;
}

function malformed(why: string, cause?: unknown): never {
  throw fail('EBADMSG', `malformed fs-verity signature: ${why}`, cause);
}

function nullOrAbsentParams(a: AlgorithmIdentifier): boolean {
  return a.algorithmParams === undefined || a.algorithmParams instanceof asn1js.Null;
}

function parseSignedData(signature: Uint8Array): SignedData {
  if (!isUint8Array(signature)) throw fail('EINVAL', 'the signature must be a Uint8Array (the DER bytes `fsverity sign` writes)');
  if (signature.length === 0) malformed('it is empty');
  let info: ContentInfo;
  try {
    info = new ContentInfo({ schema: parseDer(signature, 'fs-verity signature') });
  } catch (e) {
    if (isErrno(e)) throw e;
    malformed(`not a PKCS#7 ContentInfo (${(e as Error).message})`, e);
  }
  if (info.contentType !== OID.signedData) malformed(`its content type is ${info.contentType}, not signedData`);
  let sd: SignedData;
  try {
    sd = new SignedData({ schema: info.content });
  } catch (e) {
    malformed(`not a PKCS#7 SignedData (${(e as Error).message})`, e);
  }
  // As the kernel's PKCS#7 parser: SignedData version 1 (PKCS#7) or 3
  // (CMS), and a SignerInfo version that fits the way it names its signer.
  if (sd.version !== 1 && sd.version !== 3) malformed(`its SignedData version is ${sd.version}, not 1 or 3`);
  for (const si of sd.signerInfos) {
    const want = si.sid instanceof IssuerAndSerialNumber ? 1 : 3;
    if (si.version !== want) malformed(`a SignerInfo of version ${si.version} names its signer by ${want === 1 ? 'issuer and serial number' : 'key identifier'}, which needs version ${want}`);
  }
  if (!sd.digestAlgorithms.every(nullOrAbsentParams)) malformed('a digest algorithm of the SignedData has parameters (only NULL or none are defined)');
  for (const si of sd.signerInfos) {
    if (!sd.digestAlgorithms.some((a) => a.algorithmId === si.digestAlgorithm.algorithmId)) {
      malformed(`its signer's digest algorithm ${si.digestAlgorithm.algorithmId} is not among the SignedData's digest algorithms`);
    }
    if (!nullOrAbsentParams(si.digestAlgorithm)) malformed("its signer's digest algorithm has parameters (only NULL or none are defined)");
  }
  if (sd.encapContentInfo.eContentType !== OID.data) malformed(`it signs content of type ${sd.encapContentInfo.eContentType}, not data`);
  if (sd.encapContentInfo.eContent) malformed('it carries its content; fs-verity signatures are detached');
  if (sd.signerInfos.length === 0) malformed('it has no signer');
  return sd;
}

interface Trusted {
  index: number;
  cert: Certificate;
  der: Uint8Array;
}

function findTrusted(signer: SignerInfo, trusted: Trusted[]): Trusted | undefined {
  const sid = signer.sid;
  if (sid instanceof IssuerAndSerialNumber) {
    const issuer = new Uint8Array(sid.issuer.toSchema().toBER(false));
    const serial = sid.serialNumber.valueBlock.valueHexView;
    return trusted.find((t) => bytesEqual(nameDer(t.cert, 'issuer'), issuer) && bytesEqual(t.cert.serialNumber.valueBlock.valueHexView, serial));
  }
  // [0] SubjectKeyIdentifier
  const skid = (sid as asn1js.Constructed | asn1js.Primitive | undefined)?.valueBlock as { valueHexView?: Uint8Array; value?: asn1js.AsnType[] } | undefined;
  const id = skid?.valueHexView ?? (skid?.value?.[0] as asn1js.OctetString | undefined)?.valueBlock.valueHexView;
  if (!id) return undefined;
  return trusted.find((t) => {
    const k = skidOf(t.cert);
    return k !== undefined && bytesEqual(k, id);
  });
}

function describeSid(signer: SignerInfo): string {
  const sid = signer.sid;
  if (sid instanceof IssuerAndSerialNumber) {
    const names = sid.issuer.typesAndValues.map((tv) => `${ATTR_NAMES[tv.type] ?? tv.type}=${(tv.value.valueBlock as { value?: unknown }).value ?? ''}`).join(', ');
    return `issuer ${names}, serial ${hex(sid.serialNumber.valueBlock.valueHexView)}`;
  }
  return 'a subject key identifier';
}

async function verifyOne(signer: SignerInfo, t: Trusted, content: Uint8Array, opts: VerifyFsveritySignatureOptions): Promise<'sha256' | 'sha384' | 'sha512'> {
  const who = `certificate ${t.index} (${subjectOf(t.cert)})`;
  const hash = DIGEST_OIDS[signer.digestAlgorithm.algorithmId];
  if (!hash) malformed(`its digest algorithm ${signer.digestAlgorithm.algorithmId} is not SHA-256, SHA-384 or SHA-512`);
  const time = opts.time ?? new Date();
  if (time !== false) {
    const from = t.cert.notBefore.value;
    const to = t.cert.notAfter.value;
    if (time < from) throw fail('EKEYREJECTED', `the signing ${who} is not valid before ${from.toISOString()}`);
    if (time > to) throw fail('EKEYREJECTED', `the signing ${who} expired on ${to.toISOString()}`);
  }
  const kt = certKeyType(t.cert);
  const sigOid = signer.signatureAlgorithm.algorithmId;
  const sigHash = kt?.type === 'rsa' ? (sigOid === OID.rsaEncryption ? hash : RSA_SIG_OIDS[sigOid]) : ECDSA_SIG_OIDS[sigOid] ?? (sigOid === OID.ecPublicKey ? hash : undefined);
  if (!kt || sigHash === undefined) throw fail('EKEYREJECTED', `the signature algorithm ${sigOid} does not fit the key of ${who}`);
  if (kt.type === 'rsa' ? !nullOrAbsentParams(signer.signatureAlgorithm) : signer.signatureAlgorithm.algorithmParams !== undefined) {
    malformed(`its signature algorithm ${sigOid} has parameters it does not define`);
  }
  if (sigHash !== hash) malformed(`its signature algorithm's hash (${sigHash}) differs from its digest algorithm (${hash})`);

  let signedBytes = content;
  if (signer.signedAttrs) {
    // With signed attributes the signature covers them (re-tagged as a SET),
    // and they carry the content's hash: the kernel checks it too.
    const attrs = signer.signedAttrs.attributes;
    const md = attrs.find((a) => a.type === OID.messageDigestAttr);
    const ct = attrs.find((a) => a.type === OID.contentTypeAttr);
    const mdValue = md?.values[0];
    if (!(mdValue instanceof asn1js.OctetString)) malformed('it has signed attributes but no messageDigest');
    if (!(ct?.values[0] instanceof asn1js.ObjectIdentifier) || ct.values[0].valueBlock.toString() !== OID.data) malformed('its signed contentType attribute is missing or not data');
    const h = new Uint8Array(await subtle().digest(WEBCRYPTO_HASH[hash], ab(content)));
    if (!bytesEqual(h, mdValue.valueBlock.valueHexView)) {
      throw fail('EKEYREJECTED', 'the signature is for another file digest: its signed message digest does not match this digest');
    }
    signedBytes = new Uint8Array(signer.signedAttrs.encodedValue);
  }
  const pub = await importPublic(t.cert, hash);
  let sig: ArrayBuffer = ab(signer.signature.valueBlock.valueHexView);
  let alg: AlgorithmIdentifier | RsaPssParams | EcdsaParams | { name: string } = { name: 'RSASSA-PKCS1-v1_5' };
  if (kt.type === 'ec') {
    const asn = asn1js.fromBER(sig);
    if (asn.offset !== sig.byteLength) malformed('its ECDSA signature is not a DER SEQUENCE of two INTEGERs');
    try {
      // r and s longer than the curve's order are refused here (a RangeError).
      sig = createECDSASignatureFromCMS(asn.result, kt.curve!.size);
    } catch (e) {
      malformed('its ECDSA signature has an integer larger than the curve allows', e);
    }
    if (sig.byteLength === 0) malformed('its ECDSA signature is not a DER SEQUENCE of two INTEGERs');
    alg = { name: 'ECDSA', hash: WEBCRYPTO_HASH[hash] };
  }
  const ok = await subtle().verify(alg, pub, sig, ab(signedBytes));
  if (!ok) {
    throw fail(
      'EKEYREJECTED',
      `the signature does not verify with the key of ${who}: it was made for another file digest (the file changed, or it signs another file) or by another key`,
    );
  }
  return hash;
}

/**
 * Check an fs-verity built-in signature (DER PKCS#7, as `fsverity sign`
 * writes it) over a file digest against trusted certificates, as the
 * kernel does with the `.fs-verity` keyring: the message must be SignedData
 * over detached `data`; every signer found among `trusted` must verify
 * over the formatted digest (directly, or through signed attributes whose
 * messageDigest is the formatted digest's hash), and at least one signer
 * must be trusted. Certificates carried in the message are not trusted for
 * that. The signing certificate must be valid at `time` (now by default).
 *
 * Resolves to the trusted certificate that signed. Rejects with EBADMSG
 * when the signature (or a trusted certificate) is malformed, EKEYREJECTED
 * when it is signed by no trusted certificate, does not verify (wrong key,
 * or a signature of another digest), or its certificate is expired or not
 * yet valid; EINVAL for bad arguments.
 */
export async function verifyFsveritySignature(
  signature: Uint8Array,
  digest: FsverityDigestInput,
  opts: VerifyFsveritySignatureOptions,
): Promise<FsveritySignatureSigner> {
  try {
    return await verifySignature(signature, digest, opts);
  } catch (e) {
    // What PKI.js or WebCrypto throw on input they cannot take is a
    // malformed message too; ours already say which check failed.
    if (isErrno(e)) throw e;
    malformed((e as Error)?.message ?? String(e), e);
  }
}

async function verifySignature(
  signature: Uint8Array,
  digest: FsverityDigestInput,
  opts: VerifyFsveritySignatureOptions,
): Promise<FsveritySignatureSigner> {
  const content = formatSignedDigest(digest);
  if (!opts || !Array.isArray(opts.trusted)) throw fail('EINVAL', 'verifyFsveritySignature needs { trusted: [PEM certificates] }');
  const trusted: Trusted[] = [];
  for (const pem of opts.trusted) {
    for (const c of certificatesOf(pem, 'trusted certificate')) trusted.push({ index: trusted.length, ...c });
  }
  if (trusted.length === 0) throw fail('EKEYREJECTED', 'no trusted certificate was given: the signature cannot be checked against anything');
  const sd = parseSignedData(signature);
  let first: { t: Trusted; hash: 'sha256' | 'sha384' | 'sha512' } | undefined;
  for (const signer of sd.signerInfos) {
    const t = findTrusted(signer, trusted);
    if (!t) continue;
    const hash = await verifyOne(signer, t, content, opts);
    first ??= { t, hash };
  }
  if (!first) {
    throw fail(
      'EKEYREJECTED',
      `the file is signed by a certificate that is not trusted (${sd.signerInfos.map(describeSid).join('; ')}): add its certificate to the trusted ones`,
    );
  }
  return {
    index: first.t.index,
    certificate: toPem('CERTIFICATE', first.t.der),
    subject: subjectOf(first.t.cert),
    serialNumber: hex(first.t.cert.serialNumber.valueBlock.valueHexView),
    hashAlgorithm: first.hash,
  };
}
