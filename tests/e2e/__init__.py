"""End-to-end: the real Next.js app with Better Auth, the real backend, a real Chromium."""
