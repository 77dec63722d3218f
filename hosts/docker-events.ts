// The one long-lived command per host of mesh DNS (issue 13, hosts/scripts/docker-events.sh):
// Docker's event stream, filtered to what changes a container's presence, name or addresses on a
// network. Each line only says that something changed; the controller then looks
// (hosts/dns-inspect.ts). Nothing polls on the host.
//
// Seen on Docker 20.10 (lab): `docker run -d --network X` gives network connect, then container
// start; `docker rm -f` gives kill, die, network disconnect, destroy; `docker network connect
// --alias` gives network connect; `docker rename` gives container rename; stop/start give
// die/disconnect and connect/start. Filter keys are ANDed, values of one key ORed.
import { DOCKER_EVENTS_SH } from "./scripts.generated.js";

/** The events a line may name; anything else is ignored. docker-events.sh asks for these (test/unit/host-scripts checks). */
export const EVENT_FILTERS = {
  container: ["start", "die", "rename", "destroy"],
  network: ["connect", "disconnect"],
} as const;

/** First line the script prints, with the host's clock (seconds) since when events are replayed (docker-events.sh spells it). */
export const READY_MARKER = "dockmesh-events-ready";

/**
 * The script (hosts/scripts/docker-events.sh as sent): no arguments. It prints READY_MARKER, then
 * one line per event of EVENT_FILTERS. `--since` replays what happened between that line and
 * `docker events` subscribing, so nothing falls in between (the controller's full look follows
 * the marker). It ends `docker events` when its standard input closes (the controller went or
 * closed the channel), so nothing is left running on the host, and exits with docker's status
 * when the event stream ends by itself (Docker restarted).
 */
export const EVENTS_SCRIPT = DOCKER_EVENTS_SH;

export type DockerEvent = { kind: "ready" } | { kind: "change"; type: "container" | "network"; action: string };

const LINE = /^(container|network) ([a-z_-]{1,32})$/;
const READY = new RegExp(`^${READY_MARKER} [0-9]{1,12}$`);

/** One line of the stream, or undefined for a line that does not look right (ignored). */
export function parseEventLine(line: string): DockerEvent | undefined {
  if (line.length > 128) return undefined;
  if (READY.test(line)) return { kind: "ready" };
  const m = LINE.exec(line);
  if (!m) return undefined;
  const type = m[1] as "container" | "network";
  const action = m[2]!;
  if (!(EVENT_FILTERS[type] as readonly string[]).includes(action)) return undefined;
  return { kind: "change", type, action };
}
