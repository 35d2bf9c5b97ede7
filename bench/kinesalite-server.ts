/**
 * kinesalite in a process of its own for the benchmarks: the Kinesis service ingest talks to
 * over the network when deployed, so its CPU is measured apart from the pipeline's (and, on
 * these 2 cores, still shares them). `KDIR`: its LevelDB folder; `PORT`: where it listens.
 */
import { startEmbeddedKinesis } from "../ingest/src/pipeline/embedded-kinesis.ts";

const k = await startEmbeddedKinesis(process.env.KDIR, Number(process.env.PORT ?? 0));
console.log(`kinesalite listening on ${k.endpoint}`);
process.on("SIGTERM", () => void k.stop().finally(() => process.exit(0)));
