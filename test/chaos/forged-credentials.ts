import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from "jose";

/** The key id the issuer publishes its signing key under. */
const KEY_ID = "chaos-k1";

export interface TokenOptions {
  issuer?: string;
  audience?: string;
  /** `exp` as jose reads it ("5m", "-1m") */
  expiresIn?: string;
  /** `nbf` as jose reads it; omitted: no nbf */
  notBefore?: string;
  /** Sign with a key nobody published (under `keyId`, the published id by default). */
  strangerKey?: boolean;
  keyId?: string;
  /** Leave out the subject. */
  noSubject?: boolean;
}

/**
 * An identity provider on 127.0.0.1: publishes one RS256 key as a JWKS and signs tokens
 * with it, as Steward's STEWARD_JWT_JWKS_URL expects; and forges what an attacker could.
 */
export interface TokenIssuer {
  jwksUrl: string;
  issuer: string;
  audience: string;
  sign(claims: JWTPayload, options?: TokenOptions): Promise<string>;
  /** HS256 signed with the published public key's PEM as the shared secret: algorithm confusion. */
  signWithPublicKeyAsSecret(claims: JWTPayload): Promise<string>;
  close(): Promise<void>;
}

export async function startTokenIssuer(issuer: string, audience: string): Promise<TokenIssuer> {
  const published = await generateKeyPair("RS256");
  const stranger = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(published.publicKey)), kid: KEY_ID, alg: "RS256", use: "sig" };
  const publicKeyPem = await exportSPKI(published.publicKey);
  const server = createServer((_request, response) => {
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  const claimsOf = (claims: JWTPayload, options: TokenOptions) => {
    const token = new SignJWT(claims)
      .setIssuer(options.issuer ?? issuer)
      .setAudience(options.audience ?? audience)
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? "5m");
    if (!options.noSubject) token.setSubject(`chaos-user-${randomBytes(3).toString("hex")}`);
    if (options.notBefore) token.setNotBefore(options.notBefore);
    return token;
  };

  return {
    jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    issuer,
    audience,
    sign: (claims, options = {}) =>
      claimsOf(claims, options)
        .setProtectedHeader({ alg: "RS256", kid: options.keyId ?? KEY_ID })
        .sign(options.strangerKey ? stranger.privateKey : published.privateKey),
    signWithPublicKeyAsSecret: (claims) =>
      claimsOf(claims, {})
        .setProtectedHeader({ alg: "HS256", kid: KEY_ID })
        .sign(new TextEncoder().encode(publicKeyPem)),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A JWT's three parts, the first two decoded. */
function partsOf(token: string): { header: object; payload: Record<string, unknown>; signature: string } {
  const [header = "", payload = "", signature = ""] = token.split(".");
  return {
    header: JSON.parse(Buffer.from(header, "base64url").toString()),
    payload: JSON.parse(Buffer.from(payload, "base64url").toString()),
    signature,
  };
}

const segment = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** The token with `alg: none` and no signature, claims kept (plus `extra`). */
export function unsigned(token: string, extra: Record<string, unknown> = {}): string {
  const { header, payload } = partsOf(token);
  return `${segment({ ...header, alg: "none" })}.${segment({ ...payload, ...extra })}.`;
}

/** The token with its claims changed (plus `extra`) and the original signature kept. */
export function tampered(token: string, extra: Record<string, unknown>): string {
  const { header, payload, signature } = partsOf(token);
  return `${segment(header)}.${segment({ ...payload, ...extra })}.${signature}`;
}

/** The token signed again, HS256 under its own key id, with a secret Steward never had. */
export async function resignedWithGuessedSecret(token: string): Promise<string> {
  const { header, payload } = partsOf(token);
  return new SignJWT(payload).setProtectedHeader({ ...header, alg: "HS256" }).sign(randomBytes(32));
}
