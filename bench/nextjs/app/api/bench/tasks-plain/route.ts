// Benchmark only: Better Auth as a Next.js app without the jwt plugin would have it (same
// database, secret and base URL as lib/auth.ts): getSession reads the session and its user.
import { betterAuth } from "better-auth";
import { Pool } from "pg";

import { listMyTasks } from "@/lib/bench-tasks";
import { betterAuthUrl, databaseUrl, readEnv } from "@/lib/env";

const building = process.env.NEXT_PHASE === "phase-production-build";

const plainAuth = betterAuth({
  database: new Pool({ connectionString: databaseUrl(), max: 10, idleTimeoutMillis: 30_000 }),
  secret: readEnv("BETTER_AUTH_SECRET") ?? (building ? "unused-at-build-time-0123456789abcdefghijklmnopqrstuvwxyz" : undefined),
  baseURL: betterAuthUrl(),
  basePath: "/api/auth",
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
});

export const GET = listMyTasks((options) => plainAuth.api.getSession(options));
