"use client";

export default function ErrorPage({ reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <main className="page page--narrow">
      <div className="card stack">
        <h1>Something went wrong</h1>
        <p role="alert" className="alert">
          The page could not be loaded. The service may be unavailable; please try again in a moment.
        </p>
        <div>
          <button type="button" className="button--primary" onClick={reset}>
            Try again
          </button>
        </div>
      </div>
    </main>
  );
}
