// Better Auth in the browser. The auth endpoints live on this app's own origin (/api/auth), so the
// client talks to whichever origin the page was served from and the session cookie stays first-party.
import { jwtClient } from "better-auth/client/plugins";
import { createAuthClient } from "better-auth/react";

export const authClient = createAuthClient({
  baseURL: typeof window === "undefined" ? undefined : window.location.origin,
  plugins: [jwtClient()],
});
