//! The `webhook` binary as Lambda runs it, against DynamoDB, S3 and SQS on
//! moto: SQS batches through a Runtime API, failures reported per message.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use berth::lambda::runtime_api::{Outcome, RuntimeApi};
use berth::testing::MotoUp;
use serde_json::json;

fn record(id: &str, body: &str) -> serde_json::Value {
    json!({
        "messageId": id, "receiptHandle": "rh", "body": body, "attributes": {}, "messageAttributes": {},
        "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:berth-webhook", "awsRegion": "us-east-1"
    })
}

#[tokio::test]
async fn acknowledges_jobs_and_refuses_unknown_versions() {
    let moto = MotoUp::start().unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let _function = api
        .spawn(
            Path::new(env!("CARGO_BIN_EXE_berth-webhook")),
            "webhook",
            &moto.env,
        )
        .unwrap();
    // An event nobody subscribes to: dispatched to no one, acknowledged.
    let event = json!({"id": "e1", "kind": "PUSH_ARTIFACT", "at": 1, "project": "p",
        "data": {"repository": "p/r", "digest": "sha256:00", "tags": [], "media_type": "x", "size": 1, "operator": "u"}});
    let ok = json!({"v": 1, "id": "e1", "kind": "event", "payload": event}).to_string();
    let future = json!({"v": 9, "id": "j2", "kind": "event", "payload": {}}).to_string();
    let event = json!({"Records": [record("m1", &ok), record("m2", &future), record("m3", "{")]});
    let Outcome::Response(out) = api.invoke(&serde_json::to_vec(&event).unwrap()).await else {
        panic!("no response")
    };
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]})
    );

    // Something that is no SQS batch is a function error, not a crash.
    let Outcome::Error(_) = api.invoke(br#"{"hello":"world"}"#).await else {
        panic!("expected a function error")
    };
    let Outcome::Response(_) = api
        .invoke(&serde_json::to_vec(&json!({"Records": []})).unwrap())
        .await
    else {
        panic!("the function stopped")
    };
}
