// Serves Better Auth's routes at /api/auth/* on 127.0.0.1:$PORT.
// Prints exactly one line, `ready http://127.0.0.1:PORT`, to stdout once listening.
import http from "node:http";
import { toNodeHandler } from "better-auth/node";
import { createAuth } from "./auth.mjs";

const port = Number.parseInt(process.env.PORT ?? "", 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write(`PORT must be a TCP port number; got ${JSON.stringify(process.env.PORT)}\n`);
  process.exit(2);
}

const auth = createAuth();
const pool = auth.options.database;
const handle = toNodeHandler(auth);

const server = http.createServer((req, res) => {
  if (req.url === "/api/auth" || req.url?.startsWith("/api/auth/")) {
    handle(req, res).catch((error) => {
      process.stderr.write(`handler error: ${error instanceof Error ? error.stack : String(error)}\n`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
    return;
  }
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("not found\n");
});

let closing = false;
async function shutdown(signal) {
  if (closing) return;
  closing = true;
  process.stderr.write(`${signal}: shutting down\n`);
  const closed = new Promise((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
  await pool.end();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));

server.on("error", (error) => {
  process.stderr.write(`server error: ${error.stack ?? String(error)}\n`);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`ready http://127.0.0.1:${port}\n`);
});
