// The records half's connection to one host (issue 13): the SSH session the event stream, the
// looks and the writes share. DnsController talks to hosts only through HostLink, so its timing
// logic is tested with a fake (test/unit/dns-controller.test.ts).
import type { Machine } from "../api/types.generated.js";
import { SessionPool } from "../hosts/ssh-pool.js";
import { EVENTS_SCRIPT, parseEventLine, type DockerEvent } from "../hosts/docker-events.js";
import { inspectContainers, type InspectResult } from "../hosts/dns-inspect.js";
import { writeRecords, type RecordsFile, type WriteOutcome } from "../hosts/dns-write.js";
import { isProblem, sshTargetFor, type SecretReader } from "./ssh-target.js";
import type { HostKeyRecords } from "./host-keys.js";

export interface EventStream {
  /** Settles when the stream ends: resolves on a normal end, rejects with a HostError on a failure. */
  done: Promise<unknown>;
  close(): void;
}

export interface HostLink {
  /** Starts the host's event stream; onEvent gets the ready marker first, then changes. */
  events(onEvent: (e: DockerEvent) => void): EventStream;
  /** The containers on these networks, and the digests of these interfaces' records files. */
  inspect(networks: readonly string[], interfaces: readonly string[]): Promise<InspectResult>;
  write(files: readonly RecordsFile[]): Promise<WriteOutcome>;
  close(): void;
}

/** A link, or why the host is not contacted yet (retried later). */
export type LinkResult = HostLink | { wait: string };

export type HostConnector = (m: Machine) => Promise<LinkResult>;

/** Longest event line accepted: real ones are ~20 bytes. */
const MAX_EVENT_LINE = 1024;

/**
 * Connects with the Machine's SSH target, as the Machine controller would, with the host key it
 * recorded. Never records a host key itself: with none recorded (and none pinned) it waits for
 * the Machine controller's first contact. The connection comes from `sessions`: the Machine
 * controller's looks share it when they use the same pool.
 */
export function sshConnector(readSecret: SecretReader, hostKeys: HostKeyRecords, sessions = new SessionPool()): HostConnector {
  return async (m) => {
    const resolved = await sshTargetFor(m, readSecret, hostKeys);
    if (isProblem(resolved)) return { wait: resolved.message };
    const unrecorded = resolved.hostKeys.find((p) => !p.pinned && !p.recorded);
    if (unrecorded) return { wait: `no host key recorded yet for ssh ${unrecorded.id}; waiting for the Machine controller's first contact` };
    const session = await sessions.lease(resolved.target);
    return {
      events(onEvent) {
        const h = session.stream(EVENTS_SCRIPT, { maxLineBytes: MAX_EVENT_LINE }, (line) => {
          const e = parseEventLine(line);
          if (e) onEvent(e);
        });
        return { done: h.done, close: () => h.close() };
      },
      inspect: (networks, interfaces) => inspectContainers(session, networks, interfaces),
      write: (files) => writeRecords(session, files),
      close: () => session.close(),
    };
  };
}
