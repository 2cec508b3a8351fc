#!/usr/bin/env python3
"""Create Berth's AWS resources (table, bucket, queues) from infra/resources.json.

Idempotent: run it again and it converges (existing resources are kept and
their settings re-applied). Works against LocalStack, moto or AWS
(--endpoint-url). Prints the environment Berth needs, one `KEY=value` per
line (or `export KEY='value'` with --export), for the caller to export:

    eval "$(python3 localstack/create_resources.py --endpoint-url http://127.0.0.1:4566 --export)"

The same definitions make template.yaml (infra/gen-template): what tests
and developers run against is what AWS gets, lifecycle rules included
(incomplete multipart uploads and staged chunks go after more days than an
upload session can live). --upload-secret also creates the upload-token key
as a Secrets Manager secret, as the stack does, and prints its ARN
(BERTH_UPLOAD_SECRET_ARN) instead of the key. --identity-secrets likewise
creates the secrets of resources.json "secrets", as the stack does: the token
signing seed (BERTH_TOKEN_KEY_SECRET_ARN, what the `token` function reads at
cold start) and the admin's initial password (BERTH_ADMIN_PASSWORD_SECRET_ARN,
read by `token`, `admin` and `berth serve`), and prints their ARNs; read the
password with

    aws --endpoint-url http://127.0.0.1:4566 secretsmanager get-secret-value \
        --secret-id berth-admin-password --query SecretString --output text

Without them, local processes take the values directly: BERTH_TOKEN_KEYS (a
seed of >= 32 characters, or {"seeds":["<new>","<old>"]}; `berth serve`
otherwise keeps its seed in <data dir>/token-keys.json) and
BERTH_ADMIN_PASSWORD (>= 8 characters with an uppercase letter, a lowercase
letter and a digit; unset: generated and shown once at first start). Needs
boto3 (moto[server] brings it).
"""
import argparse
import json
import os
import secrets
import shlex
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RESOURCES = os.path.join(HERE, "..", "infra", "resources.json")
# Dummy credentials: emulators accept any, and they keep a developer's real
# credentials away from the emulator.
DUMMY_KEY_ID = "testing"
DUMMY_SECRET = "testing"
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


def warn(message):
    print(f"create_resources: {message}", file=sys.stderr)


def code(e):
    return e.response.get("Error", {}).get("Code", "")


def optional(what, call):
    """Applies a setting the emulator may not implement: warn, go on."""
    try:
        call()
    except ClientError as e:
        warn(f"{what} not applied ({code(e)}): {e}")


def create_table(ddb, t):
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
    except ClientError as e:
        if code(e) != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=t["name"], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ttl = ddb.describe_time_to_live(TableName=t["name"]).get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        ddb.update_time_to_live(
            TableName=t["name"],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": t["ttlAttribute"]},
        )
    optional(
        "point-in-time recovery",
        lambda: ddb.update_continuous_backups(
            TableName=t["name"],
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        ),
    )


def create_bucket(s3, b, region):
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=b["name"])
        else:
            s3.create_bucket(Bucket=b["name"], CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as e:
        if code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    optional(
        "public access block",
        lambda: s3.put_public_access_block(
            Bucket=b["name"],
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        ),
    )
    optional(
        "default encryption",
        lambda: s3.put_bucket_encryption(
            Bucket=b["name"],
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        ),
    )
    optional(
        "lifecycle rules",
        lambda: s3.put_bucket_lifecycle_configuration(
            Bucket=b["name"],
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "abort-incomplete-multipart-uploads",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "AbortIncompleteMultipartUpload": {
                            "DaysAfterInitiation": b["abortIncompleteMultipartUploadDays"]
                        },
                    },
                    {
                        "ID": "expire-staged-upload-chunks",
                        "Status": "Enabled",
                        "Filter": {"Prefix": b["stagedPrefix"]},
                        "Expiration": {"Days": b["expireStagedAfterDays"]},
                    },
                ]
            },
        ),
    )


def ensure_queue(sqs, name, attributes):
    """Creates the queue, or brings an existing one to `attributes`; returns its URL."""
    try:
        return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except ClientError as e:
        if code(e) not in ("QueueAlreadyExists", "QueueNameExists", "AWS.SimpleQueueService.QueueNameExists"):
            raise
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def create_queues(sqs, queues):
    env = {}
    for q in queues:
        dlq_url = ensure_queue(sqs, q["name"] + "-dlq", {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(q["maxReceiveCount"])}
        url = ensure_queue(
            sqs,
            q["name"],
            {
                "VisibilityTimeout": str(q["visibilityTimeoutSeconds"]),
                "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
                "RedrivePolicy": json.dumps(redrive),
            },
        )
        env[q["env"]] = url
        env[q["env"].replace("_QUEUE_URL", "_DLQ_URL")] = dlq_url
    return env


def create_upload_secret(sm, name, length):
    """The upload-token key as a secret (kept if it exists); returns its ARN."""
    try:
        return sm.create_secret(
            Name=name,
            Description="Berth: HMAC key signing upload-session tokens",
            SecretString=secrets.token_hex(length // 2),
        )["ARN"]
    except ClientError as e:
        if code(e) != "ResourceExistsException":
            raise
    return sm.describe_secret(SecretId=name)["ARN"]


# Names of the identity secrets here (the stack generates its own names).
IDENTITY_SECRET_NAMES = {"tokenSigningKey": "berth-token-signing-key", "adminPassword": "berth-admin-password"}
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def generate_secret(spec):
    """What GenerateSecretString makes in the stack: letters and digits
    (ExcludePunctuation), all three kinds when requireEachIncludedType."""
    while True:
        value = "".join(secrets.choice(ALNUM) for _ in range(spec["length"]))
        kinds = (str.isupper, str.islower, str.isdigit)
        if not spec.get("requireEachIncludedType") or all(any(k(c) for c in value) for k in kinds):
            return value


def create_identity_secrets(sm, defs):
    """The token signing seed and the admin password (kept if they exist); returns {env: ARN}."""
    env = {}
    for key, spec in defs.items():
        if key.startswith("_"):
            continue
        name = IDENTITY_SECRET_NAMES.get(key, "berth-" + key)
        try:
            arn = sm.create_secret(Name=name, Description=spec["description"], SecretString=generate_secret(spec))["ARN"]
        except ClientError as e:
            if code(e) != "ResourceExistsException":
                raise
            arn = sm.describe_secret(SecretId=name)["ARN"]
        env[spec["env"]] = arn
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="the emulator (default: $AWS_ENDPOINT_URL; none: AWS itself)")
    ap.add_argument("--region", default=os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")))
    ap.add_argument("--resources", default=DEFAULT_RESOURCES, help="the definitions (default: infra/resources.json)")
    ap.add_argument("--export", action="store_true", help="print `export KEY='value'` lines for eval")
    ap.add_argument(
        "--upload-secret",
        metavar="NAME",
        nargs="?",
        const="berth-upload-token-key",
        help="also create the upload-token key as a Secrets Manager secret (default name berth-upload-token-key) and print BERTH_UPLOAD_SECRET_ARN",
    )
    ap.add_argument(
        "--identity-secrets",
        action="store_true",
        help="also create the token signing seed and the admin password as Secrets Manager secrets "
        "(berth-token-signing-key, berth-admin-password) and print BERTH_TOKEN_KEY_SECRET_ARN and BERTH_ADMIN_PASSWORD_SECRET_ARN",
    )
    args = ap.parse_args()

    with open(args.resources) as f:
        res = json.load(f)
    kw = {"region_name": args.region}
    if args.endpoint_url:
        kw["endpoint_url"] = args.endpoint_url
        kw["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", DUMMY_KEY_ID)
        kw["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
    # Emulators serve buckets by path, not by virtual host.
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kw)

    t, b = res["table"], res["bucket"]
    create_table(boto3.client("dynamodb", **kw), t)
    create_bucket(s3, b, args.region)
    env = {t["env"]: t["name"], b["env"]: b["name"]}
    env.update(create_queues(boto3.client("sqs", **kw), res["queues"]))
    if args.upload_secret:
        up = res["uploads"]
        env[up["secretArnEnv"]] = create_upload_secret(
            boto3.client("secretsmanager", **kw), args.upload_secret, up["secretLength"]
        )
    if args.identity_secrets:
        env.update(create_identity_secrets(boto3.client("secretsmanager", **kw), res["secrets"]))

    env["AWS_REGION"] = args.region
    env["AWS_DEFAULT_REGION"] = args.region
    if args.endpoint_url:
        env["AWS_ENDPOINT_URL"] = args.endpoint_url
        env["AWS_ACCESS_KEY_ID"] = kw["aws_access_key_id"]
        env["AWS_SECRET_ACCESS_KEY"] = kw["aws_secret_access_key"]
    for k, v in env.items():
        print(f"export {k}={shlex.quote(v)}" if args.export else f"{k}={v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
