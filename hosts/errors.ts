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
  | "ObserveFailed"
  /** A command's output passed its bound (see ExecOptions.maxStdoutBytes); observe and apply report it as theirs. */
  | "OutputTooLarge";

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
