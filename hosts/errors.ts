// Errors from a host, each with the condition reason it maps to and a message a user can act on.

export type HostErrorReason =
  | "Unreachable"
  | "AuthFailed"
  | "HostKeyMismatch"
  | "KeyInvalid"
  | "SudoFailed"
  | "Timeout"
  | "MissingTools"
  | "DockerNotRunning"
  | "ApplyFailed"
  | "ObserveFailed";

export class HostError extends Error {
  constructor(
    readonly reason: HostErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "HostError";
  }
}
