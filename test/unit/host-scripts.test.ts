// hosts/scripts/*.sh and what is sent to hosts: the generated constants are the files as sent
// (tools/gen-host-scripts.ts), and the values a script spells out are the ones the TypeScript side
// reads its output by.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constantName, generateHostScripts, scriptFiles, sentText } from "../../tools/gen-host-scripts.js";
import * as generated from "../../hosts/scripts.generated.js";
import { DEFAULT_UPLINK_MTU } from "../../mesh/defaults.js";
import { FRESH_PRELUDE, FRESH_SKIP } from "../../hosts/fresh-guard.js";
import { DOCKER_DOWN_EXIT, INSPECT_SCRIPT } from "../../hosts/dns-inspect.js";
import { DNS_DIR, NO_RESOLVER_EXIT, WRITE_RECORDS_SCRIPT } from "../../hosts/dns-write.js";
import { EVENT_FILTERS, EVENTS_SCRIPT, READY_MARKER } from "../../hosts/docker-events.js";
import { OBSERVE_SCRIPT } from "../../hosts/observe.js";
import { projectRoot } from "../support/golden.js";

test("host scripts: scripts.generated.ts is hosts/scripts/*.sh (run `npm run gen` after editing a script)", () => {
  assert.equal(readFileSync(`${projectRoot}hosts/scripts.generated.ts`, "utf8"), generateHostScripts(), "hosts/scripts.generated.ts is stale: run `npm run gen`");
  assert.deepEqual(Object.keys(generated).sort(), scriptFiles().map(constantName).sort());
});

test("host scripts: the #! line, ## notes and shellcheck directives are not sent; . ./NAME.sh is inlined", () => {
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-scripts-"));
  try {
    writeFileSync(join(dir, "main.sh"), "#!/bin/sh\n## a note\n\necho one\n  ## indented note\n. ./lib.sh\n# shellcheck disable=SC2086\necho $x\n# kept\n");
    writeFileSync(join(dir, "lib.sh"), "# shellcheck shell=sh\n## about lib\nlib() { :; }\n");
    assert.equal(sentText("main.sh", dir), "\necho one\nlib() { :; }\necho $x\n# kept\n");
    writeFileSync(join(dir, "lib.sh"), ". ./main.sh\n");
    assert.throws(() => sentText("main.sh", dir), /main\.sh includes lib\.sh includes main\.sh: an include loop/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("host scripts: what the scripts print and exit with is what the parsers read", () => {
  assert.ok(FRESH_PRELUDE.includes(`fresh_skip() { printf '${FRESH_SKIP} %s\\n' "$*"; exit 3; }`));
  assert.ok(FRESH_PRELUDE.includes(`mtu=\${best:-${DEFAULT_UPLINK_MTU}}`), "the guard's default uplink MTU is the planner's");
  assert.ok(INSPECT_SCRIPT.includes(`exit ${DOCKER_DOWN_EXIT}; }`));
  assert.ok(WRITE_RECORDS_SCRIPT.includes(`dir=${DNS_DIR}/$ifc\n`));
  assert.ok(WRITE_RECORDS_SCRIPT.includes(`|| exit ${NO_RESOLVER_EXIT}\n`));
  assert.ok(EVENTS_SCRIPT.includes(`echo "${READY_MARKER} $since"\n`));
  const events = [...EVENTS_SCRIPT.matchAll(/--filter event=(\S+)/g)].map((m) => m[1]);
  assert.deepEqual(events.sort(), [...EVENT_FILTERS.container, ...EVENT_FILTERS.network].sort(), "docker events is asked for the events parseEventLine takes");
  // The observed chains are written twice in observe.sh: awk's list and the loop without iptables-save.
  const awk = /awk -v want="([^"$]*)"/.exec(OBSERVE_SCRIPT)?.[1];
  const loop = /for k in ([^;]*); do sec iptables/.exec(OBSERVE_SCRIPT)?.[1];
  assert.ok(awk && loop);
  assert.equal(awk, loop, "observe.sh lists the same chains both ways");
  for (const chain of ["filter:DOCKER-USER", "nat:POSTROUTING", "filter:INPUT", "filter:FORWARD", "raw:PREROUTING", "filter:DOCKMESH-INPUT"]) assert.ok(awk.split(" ").includes(chain), chain);
});
