/**
 * The events the local runtime delivers have the shape of AWS's documented sample events: the
 * same fields at the same places, with the same types.
 */

import type { KafkaMessage } from "kafkajs";
import { describe, expect, it } from "vitest";
import { mskEvent } from "../../localstack/emulator/kafka-event-source.ts";
import { awsS3Record } from "../../localstack/emulator/s3-notifications.ts";

/** Every path to a leaf with its JSON type, array items collapsed to "[]". */
function shape(value: unknown, path = "$"): string[] {
  if (Array.isArray(value)) return value.length === 0 ? [`${path}[]:empty`] : shape(value[0], `${path}[]`);
  if (value !== null && typeof value === "object") {
    return Object.entries(value).flatMap(([key, item]) => shape(item, `${path}.${key}`));
  }
  return [`${path}:${value === null ? "null" : typeof value}`];
}

// AWS Lambda Developer Guide, "Using Lambda with Amazon MSK": example event.
const awsMskSample = {
  eventSource: "aws:kafka",
  eventSourceArn: "arn:aws:kafka:us-east-1:123456789012:cluster/vpc-2priv-2pub/751d2973-a626-431c-9d4e-d7975eb44dd7-2",
  bootstrapServers: "b-2.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092",
  records: {
    "mytopic-0": [
      {
        topic: "mytopic",
        partition: 0,
        offset: 15,
        timestamp: 1545084650987,
        timestampType: "CREATE_TIME",
        key: "abcDEFghiJKLmnoPQRstuVWXyz1234==",
        value: "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
        headers: [{ headerKey: [104, 101, 97, 100, 101, 114, 86, 97, 108, 117, 101] }],
      },
    ],
  },
};

// AWS Lambda Developer Guide, "Using Lambda with Amazon S3": example S3 notification event.
const awsS3Sample = {
  Records: [
    {
      eventVersion: "2.1",
      eventSource: "aws:s3",
      awsRegion: "us-east-1",
      eventTime: "2019-09-03T19:37:27.192Z",
      eventName: "ObjectCreated:Put",
      userIdentity: { principalId: "AWS:AIDAINPONIXQXHT3IKHL2" },
      requestParameters: { sourceIPAddress: "205.255.255.255" },
      responseElements: {
        "x-amz-request-id": "D82B88E5F771F645",
        "x-amz-id-2": "vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryT",
      },
      s3: {
        s3SchemaVersion: "1.0",
        configurationId: "828aa6fc-f7b5-4305-8584-487c791949c1",
        bucket: {
          name: "DOC-EXAMPLE-BUCKET",
          ownerIdentity: { principalId: "A3I5XTEXAMPLE" },
          arn: "arn:aws:s3:::lambda-artifacts-deafc19498e3f2df",
        },
        object: {
          key: "b21b84d653bb07b05b1e6b33684dc11b",
          size: 1305107,
          eTag: "b21b84d653bb07b05b1e6b33684dc11b",
          sequencer: "0C0F6F405D6ED209E1",
        },
      },
    },
  ],
};

// What the local S3 server (versitygw 1.8.0) POSTs to its webhook for a PutObject (captured).
const versitygwEvent = {
  eventVersion: "2.2",
  eventSource: "aws:s3",
  awsRegion: "us-east-1",
  eventTime: "2026-11-23T21:22:40Z",
  eventName: "s3:ObjectCreated:Put",
  userIdentity: { PrincipalId: "datadistiller" },
  requestParameters: { sourceIPAddress: "127.0.0.1" },
  responseElements: { "x-amz-request-id": "", "x-amz-id-2": "" },
  s3: {
    s3SchemaVersion: "1.0",
    configurationId: "webhook-global",
    bucket: {
      name: "uploads",
      ownerIdentity: { PrincipalId: "datadistiller" },
      arn: "arn:aws:s3:::/uploads/docs/my file ü.txt",
    },
    object: {
      key: "docs/my file ü.txt",
      size: 14,
      eTag: '"b4a5461042ef29852deeeed1b097d8e9"',
      versionId: null,
      sequencer: "2",
    },
  },
  glacierEventData: { restoreEventData: { lifecycleRestorationExpiryTime: "", lifecycleRestoreStorageClass: "" } },
};

describe("event shapes match AWS's samples", () => {
  it("MSK event", () => {
    const message = {
      key: Buffer.from("k"),
      value: Buffer.from("Hello, this is a test."),
      timestamp: "1545084650987",
      attributes: 0,
      offset: "15",
      size: 0,
      headers: { headerKey: Buffer.from("headerValue") },
    } as unknown as KafkaMessage;
    const event = mskEvent(
      { eventSourceArn: awsMskSample.eventSourceArn, bootstrapServers: "127.0.0.1:9092" },
      "mytopic",
      0,
      [message],
    );
    expect(shape(event).sort()).toEqual(shape(awsMskSample).sort());
    expect(event.records["mytopic-0"]?.[0]?.headers).toEqual(awsMskSample.records["mytopic-0"][0]?.headers);
    expect(event.records["mytopic-0"]?.[0]?.value).toBe(awsMskSample.records["mytopic-0"][0]?.value);
  });

  it("S3 notification event, from the local server's webhook payload", () => {
    const record = awsS3Record(versitygwEvent as never);
    expect(shape({ Records: [record] }).sort()).toEqual(shape(awsS3Sample).sort());
    expect(record).toMatchObject({
      eventName: "ObjectCreated:Put",
      s3: {
        bucket: { arn: "arn:aws:s3:::uploads" },
        object: { key: "docs/my+file+%C3%BC.txt", eTag: "b4a5461042ef29852deeeed1b097d8e9" },
      },
    });
  });
});
