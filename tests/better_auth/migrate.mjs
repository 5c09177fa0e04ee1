// Runs Better Auth's own migrations on DATABASE_URL (idempotent: a second run is a no-op).
//   node migrate.mjs         apply them
//   node migrate.mjs --sql   print the SQL still to apply, apply nothing
import { getMigrations } from "better-auth/db/migration";
import { createAuthOptions } from "./auth.mjs";

const options = createAuthOptions();
const pool = options.database;
let code = 0;
try {
  const { toBeCreated, toBeAdded, toBeAddedIndexes, runMigrations, compileMigrations } =
    await getMigrations(options);
  if (process.argv.includes("--sql")) {
    const sql = await compileMigrations();
    if (sql !== ";") process.stdout.write(`${sql}\n`);
  } else {
    await runMigrations();
    const changes = [
      ...toBeCreated.map((t) => `create ${t.table}`),
      ...toBeAdded.map((t) => `alter ${t.table}`),
      ...toBeAddedIndexes.map((i) => `index ${i.name}`),
    ];
    process.stderr.write(`migrated: ${changes.join(", ") || "nothing to do"}\n`);
  }
} catch (error) {
  process.stderr.write(`migration failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  code = 1;
} finally {
  await pool.end();
}
process.exit(code);
