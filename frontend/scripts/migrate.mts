// Runs Better Auth's own migrations (user, session, account, verification, jwks) on DATABASE_URL.
// Idempotent: a second run does nothing. Run it before the backend's (`alembic upgrade head`),
// whose task table references "user".
//
//   npm run migrate            apply what is missing
//   npm run migrate -- --sql   print the SQL still to apply, apply nothing
import { getMigrations } from "better-auth/db/migration";
import type { Pool } from "pg";

import { auth } from "../lib/auth";

if (!process.env.DATABASE_URL) {
  process.stderr.write("DATABASE_URL is required (postgresql://user:password@host:5432/db)\n");
  process.exit(2);
}

const pool = auth.options.database as Pool;
let code = 0;
try {
  const { toBeCreated, toBeAdded, runMigrations, compileMigrations } = await getMigrations(auth.options);
  if (process.argv.includes("--sql")) {
    const sql = await compileMigrations();
    if (sql.trim() !== ";") process.stdout.write(`${sql}\n`);
  } else {
    await runMigrations();
    const changes = [
      ...toBeCreated.map((table) => `created ${table.table}`),
      ...toBeAdded.map((table) => `altered ${table.table}`),
    ];
    process.stdout.write(`Better Auth migration: ${changes.join(", ") || "nothing to do"}\n`);
  }
} catch (error) {
  process.stderr.write(`Better Auth migration failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  code = 1;
} finally {
  await pool.end();
}
process.exit(code);
