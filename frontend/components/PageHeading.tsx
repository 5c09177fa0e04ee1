"use client";

import { type ReactNode, useEffect, useRef } from "react";

/**
 * The page's <h1>. When a page appears and nothing has focus yet (a client-side navigation such
 * as sign-in → /tasks leaves focus on <body>), focus moves to it, so screen readers announce the
 * new page. This stands in for Next.js's route announcer, which globals.css hides: it is a
 * permanent, empty role="alert" element, and this app promises that role="alert" means an error.
 */
export function PageHeading({ children }: { children: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    const active = document.activeElement;
    if (!active || active === document.body) heading.current?.focus({ preventScroll: true });
  }, []);
  return (
    <h1 ref={heading} tabIndex={-1} className="page-heading">
      {children}
    </h1>
  );
}
