// Parsing for the simulated hosts: what arrives over SSH (the command line hosts/ssh.ts builds,
// the apply script hosts/steps.ts renders) and the wg-quick configuration mesh/render.ts writes.
// Only the shapes dockmesh sends are understood; anything else is reported as unknown.
import { splitRuleLine } from "../../hosts/observe.js";

/**
 * The argv of an exec request: `sh -c SCRIPT sh ARGS…`, POSIX-quoted by shQuote, with `sudo -n`
 * in front for users other than root. Undefined when it is not that shape.
 */
export function parseExecCommand(command: string): { script: string; args: string[] } | undefined {
  // splitRuleLine undoes shQuote: bare safe words, '…' and the '\'' escape for quotes inside.
  let argv = splitRuleLine(command);
  if (argv[0] === "sudo" && argv[1] === "-n") argv = argv.slice(2);
  if (argv[0] !== "sh" || argv[1] !== "-c" || argv.length < 4) return undefined;
  return { script: argv[2]!, args: argv.slice(4) };
}

/** One call of a prelude function in an apply script. */
export interface ScriptCall {
  /** The number after `step`. */
  index: number;
  op: string;
  args: string[];
}

/**
 * The steps of an apply script after its prelude: `step N` lines, each followed by one call
 * (`op 'arg' … </dev/null`), and a final `step done`. Throws on anything else.
 */
export function parseApplyBody(body: string): { calls: ScriptCall[]; done: boolean } {
  const calls: ScriptCall[] = [];
  let index: number | undefined;
  let done = false;
  for (const line of body.split("\n")) {
    if (line === "") continue;
    const step = /^step (\S+)$/.exec(line);
    if (step) {
      if (step[1] === "done") done = true;
      else index = Number(step[1]);
      continue;
    }
    if (index === undefined || done) throw new Error(`a command outside a step: ${line.slice(0, 80)}`);
    const words = splitRuleLine(line);
    if (words.at(-1) === "</dev/null") words.pop();
    const [op, ...args] = words;
    if (!op) throw new Error(`an empty step ${index}`);
    calls.push({ index, op, args });
    index = undefined;
  }
  return { calls, done };
}

export interface WgQuickPeer {
  publicKey: string;
  allowedIPs: string[];
  endpoint?: string;
  persistentKeepalive?: number;
}

export interface WgQuickConfig {
  privateKey?: string;
  listenPort?: number;
  mtu?: number;
  postUp: string[];
  postDown: string[];
  peers: WgQuickPeer[];
}

/** A wg-quick configuration file: [Interface] and [Peer] sections, `Key = value` lines, # comments. */
export function parseWgQuickConfig(text: string): WgQuickConfig {
  const cfg: WgQuickConfig = { postUp: [], postDown: [], peers: [] };
  let section: "interface" | "peer" | undefined;
  let peer: WgQuickPeer | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line === "[Interface]") {
      section = "interface";
      continue;
    }
    if (line === "[Peer]") {
      section = "peer";
      peer = { publicKey: "", allowedIPs: [] };
      cfg.peers.push(peer);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || !section) throw new Error(`wg-quick: cannot parse line: ${line.slice(0, 60)}`);
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = line.slice(eq + 1).trim();
    if (section === "interface") {
      if (key === "privatekey") cfg.privateKey = value;
      else if (key === "listenport") cfg.listenPort = Number(value);
      else if (key === "mtu") cfg.mtu = Number(value);
      else if (key === "postup") cfg.postUp.push(value);
      else if (key === "postdown") cfg.postDown.push(value);
      else if (!["address", "dns", "table", "preup", "predown", "saveconfig", "fwmark"].includes(key)) throw new Error(`wg-quick: unknown interface key ${key}`);
    } else if (peer) {
      if (key === "publickey") peer.publicKey = value;
      else if (key === "allowedips")
        peer.allowedIPs.push(
          ...value
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
        );
      else if (key === "endpoint") peer.endpoint = value;
      else if (key === "persistentkeepalive") peer.persistentKeepalive = value === "off" ? undefined : Number(value);
      else if (key !== "presharedkey") throw new Error(`wg-quick: unknown peer key ${key}`);
    }
  }
  for (const p of cfg.peers) if (!p.publicKey) throw new Error("wg-quick: a [Peer] without PublicKey");
  return cfg;
}

/** A PostUp/PostDown line as alternatives (`a || b || true`), each an argv; redirections dropped. */
export function parseHookLine(line: string): string[][] {
  return line.split(" || ").map((alt) => splitRuleLine(alt).filter((w) => !/^\d?>/.test(w)));
}
