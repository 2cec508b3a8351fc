//! SQS worker helpers (`berth::lambda::worker`): partial batch responses
//! and versioned job messages, driven with the event JSON SQS sends.
#![cfg(feature = "lambda")]
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use berth::lambda::worker::{
    JobError, JobHandler, NotConfigured, handle_event, parse_job, process_batch,
};
use berth::store::Job;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

/// Fails jobs of kind `fail`; records what it ran.
#[derive(Default)]
struct Recorder {
    ran: Mutex<Vec<String>>,
    ticks: Mutex<u32>,
}

#[async_trait]
impl JobHandler for Recorder {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        self.ran.lock().unwrap().push(job.id.clone());
        if job.kind == "fail" {
            Err(JobError::Failed("asked to".to_owned()))
        } else {
            Ok(())
        }
    }

    async fn tick(&self) -> Result<(), JobError> {
        *self.ticks.lock().unwrap() += 1;
        Ok(())
    }
}

fn job(v: u32, id: &str, kind: &str) -> String {
    json!({ "v": v, "id": id, "kind": kind, "payload": {} }).to_string()
}

/// An SQS event as Lambda's event source mapping delivers it.
fn sqs_event(bodies: &[(&str, &str)]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("rh-{id}"),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:berth-webhook",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

fn lambda_event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

#[tokio::test]
async fn failed_messages_are_reported_one_by_one() {
    let handler = Recorder::default();
    let ok = job(1, "j1", "webhook.deliver");
    let fail = job(1, "j2", "fail");
    let future = job(2, "j3", "webhook.deliver");
    let event = sqs_event(&[
        ("m1", &ok),
        ("m2", &fail),
        ("m3", "not json"),
        ("m4", &future),
        ("m5", &ok),
    ]);
    let out = handle_event(lambda_event(event), &handler).await.unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}, {"itemIdentifier": "m4"}]})
    );
    // Only well-formed jobs of a known version reached the handler.
    assert_eq!(*handler.ran.lock().unwrap(), ["j1", "j2", "j1"]);
}

#[tokio::test]
async fn a_clean_batch_reports_no_failures() {
    let handler = Recorder::default();
    let a = job(1, "a", "gc.sweep");
    let event: SqsEvent = serde_json::from_value(sqs_event(&[("m1", &a)])).unwrap();
    let out = process_batch(&event, &handler).await;
    assert!(out.batch_item_failures.is_empty());
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!({"batchItemFailures": []})
    );
}

#[test]
fn unknown_job_versions_are_refused_explicitly() {
    assert_eq!(
        parse_job(&job(2, "x", "k")),
        Err(JobError::UnsupportedVersion(2))
    );
    assert_eq!(
        parse_job(&job(0, "x", "k")),
        Err(JobError::UnsupportedVersion(0))
    );
    assert!(matches!(
        parse_job(r#"{"id":"x","kind":"k","payload":{}}"#),
        Err(JobError::Malformed(_))
    ));
    assert!(matches!(
        parse_job(r#"{"v":"1","id":"x","kind":"k","payload":{}}"#),
        Err(JobError::Malformed(_))
    ));
    assert!(matches!(
        parse_job(r#"{"v":1,"kind":"k"}"#),
        Err(JobError::Malformed(_))
    ));
    let j = parse_job(&job(1, "x", "gc.sweep")).unwrap();
    assert_eq!((j.v, j.id.as_str(), j.kind.as_str()), (1, "x", "gc.sweep"));
    // What the queue port sends is what the workers read.
    let sent = Job::new(
        "webhook.deliver",
        json!({"url": "https://example.test/hook"}),
    );
    assert_eq!(
        parse_job(&serde_json::to_string(&sent).unwrap()).unwrap(),
        sent
    );
}

#[tokio::test]
async fn schedules_tick_and_unknown_events_are_errors() {
    let handler = Recorder::default();
    let scheduled = json!({
        "version": "0", "id": "e", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/berth-gc"], "detail": {}
    });
    assert_eq!(
        handle_event(lambda_event(scheduled), &handler)
            .await
            .unwrap(),
        json!({})
    );
    assert_eq!(*handler.ticks.lock().unwrap(), 1);
    assert!(
        handle_event(lambda_event(json!({"hello": "world"})), &handler)
            .await
            .is_err()
    );
    // A record without an id cannot be reported alone: the batch fails.
    let no_id = json!({"Records": [{"body": job(1, "j", "k"), "eventSource": "aws:sqs"}]});
    assert!(handle_event(lambda_event(no_id), &handler).await.is_err());
}

#[tokio::test]
async fn unconfigured_workers_acknowledge_jobs_but_not_unknown_versions() {
    let handler = NotConfigured::new("webhook");
    let a = job(1, "a", "webhook.deliver");
    let b = job(7, "b", "webhook.deliver");
    let event = sqs_event(&[("m1", &a), ("m2", &b)]);
    let out = handle_event(lambda_event(event), &handler).await.unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "m2"}]})
    );
}
