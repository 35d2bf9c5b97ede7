import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  KinesisClient,
  ResourceNotFoundException,
  waitUntilStreamExists,
} from "@aws-sdk/client-kinesis";
import { NodeHttpHandler } from "@smithy/node-http-handler";

export interface KinesisOptions {
  endpoint?: string;
  region?: string;
}

/**
 * The one Kinesis client. A local endpoint (kinesalite) needs the HTTP/1.1 handler (the
 * default HTTP/2 one fails) and dummy credentials; without an endpoint, the standard AWS
 * region and credential chain apply. The pipeline does its own retries and circuit breaking.
 */
export function kinesisClient({ endpoint, region }: KinesisOptions): KinesisClient {
  return new KinesisClient({
    region: region ?? "us-east-1",
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 2_000, requestTimeout: 10_000 }),
    ...(endpoint ? { endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } } : {}),
  });
}

/** Creates the stream if it is missing and waits until it is ACTIVE. */
export async function ensureStream(client: KinesisClient, stream: string, shards: number): Promise<void> {
  try {
    await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException) && (err as { name?: string }).name !== "ResourceNotFoundException") throw err;
    await client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: shards }));
  }
  await waitUntilStreamExists({ client, maxWaitTime: 60, minDelay: 1 }, { StreamName: stream });
}
