/**
 * The parts of aws-kinesis-agg (the KPL aggregated-record format) that Linkflow uses, as they
 * behave: the package's own typings import aws-sdk v2 and aws-lambda, which are not installed.
 * (They still merge with these: a callback's parameters need their types written out to pick
 * this signature.)
 */
declare module "aws-kinesis-agg" {
  /**
   * A Kinesis record in the Lambda event's shape (lower-case keys: the library converts the SDK
   * v3 shape's keys for every user record). `data`: base64, or the bytes themselves (copied as is).
   */
  export interface KinesisRecordV2 {
    data: string | Uint8Array;
    partitionKey?: string;
    explicitPartitionKey?: string;
    sequenceNumber?: string;
  }
  /** A user record of an aggregated one (`data`: base64); of a plain record: the record as given. */
  export interface UserRecordV2 {
    partitionKey: string;
    explicitPartitionKey?: string;
    sequenceNumber?: string;
    subSequenceNumber?: number;
    data: string;
  }
  /** A Kinesis record as SDK v3 reads it; the user records come back in the same shape. */
  export interface KinesisRecordV3 {
    Data: Uint8Array;
    PartitionKey?: string;
    ExplicitHashKey?: string;
    SequenceNumber?: string;
  }
  export interface UserRecordV3 {
    PartitionKey: string;
    ExplicitPartitionKey?: string;
    SequenceNumber?: string;
    SubSequenceNumber?: number;
    Data: string;
  }
  /** Synchronous in fact: the callback runs before it returns (on an error: once, records []). */
  export function deaggregateSync(record: KinesisRecordV3, computeChecksums: boolean, done: (err: Error | null | undefined, records?: UserRecordV3[]) => void): void;
  export function deaggregateSync(record: KinesisRecordV2, computeChecksums: boolean, done: (err: Error | null | undefined, records?: UserRecordV2[]) => void): void;
}

/** The KPL's protobuf messages (lib/kpl.json), as protobufjs types. */
declare module "aws-kinesis-agg/lib/common.js" {
  export interface AggregatedRecordMessage {
    partition_key_table: string[];
    explicit_hash_key_table: string[];
    records: { partition_key_index: number; explicit_hash_key_index?: number; data: Uint8Array }[];
  }
  export const AggregatedRecord: {
    encode(message: AggregatedRecordMessage): { finish(): Uint8Array };
    /** Throws on bytes that are not the message; `data` fields are views of the given bytes (Node Buffers). */
    decode(bytes: Uint8Array): AggregatedRecordMessage;
  };
}
