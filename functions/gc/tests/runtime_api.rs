//! The `gc` binary as Lambda runs it, against DynamoDB and S3 on moto: its
//! EventBridge schedule and its queue, through a Runtime API.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use berth::lambda::runtime_api::{Outcome, RuntimeApi};
use berth::testing::MotoUp;
use serde_json::json;

#[tokio::test]
async fn runs_on_schedule_and_on_its_queue() {
    let moto = MotoUp::start().unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let _function = api
        .spawn(Path::new(env!("CARGO_BIN_EXE_berth-gc")), "gc", &moto.env)
        .unwrap();
    let scheduled = json!({
        "version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events", "account": "000000000000",
        "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [], "detail": {}
    });
    assert_eq!(
        api.invoke(&serde_json::to_vec(&scheduled).unwrap()).await,
        Outcome::Response(b"{}".to_vec())
    );
    let job = json!({"v": 1, "id": "j", "kind": "uploads.sweep", "payload": {}}).to_string();
    let batch = json!({"Records": [{"messageId": "m1", "body": job, "eventSource": "aws:sqs"}]});
    let Outcome::Response(out) = api.invoke(&serde_json::to_vec(&batch).unwrap()).await else {
        panic!("no response")
    };
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
        json!({"batchItemFailures": []})
    );
    // A job kind this build does not know is acknowledged, not retried.
    let job = json!({"v": 1, "id": "k", "kind": "gc.someday", "payload": {}}).to_string();
    let batch = json!({"Records": [{"messageId": "m2", "body": job, "eventSource": "aws:sqs"}]});
    let Outcome::Response(out) = api.invoke(&serde_json::to_vec(&batch).unwrap()).await else {
        panic!("no response")
    };
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
        json!({"batchItemFailures": []})
    );
}
