import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import { NAME_PATTERN, NAME_RULE } from "../api/schemas.ts";
import type { BearerAuthSetting, Config } from "./config.ts";
import { type Authenticate, HttpError } from "./http.ts";

/**
 * Verifies bearer JWTs the way API Gateway's JWT authorizer does (signature against the issuer's
 * keys, issuer, audience, expiry) but in the function, so a refused token gets the API's problem
 * body: an HTTP API's JWT authorizer answers 401 with a fixed `{"message":"Unauthorized"}` that
 * cannot be shaped (HTTP APIs have no gateway responses).
 *
 * Keys: the issuer's JWKS, found through its OpenID discovery document as API Gateway finds it,
 * fetched once per execution environment and refreshed by jose when a token names an unknown key;
 * or an inline JWKS (`JWT_JWKS`), which the local platform uses for its stand-in issuer.
 */
export interface BearerAuthSettings {
  issuer: string;
  audience: string[];
  tenantClaim: string;
  /** A JWK set as JSON; without it the issuer's keys are discovered. */
  jwks?: string | undefined;
}

const REALM = 'Bearer realm="datadistiller"';

const refuse = (detail: string, tokenSent: boolean) =>
  new HttpError("UNAUTHORIZED", detail, {
    headers: {
      "www-authenticate": tokenSent
        ? `${REALM}, error="invalid_token", error_description="${detail.replaceAll('"', "'")}"`
        : REALM,
    },
  });

/** Why jose refused a token, in words a client can act on; undefined for errors that are not the token's fault. */
function reason(error: unknown): string | undefined {
  if (error instanceof errors.JWTExpired) return "the token has expired";
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "iss") return "the token is not from this API's issuer";
    if (error.claim === "aud") return "the token is not for this API's audience";
    if (error.claim === "nbf") return "the token is not valid yet";
    return `the token's "${error.claim}" claim is not accepted: ${error.reason}`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  if (error instanceof errors.JWKSNoMatchingKey) return "the token is not signed with a key of the issuer";
  if (error instanceof errors.JWKSMultipleMatchingKeys)
    return "the token names no key (kid) and the issuer has several";
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return "the token's algorithm is not supported";
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid)
    return "the token is not a well-formed JWT";
  return undefined;
}

/** The issuer's keys through its discovery document; a failed discovery is tried again on the next request. */
function discoveredKeys(issuer: string): JWTVerifyGetKey {
  let keys: Promise<JWTVerifyGetKey> | undefined;
  const discover = async () => {
    const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) throw new Error(`OpenID discovery at ${url} answered ${response.status}`);
    const { jwks_uri: jwksUri } = (await response.json()) as { jwks_uri?: string };
    if (!jwksUri) throw new Error(`OpenID discovery at ${url} names no jwks_uri`);
    return createRemoteJWKSet(new URL(jwksUri));
  };
  return async (header, token) => {
    keys ??= discover().catch((error: unknown) => {
      keys = undefined;
      throw error;
    });
    return (await keys)(header, token);
  };
}

export function bearerAuthenticator(settings: BearerAuthSettings): Authenticate {
  const keys = settings.jwks
    ? createLocalJWKSet(JSON.parse(settings.jwks) as JSONWebKeySet)
    : discoveredKeys(settings.issuer);
  return async (authorization) => {
    const token = /^Bearer +([^ ]+) *$/i.exec(authorization ?? "")?.[1];
    if (!token) throw refuse("no bearer token: send Authorization: Bearer <JWT>", false);
    let claims: Record<string, unknown>;
    try {
      ({ payload: claims } = await jwtVerify(token, keys, {
        issuer: settings.issuer,
        audience: settings.audience,
        requiredClaims: ["exp"],
      }));
    } catch (error) {
      const why = reason(error);
      if (why === undefined) throw error;
      throw refuse(why, true);
    }
    const tenant = claims[settings.tenantClaim];
    if (typeof tenant !== "string" || !NAME_PATTERN.test(tenant)) {
      const shown = tenant === undefined ? "no" : `the ${JSON.stringify(tenant).slice(0, 80)}`;
      throw new HttpError(
        "INVALID_TENANT",
        `the token carries ${shown} "${settings.tenantClaim}" claim; a tenant id is ${NAME_RULE}`,
      );
    }
    return { tenant, ...(typeof claims.sub === "string" ? { subject: claims.sub } : {}) };
  };
}

/** The authenticator of a function whose environment has the bearer-auth settings (BEARER_AUTH_SETTINGS). */
export const authenticatorFor = (config: Config<BearerAuthSetting>): Authenticate =>
  bearerAuthenticator({
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    tenantClaim: config.TENANT_CLAIM,
    jwks: config.JWT_JWKS,
  });
