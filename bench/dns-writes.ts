// What the records half writes on each host, seen from outside the controller through inotify
// (fs.watch) on the host's /etc/dockmesh/dns/IF (a lab host's /etc/dockmesh is a bind mount of a
// directory of the lab's state, so the bench watches the same inodes from the root namespace).
// The writer (hosts/dns-write.ts) always creates IF/.mesh.tmp, then either renames it into
// records/ (content changed: dnsmasq re-reads the file) or removes it (unchanged). So:
//   replacements   renames onto records/mesh: the writes dnsmasq sees (IN_MOVED_TO "mesh")
//   commands       write commands that reached the host: .mesh.tmp events / 2 (its creation and
//                  its rename or removal; fs.watch reports each as "rename")
import { watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import type { Lab } from "../lab/lab.js";

export interface WriteCounts {
  replacements: number;
  commands: number;
}

export class RecordsWatch {
  private readonly watchers: FSWatcher[] = [];
  private readonly renames = new Map<string, number>();
  private readonly tmpEvents = new Map<string, number>();

  constructor(
    lab: Lab,
    readonly hosts: readonly string[],
    iface: string,
  ) {
    for (const h of hosts) {
      const dir = join(lab.stateDir, "hosts", h, "etc", "dockmesh", "dns", iface);
      this.renames.set(h, 0);
      this.tmpEvents.set(h, 0);
      this.watchers.push(
        watch(join(dir, "records"), (type, file) => {
          if (type === "rename" && file === "mesh") this.renames.set(h, this.renames.get(h)! + 1);
        }),
        watch(dir, (type, file) => {
          if (type === "rename" && file === ".mesh.tmp") this.tmpEvents.set(h, this.tmpEvents.get(h)! + 1);
        }),
      );
    }
  }

  counts(): Map<string, WriteCounts> {
    return new Map(this.hosts.map((h) => [h, { replacements: this.renames.get(h)!, commands: this.tmpEvents.get(h)! / 2 }]));
  }

  /** Per host, what happened since `before` (an earlier counts()). */
  since(before: Map<string, WriteCounts>): Map<string, WriteCounts> {
    const now = this.counts();
    return new Map(this.hosts.map((h) => [h, { replacements: now.get(h)!.replacements - before.get(h)!.replacements, commands: now.get(h)!.commands - before.get(h)!.commands }]));
  }

  close(): void {
    for (const w of this.watchers) w.close();
  }
}
