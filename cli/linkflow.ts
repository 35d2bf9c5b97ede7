/**
 * linkflow: the command line for the ingest API (`npm run cli -- <command>`, or `npx linkflow`).
 * `linkflow --help` lists the commands, `linkflow <command> --help` their options.
 *
 * Global options: --json (raw JSON), --url (LINKFLOW_API_URL, default http://127.0.0.1:8788),
 * --key (LINKFLOW_API_KEY, else DATA_DIR/admin-key). Exit codes: 0 done; 1 an API error (its
 * JSON on stderr) or an import with failed rows; 2 a usage error or an unreachable API.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { apiClient, ApiFailure, Unreachable, type Api, type Assert, type Exactly, type KeyCreate, type LinkUpdate, type ListQuery, type QrQuery, type StatsQuery } from "./api.ts";
import { printJson, show, table } from "./format.ts";
import { DIMENSIONS, parseDimension, parsePeriod, printStats, statsQuery, type StatsOptions } from "./stats.ts";

const LINK_COLS = ["id", "code", "domain", "url", "short_url", "redirect_status", "created_at"];
const KEY_COLS = ["id", "name", "prefix", "scopes", "requests_per_minute", "revoked_at"];
const DOMAIN_COLS = ["id", "hostname", "verified", "created_at"];

// Option choices the spec has an enum for: typed against it, so a value added or removed there fails tsc here.
type RedirectStatus = NonNullable<LinkUpdate["redirect_status"]>;
const REDIRECT_STATUSES = [301, 302, 307, 308] as const satisfies readonly RedirectStatus[];
const ARCHIVED = ["false", "true", "all"] as const satisfies readonly NonNullable<ListQuery["archived"]>[];
const QR_FORMATS = ["svg", "png"] as const satisfies readonly NonNullable<QrQuery["format"]>[];
const INTERVALS = ["minute", "hour", "day", "week", "month"] as const satisfies readonly NonNullable<StatsQuery["interval"]>[];
const BOTS = ["exclude", "include", "only"] as const satisfies readonly NonNullable<StatsQuery["bots"]>[];
export type ChoicesMatchSpec = [
  Assert<Exactly<RedirectStatus, typeof REDIRECT_STATUSES>>,
  Assert<Exactly<NonNullable<ListQuery["archived"]>, typeof ARCHIVED>>,
  Assert<Exactly<NonNullable<QrQuery["format"]>, typeof QR_FORMATS>>,
  Assert<Exactly<NonNullable<StatsQuery["interval"]>, typeof INTERVALS>>,
  Assert<Exactly<NonNullable<StatsQuery["bots"]>, typeof BOTS>>,
];

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

function fail(message: string): never {
  process.stderr.write(`linkflow: ${message}\n`);
  process.exit(2);
}

interface Globals {
  url?: string;
  key?: string;
  json?: boolean;
}

/** The API client and output mode from the global options (given before or after the command). */
function context(cmd: Command): { api: Api; json: boolean } {
  const g = cmd.optsWithGlobals<Globals>();
  const apiKey = () => {
    const key = g.key ?? process.env.LINKFLOW_API_KEY;
    if (key) return key;
    try {
      return readFileSync(join(process.env.DATA_DIR ?? "data", "admin-key"), "utf8").trim();
    } catch {
      fail("no API key: pass --key, set LINKFLOW_API_KEY, or run next to npm start's data/admin-key");
    }
  };
  return { api: apiClient({ baseUrl: g.url ?? process.env.LINKFLOW_API_URL ?? "http://127.0.0.1:8788", key: apiKey }), json: g.json === true };
}

// Option value parsers: a bad value is commander's usage error, before any request.
const positive = (v: string) => {
  if (!/^\d{1,15}$/.test(v) || Number(v) === 0) throw new InvalidArgumentError("a positive integer");
  return Number(v);
};
const instant = (v: string) => {
  if (Number.isNaN(Date.parse(v))) throw new InvalidArgumentError("an ISO 8601 time, e.g. 2025-06-30T00:00:00Z");
  return v;
};
function collect<T>(parse: (v: string) => T) {
  // `false` (from a --no-… flag given earlier) starts the list afresh.
  return (v: string, prev: T[] | false | undefined) => [...(Array.isArray(prev) ? prev : []), parse(v)];
}
const text = (v: string) => v;

const program = new Command("linkflow")
  .description("The command line for the Linkflow API.")
  .version(version, "-V, --version", "print the version")
  .helpOption("-h, --help", "show help")
  .option("--url <url>", "API base URL (env LINKFLOW_API_URL, default http://127.0.0.1:8788)")
  .option("--key <key>", "API key (env LINKFLOW_API_KEY, default: the key in $DATA_DIR/admin-key)")
  .option("--json", "print the API's JSON as is")
  // Set before the subcommands are made: they inherit these.
  .exitOverride()
  .showHelpAfterError("(add --help for usage)")
  .configureHelp({ showGlobalOptions: true })
  .addHelpText(
    "after",
    `
Examples:
  linkflow links create https://example.com/sale --slug sale --tag spring
  linkflow links update 42 --destination https://example.com/new --no-expires
  linkflow stats 42 --period 30d --by country
  linkflow links qr 42 --format png --out sale.png
  linkflow links import links.csv`,
  );

// ---- links ----
const links = program.command("links").description("create, list, change and delete links; QR codes; CSV import");

interface LinkOptions {
  destination?: string;
  slug?: string;
  domain?: string;
  title?: string | false;
  tag?: string[] | false;
  redirectStatus?: string;
  expires?: string | false;
  expiredUrl?: string | false;
  maxClicks?: number | false;
  password?: string | false;
  archive?: boolean;
  unarchive?: boolean;
}

/** The link fields both create and update take; update adds --no-… to clear a field. */
function linkOptions(cmd: Command, update: boolean): Command {
  if (update) cmd.option("--destination <url>", "a new destination URL");
  cmd
    .option("--slug <slug>", update ? "a new short code" : "the short code (default: 7 random characters)")
    .option("--domain <host>", "a verified custom domain ('' = the primary short domain)")
    .option("--title <title>", "a title")
    .option("--tag <tag>", update ? "the tags (repeat for several; replaces the tags)" : "a tag (repeat for several)", collect(text))
    .addOption(new Option("--redirect-status <status>", "HTTP status of the redirect").choices(REDIRECT_STATUSES.map(String)))
    .option("--expires <time>", "ISO 8601 time after which the link answers --expired-url, or 410", instant)
    .option("--expired-url <url>", "where visitors go once the link expired, was archived or hit --max-clicks")
    .option("--max-clicks <n>", "stop redirecting after this many counted clicks", positive)
    .option("--password <password>", "visitors must enter it")
    .addOption(new Option("--archive", "archive the link (it answers like an expired one)"));
  if (update)
    cmd
      .addOption(new Option("--unarchive", "bring an archived link back").conflicts("archive"))
      .option("--no-title", "remove the title")
      .option("--no-tag", "remove every tag")
      .option("--no-expires", "remove the expiry")
      .option("--no-expired-url", "remove the expired URL (410 instead)")
      .option("--no-max-clicks", "remove the click limit")
      .option("--no-password", "remove the password");
  return cmd;
}

/** The request body from the options given (false from --no-… clears the field). */
function linkFields(o: LinkOptions): LinkUpdate {
  const clear = <T>(v: T | false | undefined) => (v === false ? null : v);
  const body: LinkUpdate = {
    url: o.destination,
    slug: o.slug,
    domain: o.domain,
    title: clear(o.title),
    tags: o.tag === false ? [] : o.tag,
    redirect_status: REDIRECT_STATUSES.find((status) => String(status) === o.redirectStatus),
    expires_at: clear(o.expires),
    expired_url: clear(o.expiredUrl),
    max_clicks: clear(o.maxClicks),
    password: clear(o.password),
    archived: o.archive ? true : o.unarchive ? false : undefined,
  };
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)) as LinkUpdate;
}

const linkIdArg = (name = "id") => (v: string) => {
  if (!/^\d{1,15}$/.test(v) || Number(v) === 0) throw new InvalidArgumentError(`the link's numeric ${name} (see links list)`);
  return Number(v);
};

linkOptions(links.command("create").description("create a link").argument("<url>", "the destination"), false).action(async (url: string, o: LinkOptions, cmd: Command) => {
  const { api, json } = context(cmd);
  show(await api.createLink({ ...linkFields(o), url }), LINK_COLS, json);
});

links
  .command("list")
  .description("list links, newest first")
  .option("--q <text>", "search url, slug and title (substring, any case)")
  .option("--tag <tag>", "links carrying this tag")
  .option("--domain <host>", "links of this short domain")
  .addOption(new Option("--archived <which>", "archived links too, or only them").choices(ARCHIVED))
  .option("--limit <n>", "page size (1-100, default 50)", positive)
  .option("--cursor <cursor>", "the next page (printed after a full page)")
  .action(async (o: Pick<ListQuery, "q" | "tag" | "domain" | "archived" | "limit" | "cursor">, cmd: Command) => {
    const { api, json } = context(cmd);
    const page = await api.listLinks(o);
    show(page, LINK_COLS, json);
    // On stderr: the table on stdout stays just the table.
    if (!json && page.next_cursor) process.stderr.write(`more: --cursor ${page.next_cursor}\n`);
  });

links
  .command("get")
  .description("show a link, by id or by short code")
  .argument("<id|code>", "the link's id, or its short code (a code of digits only: add --domain)")
  .option("--domain <host>", "the code's domain ('' = the primary short domain)")
  .action(async (ref: string, o: { domain?: string }, cmd: Command) => {
    const { api, json } = context(cmd);
    const link = /^\d{1,15}$/.test(ref) && o.domain === undefined ? await api.getLink(Number(ref)) : await api.getLinkByCode(o.domain ?? "", ref);
    show(link, LINK_COLS, json);
  });

linkOptions(links.command("update").description("change a link (only the fields given)").argument("<id>", "the link's id", linkIdArg()), true).action(
  async (id: number, o: LinkOptions, cmd: Command) => {
    const body = linkFields(o);
    if (!Object.keys(body).length) cmd.error("error: nothing to change: give at least one option (see --help)", { exitCode: 2 });
    const { api, json } = context(cmd);
    show(await api.updateLink(id, body), LINK_COLS, json);
  },
);

links
  .command("delete")
  .description("delete a link (its clicks stay)")
  .argument("<id>", "the link's id", linkIdArg())
  .action(async (id: number, _o: object, cmd: Command) => {
    const { api, json } = context(cmd);
    show(await api.deleteLink(id), LINK_COLS, json);
  });

links
  .command("qr")
  .description("the link's QR code: SVG to stdout, or a file with --out")
  .argument("<id>", "the link's id", linkIdArg())
  .addOption(new Option("--format <format>", "image format").choices(QR_FORMATS).default("svg"))
  .option("--size <px>", "width and height in pixels (64-2048, default 512)", positive)
  .option("--out <file>", "write the image to this file (required for png)")
  .action(async (id: number, o: { format: NonNullable<QrQuery["format"]>; size?: number; out?: string }, cmd: Command) => {
    if (o.format === "png" && !o.out) cmd.error("error: --format png needs --out <file>", { exitCode: 2 });
    const { api, json } = context(cmd);
    const image = await api.linkQr(id, { format: o.format, size: o.size });
    if (!o.out) return void process.stdout.write(image);
    writeFileSync(o.out, image);
    if (json) printJson({ file: o.out, format: o.format, bytes: image.length });
    else console.log(`wrote ${o.out} (${o.format}, ${image.length} bytes)`);
  });

links
  .command("import")
  .description("create links from a CSV file (linkflow, Bitly or Shlink export; see the API docs)")
  .argument("<file>", "the CSV file ('-' = stdin)")
  .action(async (file: string, _o: object, cmd: Command) => {
    let csv: string;
    try {
      csv = readFileSync(file === "-" ? 0 : file, "utf8");
    } catch (err) {
      cmd.error(`error: cannot read ${file}: ${(err as Error).message}`, { exitCode: 2 });
    }
    const { api, json } = context(cmd);
    const r = await api.importLinks(csv);
    if (json) printJson(r);
    else {
      console.log(`${r.format} CSV: ${r.created} created, ${r.failed} failed`);
      table(
        r.results.map((x) => ({ index: x.index, status: x.status, id: x.link?.id, short_url: x.link?.short_url, error: x.error && `${x.error.code}: ${x.error.message}` })),
        ["index", "status", "id", "short_url", "error"],
      );
    }
    // The rows that failed are worth a non-zero exit for scripts (the others were created).
    if (r.failed > 0) process.exitCode = 1;
  });

// ---- stats ----
program
  .command("stats")
  .description("clicks and visitors over time (of a link, or the workspace), or a breakdown with --by")
  .argument("[id]", "a link's id (default: every link of the workspace, or those of --tag/--domain)", linkIdArg())
  .addOption(new Option("--period <span>", "how far back: 60m, 24h, 7d, 4w…").argParser(parsePeriod).default(parsePeriod("7d"), "7d"))
  .option("--from <time>", "start instead of --period (ISO 8601)", instant)
  .option("--to <time>", "end (ISO 8601; default: the next full hour)", instant)
  .addOption(new Option("--interval <unit>", "bucket size (default: by the span)").choices(INTERVALS))
  .option("--tz <zone>", "IANA time zone of the buckets (default UTC)")
  .addOption(new Option("--by <dimension>", `breakdown instead of the series: ${DIMENSIONS.join(", ")}`).argParser(parseDimension))
  .option("--limit <n>", "breakdown rows (default 10)", positive)
  .addOption(new Option("--bots <which>", "bot clicks (default exclude)").choices(BOTS))
  .option("--tag <tag>", "links carrying this tag")
  .option("--domain <host>", "links of this short domain")
  .action(async (id: number | undefined, o: StatsOptions, cmd: Command) => {
    const { api, json } = context(cmd);
    const s = await api.stats(statsQuery(id, o));
    if (json) printJson(s);
    else printStats(s);
  });

// ---- keys ----
const keys = program.command("keys").description("API keys of the workspace");
keys
  .command("create")
  .description("create an API key (its secret is shown once)")
  .requiredOption("--name <name>", "what the key is for")
  .requiredOption("--scope <scope>", "a scope, e.g. links:read, links:write, stats:read, webhooks:read, webhooks:write (repeat for several)", collect(text))
  .option("--rpm <n>", "requests per minute", positive)
  .action(async (o: { name: string; scope: string[]; rpm?: number }, cmd: Command) => {
    const { api, json } = context(cmd);
    // The server checks the scopes (an unknown one is its 400, exit 1).
    show(await api.createKey({ name: o.name, scopes: o.scope as KeyCreate["scopes"], ...(o.rpm ? { requests_per_minute: o.rpm } : {}) }), ["key", ...KEY_COLS], json);
  });
keys
  .command("list")
  .description("list the keys (no secrets)")
  .action(async (_o: object, cmd: Command) => {
    const { api, json } = context(cmd);
    show(await api.listKeys(), KEY_COLS, json);
  });
keys
  .command("revoke")
  .description("revoke a key")
  .argument("<id>", "the key's id", positive)
  .action(async (id: number, _o: object, cmd: Command) => {
    const { api, json } = context(cmd);
    show(await api.revokeKey(id), KEY_COLS, json);
  });

// ---- domains ----
const domains = program.command("domains").description("custom short domains (proven by a DNS TXT record)");
domains
  .command("add")
  .description("claim a domain; prints the TXT record that proves it")
  .argument("<hostname>")
  .action(async (hostname: string, _o: object, cmd: Command) => {
    const { api, json } = context(cmd);
    // A new domain is pending: say which TXT record proves it.
    const d = await api.addDomain(hostname);
    show(d, DOMAIN_COLS, json);
    if (!json && d.verification) console.log(d.verification.instructions);
  });
domains
  .command("list")
  .description("the workspace's domains, verified and pending")
  .action(async (_o: object, cmd: Command) => {
    const { api, json } = context(cmd);
    show(await api.listDomains(), DOMAIN_COLS, json);
  });
domains
  .command("verify")
  .description("check the domain's TXT record and verify it")
  .argument("<id>", "the domain's id", positive)
  .action(async (id: number, _o: object, cmd: Command) => {
    const { api, json } = context(cmd);
    show(await api.verifyDomain(id), DOMAIN_COLS, json);
  });
domains
  .command("delete")
  .description("remove a domain (or withdraw a pending claim)")
  .argument("<id>", "the domain's id", positive)
  .action(async (id: number, _o: object, cmd: Command) => {
    const { api, json } = context(cmd);
    show(await api.deleteDomain(id), DOMAIN_COLS, json);
  });

// ---- pipeline (operator scope) ----
program
  .command("pipeline")
  .description("the click pipeline's state (operator)")
  .action(async (_o: object, cmd: Command) => {
    const { api, json } = context(cmd);
    show(await api.pipeline(), ["postgres_clicks", "kinesis_sent", "clickhouse_clicks", "outbox_backlog", "dlq", "breakers"], json);
  });
const dlq = program.command("dlq").description("the pipeline's dead-letter queue (operator)");
dlq
  .command("list")
  .description("dead letters not replayed yet")
  .action(async (_o: object, cmd: Command) => {
    const { api, json } = context(cmd);
    show(await api.dlqList(), ["id", "source", "shard_id", "error", "created_at"], json);
  });
dlq
  .command("replay")
  .description("put dead letters back into the pipeline (all, or those of --id)")
  .option("--id <n>", "a dead letter's id (repeat for several)", collect(positive))
  .action(async (o: { id?: number[] }, cmd: Command) => {
    const { api, json } = context(cmd);
    show(await api.dlqReplay(o.id), ["replayed"], json);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Commander has printed its message (or the help) already; usage errors exit 2, as before.
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof ApiFailure) {
    process.stderr.write(JSON.stringify(err.body) + "\n");
    process.exit(1);
  }
  if (err instanceof Unreachable) fail(err.message);
  throw err;
}
