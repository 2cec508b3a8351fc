#!/usr/bin/env python3
"""Create Berth's AWS resources (table, bucket, queues) from infra/resources.json.

Idempotent. Works against AWS, LocalStack or moto (--endpoint-url). Prints the
environment Berth needs, one `KEY=value` per line, for the caller to export.
"""
import argparse
import json
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RESOURCES = os.path.join(HERE, "..", "infra", "resources.json")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    ap.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    ap.add_argument("--resources", default=DEFAULT_RESOURCES)
    args = ap.parse_args()

    with open(args.resources) as f:
        res = json.load(f)
    kw = {"region_name": args.region}
    if args.endpoint_url:
        kw["endpoint_url"] = args.endpoint_url
        kw.setdefault("aws_access_key_id", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
        kw.setdefault("aws_secret_access_key", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    s3cfg = Config(s3={"addressing_style": "path"})

    t = res["table"]
    ddb = boto3.client("dynamodb", **kw)
    try:
        ddb.create_table(
            TableName=t["name"],
            KeySchema=[
                {"AttributeName": t["partitionKey"], "KeyType": "HASH"},
                {"AttributeName": t["sortKey"], "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": t["partitionKey"], "AttributeType": "S"},
                {"AttributeName": t["sortKey"], "AttributeType": "S"},
            ],
            BillingMode=t["billingMode"],
        )
        ddb.get_waiter("table_exists").wait(TableName=t["name"])
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ddb.update_time_to_live(
        TableName=t["name"],
        TimeToLiveSpecification={"Enabled": True, "AttributeName": t["ttlAttribute"]},
    ) if not _ttl_enabled(ddb, t["name"]) else None

    b = res["bucket"]
    s3 = boto3.client("s3", config=s3cfg, **kw)
    try:
        if args.region == "us-east-1":
            s3.create_bucket(Bucket=b["name"])
        else:
            s3.create_bucket(Bucket=b["name"], CreateBucketConfiguration={"LocationConstraint": args.region})
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise

    sqs = boto3.client("sqs", **kw)
    env = {t["env"]: t["name"], b["env"]: b["name"]}
    for q in res["queues"]:
        dlq_url = sqs.create_queue(QueueName=q["name"] + "-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName=q["name"],
            Attributes={
                "VisibilityTimeout": str(q["visibilityTimeoutSeconds"]),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(q["maxReceiveCount"])}),
            },
        )["QueueUrl"]
        env[q["env"]] = url

    env["AWS_REGION"] = args.region
    if args.endpoint_url:
        env["AWS_ENDPOINT_URL"] = args.endpoint_url
        env["AWS_ACCESS_KEY_ID"] = kw["aws_access_key_id"]
        env["AWS_SECRET_ACCESS_KEY"] = kw["aws_secret_access_key"]
    for k, v in env.items():
        print(f"{k}={v}")
    return 0


def _ttl_enabled(ddb, table: str) -> bool:
    try:
        d = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        return d.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
    except ClientError:
        return False


if __name__ == "__main__":
    sys.exit(main())
