/** How the CLI prints: JSON as the API sent it (--json), else compact tables. */

const cell = (v: unknown) => (v === null || v === undefined ? "" : Array.isArray(v) ? v.join(",") : typeof v === "object" ? JSON.stringify(v) : String(v));

/** A header row and one row per item, columns padded to their widest cell. */
export function table(rows: readonly object[], columns: string[]): void {
  const items = rows as Record<string, unknown>[];
  const widths = columns.map((c) => Math.max(c.length, ...items.map((i) => cell(i[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  console.log(line(columns));
  for (const i of items) console.log(line(columns.map((c) => cell(i[c]))));
}

export function printJson(data: unknown): void {
  process.stdout.write(JSON.stringify(data, null, 2) + "\n");
}

/** JSON with --json, else a table of the chosen columns (of `items` when the response is a list). */
export function show(data: unknown, columns: string[], json: boolean): void {
  if (json) return printJson(data);
  const items = (data && typeof data === "object" && "items" in data ? (data as { items: unknown[] }).items : [data]) as Record<string, unknown>[];
  table(items, columns);
}
