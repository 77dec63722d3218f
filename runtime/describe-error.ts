// An error as one line for a person: its message and its causes' messages. Apart from runtime/log.ts
// (which re-exports it) so that the CLI can print a failure without loading winston.

/**
 * "outer: inner: innermost" — an error's message followed by those of its causes.
 * client-node's ApiException (message "HTTP-Code: …\nBody: …\nHeaders: …") is shortened
 * to the server's Status message and the HTTP code.
 */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
    const msg = apiErrorSummary(cur) ?? (cur instanceof Error ? cur.message : typeof cur === "string" ? cur : JSON.stringify(cur));
    // Wrappers often repeat their cause's text; do not print it twice.
    if (msg && !parts.some((p) => p.includes(msg))) parts.push(msg);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(": ") || String(err);
}

/** "machines.dockmesh.io \"x\" not found (HTTP 404)" for a client-node ApiException; undefined for other values. */
export function apiErrorSummary(err: unknown): string | undefined {
  if (!(err instanceof Error) || !err.message.startsWith("HTTP-Code:")) return undefined;
  const e = err as Error & { code?: unknown; body?: unknown };
  if (typeof e.code !== "number") return undefined;
  let body = e.body;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body) as unknown;
    } catch {
      // plain text body
    }
  }
  const status = typeof body === "object" && body !== null ? (body as { message?: unknown }).message : body;
  const text = typeof status === "string" ? status.trim() : "";
  return text ? `${text} (HTTP ${e.code})` : `HTTP ${e.code}`;
}
