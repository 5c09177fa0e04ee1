// Settings read from the environment at run time, on the server only.
//
// Values are looked up through `readEnv(name)` rather than `process.env.NAME`: Next.js inlines
// `process.env.NEXT_PUBLIC_*` member expressions into every bundle at build time, and this app
// is built once and then run with whatever values its environment gives it.

export function readEnv(name: string): string | undefined {
  const value = process.env[name]?.trim();
  return value ? value : undefined;
}

function splitList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

function originOf(url: string, name: string): string {
  try {
    return new URL(url).origin;
  } catch {
    throw new Error(`${name} must be an absolute URL such as http://localhost:3000; got ${JSON.stringify(url)}`);
  }
}

/**
 * PostgreSQL for node-postgres. The backend's spelling `postgresql+psycopg://` is accepted too
 * (the driver suffix is dropped), so both sides can share one DATABASE_URL.
 */
export function databaseUrl(): string | undefined {
  return readEnv("DATABASE_URL")?.replace(/^postgres(ql)?\+[a-z0-9_]+:\/\//i, "postgresql://");
}

/** The app's public URL: Better Auth's base URL, and the default JWT issuer and audience. */
export function betterAuthUrl(): string {
  return readEnv("BETTER_AUTH_URL") ?? "http://localhost:3000";
}

export function betterAuthOrigin(): string {
  return originOf(betterAuthUrl(), "BETTER_AUTH_URL");
}

/** Origins allowed to make cookie-bearing POSTs to /api/auth: BETTER_AUTH_URL's plus TRUSTED_ORIGINS. */
export function trustedOrigins(): string[] {
  const extra = splitList(readEnv("TRUSTED_ORIGINS")).map((url) => originOf(url, "TRUSTED_ORIGINS"));
  return [...new Set([betterAuthOrigin(), ...extra])];
}

/** The `iss` of the JWTs Better Auth issues (the backend's BETTER_AUTH_ISSUER must match). */
export function jwtIssuer(): string {
  return readEnv("BETTER_AUTH_ISSUER") ?? betterAuthOrigin();
}

/** The `aud` of the JWTs: one string, or a list when BETTER_AUTH_AUDIENCE names several. */
export function jwtAudience(): string | string[] {
  const list = splitList(readEnv("BETTER_AUTH_AUDIENCE"));
  if (list.length === 0) return betterAuthOrigin();
  return list.length === 1 ? (list[0] as string) : list;
}

/** The JWT lifetime, in the jwt plugin's format ("15m", "30s", "1h"...). */
export function jwtExpiration(): string {
  return readEnv("JWT_EXPIRATION") ?? "15m";
}

/**
 * Better Auth's rate limiter: on in production, off in development (its own default). AUTH_RATE_LIMIT
 * set to "on" or "off" overrides that (test suites that sign many people up from one address
 * turn it off).
 */
export function rateLimitEnabled(): boolean | undefined {
  const value = readEnv("AUTH_RATE_LIMIT")?.toLowerCase();
  if (value === undefined) return undefined;
  if (["on", "true", "1", "yes"].includes(value)) return true;
  if (["off", "false", "0", "no"].includes(value)) return false;
  throw new Error(`AUTH_RATE_LIMIT must be "on" or "off"; got ${JSON.stringify(value)}`);
}

/** The backend's public URL, as the browser reaches it (no trailing slash). */
export function publicApiUrl(): string {
  return (readEnv("NEXT_PUBLIC_API_URL") ?? "http://localhost:8000").replace(/\/+$/, "");
}
