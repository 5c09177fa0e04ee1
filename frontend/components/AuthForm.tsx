"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { type FormEvent, useId, useRef, useState } from "react";

import { PageHeading } from "@/components/PageHeading";
import { authClient } from "@/lib/auth-client";

// Kept in step with lib/auth.ts (a client component cannot import the server config).
const MIN_PASSWORD_LENGTH = 8;
const MAX_PASSWORD_LENGTH = 128;

type Mode = "sign-in" | "sign-up";
type Field = "name" | "email" | "password";

interface Problem {
  message: string;
  field?: Field;
}

interface AuthError {
  code?: string | undefined;
  message?: string | undefined;
  status: number;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function validate(mode: Mode, name: string, email: string, password: string): Problem | null {
  if (mode === "sign-up" && !name.trim()) return { field: "name", message: "Enter your name." };
  if (!email.trim()) return { field: "email", message: "Enter your email address." };
  if (!EMAIL.test(email.trim())) return { field: "email", message: "Enter a valid email address, like ada@example.com." };
  if (!password) return { field: "password", message: "Enter your password." };
  if (mode === "sign-up" && password.length < MIN_PASSWORD_LENGTH)
    return { field: "password", message: `Password is too weak: use at least ${MIN_PASSWORD_LENGTH} characters.` };
  if (mode === "sign-up" && password.length > MAX_PASSWORD_LENGTH)
    return { field: "password", message: `Password is too long: use at most ${MAX_PASSWORD_LENGTH} characters.` };
  return null;
}

/** Better Auth's answer, in words for the person at the keyboard. */
function describe(mode: Mode, error: AuthError): Problem {
  switch (error.code) {
    case "INVALID_EMAIL_OR_PASSWORD":
      return { field: "password", message: "Wrong email or password. Check both and try again." };
    case "USER_ALREADY_EXISTS":
    case "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL":
      return { field: "email", message: "An account with this email already exists. Sign in instead, or use another email." };
    case "PASSWORD_TOO_SHORT":
      return { field: "password", message: `Password is too weak: use at least ${MIN_PASSWORD_LENGTH} characters.` };
    case "PASSWORD_TOO_LONG":
      return { field: "password", message: `Password is too long: use at most ${MAX_PASSWORD_LENGTH} characters.` };
    case "INVALID_EMAIL":
      return { field: "email", message: "Enter a valid email address, like ada@example.com." };
  }
  if (error.status === 429) return { message: "Too many attempts. Wait a few seconds, then try again." };
  if (error.status === 403)
    return { message: "This address is not allowed to sign in here (untrusted origin). Open the app from its usual address." };
  if (error.status >= 500 || error.status === 0)
    return { message: "The sign-in service is unavailable right now. Please try again in a moment." };
  if (mode === "sign-in" && error.status === 401)
    return { field: "password", message: "Wrong email or password. Check both and try again." };
  return { message: error.message || "Something went wrong. Please try again." };
}

export function AuthForm({ mode, notice }: { mode: Mode; notice?: string | undefined }) {
  const router = useRouter();
  const id = useId();
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const nameInput = useRef<HTMLInputElement>(null);
  const emailInput = useRef<HTMLInputElement>(null);
  const passwordInput = useRef<HTMLInputElement>(null);

  const signUp = mode === "sign-up";
  const title = signUp ? "Create your account" : "Sign in to your tasks";
  const action = signUp ? "Sign up" : "Sign in";

  function fail(next: Problem) {
    setProblem(next);
    setBusy(null);
    const input = { name: nameInput, email: emailInput, password: passwordInput }[next.field ?? "name"];
    if (next.field) input.current?.focus();
  }

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (busy) return;
    const invalid = validate(mode, name, email, password);
    if (invalid) return fail(invalid);
    setProblem(null);
    setBusy(signUp ? "Creating your account…" : "Signing in…");
    try {
      const { error } = signUp
        ? await authClient.signUp.email({ name: name.trim(), email: email.trim(), password })
        : await authClient.signIn.email({ email: email.trim(), password });
      if (error) return fail(describe(mode, error));
    } catch {
      return fail({ message: "Cannot reach the server. Check your connection, then try again." });
    }
    setBusy(signUp ? "Account created. Opening your tasks…" : "Signed in. Opening your tasks…");
    router.replace("/tasks");
    router.refresh();
  }

  const invalid = (field: Field) => (problem?.field === field ? true : undefined);
  const errorId = `${id}-error`;
  const describedBy = (field: Field, hint?: string) =>
    [hint, problem?.field === field ? errorId : undefined].filter(Boolean).join(" ") || undefined;

  return (
    <div className="card stack">
      <div>
        <p className="brand">Tasks</p>
        <PageHeading>{title}</PageHeading>
      </div>
      {notice && !problem ? <p className="muted">{notice}</p> : null}
      <form className="stack" method="post" onSubmit={onSubmit} noValidate aria-busy={busy ? true : undefined}>
        {signUp ? (
          <div className="field">
            <label htmlFor={`${id}-name`}>Name</label>
            <input
              ref={nameInput}
              id={`${id}-name`}
              name="name"
              type="text"
              autoComplete="name"
              required
              value={name}
              onChange={(e) => setName(e.target.value)}
              aria-invalid={invalid("name")}
              aria-describedby={describedBy("name")}
            />
          </div>
        ) : null}
        <div className="field">
          <label htmlFor={`${id}-email`}>Email</label>
          <input
            ref={emailInput}
            id={`${id}-email`}
            name="email"
            type="email"
            autoComplete="email"
            inputMode="email"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            aria-invalid={invalid("email")}
            aria-describedby={describedBy("email")}
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-password`}>Password</label>
          <input
            ref={passwordInput}
            id={`${id}-password`}
            name="password"
            type="password"
            autoComplete={signUp ? "new-password" : "current-password"}
            required
            minLength={signUp ? MIN_PASSWORD_LENGTH : undefined}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-invalid={invalid("password")}
            aria-describedby={describedBy("password", signUp ? `${id}-password-hint` : undefined)}
          />
          {signUp ? (
            <p id={`${id}-password-hint`} className="hint">
              At least {MIN_PASSWORD_LENGTH} characters.
            </p>
          ) : null}
        </div>
        {problem ? (
          <p id={errorId} role="alert" className="alert">
            {problem.message}
          </p>
        ) : null}
        {busy ? (
          <p role="status" className="status">
            {busy}
          </p>
        ) : null}
        <button type="submit" className="button--primary" disabled={busy !== null}>
          {action}
        </button>
      </form>
      <p className="small muted">
        {signUp ? (
          <>
            Already have an account? <Link href="/sign-in">Sign in</Link>
          </>
        ) : (
          <>
            No account yet? <Link href="/sign-up">Sign up</Link>
          </>
        )}
      </p>
    </div>
  );
}
