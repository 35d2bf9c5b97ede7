/** Memory of benchmark processes, from /proc (Linux). */
import { readdir, readFile } from "node:fs/promises";

/** A /proc/<pid>/status field in kB: VmHWM (peak resident set) or VmRSS (now); null if gone. */
export async function procStatusKb(pid: number | "self", field: "VmHWM" | "VmRSS"): Promise<number | null> {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(await readFile(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Pids of the direct children of `parent` whose command name is `name` (e.g. Miniflare's workerd). */
export async function childPids(parent: number, name: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const status = await readFile(`/proc/${entry}/status`, "utf8").catch(() => "");
    if (/^PPid:\s+(\d+)$/m.exec(status)?.[1] === String(parent) && /^Name:\s+(.*)$/m.exec(status)?.[1] === name) out.push(Number(entry));
  }
  return out;
}

export const mib = (kb: number | null) => (kb === null ? null : Math.round(kb / 1024));

/** Samples VmRSS of `pid` every `ms` while running; `stop()` gives the highest sample (kB). */
export function rssSampler(pid: number, ms = 250) {
  let max: number | null = null;
  const timer = setInterval(async () => {
    const kb = await procStatusKb(pid, "VmRSS");
    if (kb !== null && (max === null || kb > max)) max = kb;
  }, ms);
  return { stop: () => (clearInterval(timer), max) };
}

/** CPU time (user + system, ms) a process has used so far, from /proc/<pid>/stat; 0 if gone. */
export async function cpuMs(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at ") ": utime and stime are the 14th and 15th.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}
/** Linux's USER_HZ: /proc times are in these ticks (100 on every mainstream kernel). */
const CLK_TCK = 100;


/**
 * CPU ms by thread name (/proc/<pid>/task/<tid>/comm: libuv's "node", V8's workers, chDB's pools
 * such as "MergeMutate"), summed over the threads alive now; names end up without their numbers.
 */
export async function threadCpuMs(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const tid of tids) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, "utf8").catch(() => "");
    if (!stat) continue;
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).replace(/[\d_-]+$/, "") || "?";
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.set(name, (out.get(name) ?? 0) + ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK);
  }
  return out;
}
