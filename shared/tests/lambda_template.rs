//! `template.yaml` is what `infra/gen-template` makes of `infra/`'s JSON
//! definitions, agrees with the route table the Rust side uses, and passes
//! `cfn-lint` (installed by `infra/install-tools`).
#![cfg(feature = "lambda")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use berth::lambda::routes::RouteTable;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> String {
    std::env::var("BERTH_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn run(cmd: &mut Command) -> Output {
    cmd.current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn template_yaml_is_up_to_date() {
    let out = run(Command::new(python()).args(["infra/gen-template", "--check"]));
    assert!(
        out.status.success(),
        "template.yaml is not what infra/gen-template generates:\n{}",
        text(&out)
    );
}

#[test]
fn template_routes_are_the_route_table() {
    let out = run(Command::new(python()).args(["infra/gen-template", "--routes"]));
    assert!(out.status.success(), "{}", text(&out));
    let generated: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let table = RouteTable::builtin().unwrap();
    let rust: BTreeSet<String> = table
        .routes()
        .map(|r| format!("{}\t{}", r.key(), r.function))
        .collect();
    assert_eq!(generated, rust);
}

#[test]
fn template_passes_cfn_lint() {
    // `cfn-lint` as installed by infra/install-tools, or its module.
    let out = match Command::new("cfn-lint").arg("--version").output() {
        Ok(_) => {
            run(Command::new("cfn-lint").args(["--include-checks", "I", "--", "template.yaml"]))
        }
        Err(_) => run(Command::new(python()).args([
            "-m",
            "cfnlint",
            "--include-checks",
            "I",
            "--",
            "template.yaml",
        ])),
    };
    assert!(
        out.status.success(),
        "cfn-lint found problems in template.yaml (install it with infra/install-tools):\n{}",
        text(&out)
    );
}

#[test]
fn every_function_has_a_crate_a_workspace_entry_and_a_definition() {
    let resources: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("infra/resources.json")).unwrap(),
    )
    .unwrap();
    let workspace = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let functions: Vec<&String> = resources["functions"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !k.starts_with('_'))
        .collect();
    for name in &functions {
        let manifest = std::fs::read_to_string(root().join(format!("functions/{name}/Cargo.toml")))
            .unwrap_or_else(|e| panic!("functions/{name}/Cargo.toml: {e}"));
        assert!(
            manifest.contains(&format!("name = \"berth-{name}\"")),
            "functions/{name} must be the package berth-{name}"
        );
        assert!(
            workspace.contains(&format!("\"functions/{name}\"")),
            "functions/{name} is not a workspace member"
        );
    }
    let table = RouteTable::builtin().unwrap();
    for routed in table.functions() {
        assert_eq!(
            resources["functions"][routed]["trigger"], "http",
            "routes.json sends requests to {routed}, not an HTTP function"
        );
    }
    for q in resources["queues"].as_array().unwrap() {
        let f = q["function"].as_str().unwrap();
        assert_eq!(
            resources["functions"][f]["trigger"], "queue",
            "queue {} feeds {f}, not a queue function",
            q["name"]
        );
    }
}

// ------------------------------------------------ what the template holds ----

/// The generated template, as JSON (`infra/gen-template --json`).
fn template() -> serde_json::Value {
    let out = run(Command::new(python()).args(["infra/gen-template", "--json"]));
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn resources_json() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("infra/resources.json")).unwrap())
        .unwrap()
}

/// `tokenSigningKey` / `blob` -> `TokenSigningKey` / `Blob`, as gen-template names things.
fn camel(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| p[..1].to_uppercase() + &p[1..])
        .collect()
}

fn statements<'a>(t: &'a serde_json::Value, role: &str) -> &'a Vec<serde_json::Value> {
    t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap_or_else(|| panic!("{role} has no inline policy"))
}

fn actions(statement: &serde_json::Value) -> BTreeSet<String> {
    match &statement["Action"] {
        serde_json::Value::String(a) => [a.clone()].into(),
        serde_json::Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        other => panic!("Action {other}"),
    }
}

/// The actions of the statement `sid` of `role` (empty if there is none).
fn actions_of(t: &serde_json::Value, role: &str, sid: &str) -> BTreeSet<String> {
    statements(t, role)
        .iter()
        .find(|s| s["Sid"] == sid)
        .map(actions)
        .unwrap_or_default()
}

fn env_of<'a>(t: &'a serde_json::Value, function: &str) -> &'a serde_json::Value {
    &t["Resources"][format!("{}Function", camel(function))]["Properties"]["Environment"]["Variables"]
}

/// (name, definition) of every function in resources.json.
fn functions(res: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    res["functions"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn secret_grant() -> serde_json::Value {
    serde_json::json!({
        "Sid": "UploadTokenKey",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": {"Ref": "UploadTokenKey"}
    })
}

#[test]
fn no_secret_value_is_resolved_into_the_template() {
    // A dynamic reference would land the value in the function
    // configuration, readable with GetFunctionConfiguration.
    let yaml = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    for needle in [
        "resolve:secretsmanager",
        "resolve:ssm-secure",
        "resolve:ssm:",
    ] {
        assert!(!yaml.contains(needle), "template.yaml contains {needle}");
    }
    let t = template();
    for (id, r) in t["Resources"].as_object().unwrap() {
        let vars = &r["Properties"]["Environment"]["Variables"];
        assert!(
            vars.get("BERTH_UPLOAD_SECRET").is_none(),
            "{id} gets the upload-token key itself"
        );
    }
}

#[test]
fn upload_functions_get_the_secret_arn_and_may_read_that_secret_only() {
    let t = template();
    let res = resources_json();
    for (name, spec) in functions(&res) {
        let role = format!("{}Role", camel(&name));
        let grants: Vec<&serde_json::Value> = statements(&t, &role)
            .iter()
            .filter(|s| actions(s).iter().any(|a| a.starts_with("secretsmanager:")))
            .collect();
        let env = env_of(&t, &name);
        if spec["uploads"] == true {
            // The function is built alone (sam build, cargo lambda): its own
            // crate must ask for the adapter that reads the secret by ARN.
            let manifest =
                std::fs::read_to_string(root().join(format!("functions/{name}/Cargo.toml")))
                    .unwrap();
            assert!(
                manifest.contains("\"aws-secrets\""),
                "functions/{name} reads BERTH_UPLOAD_SECRET_ARN: it needs berth-shared's aws-secrets feature"
            );
            assert_eq!(
                env["BERTH_UPLOAD_SECRET_ARN"],
                serde_json::json!({"Ref": "UploadTokenKey"}),
                "{name}"
            );
            assert_eq!(
                grants,
                [&secret_grant()],
                "{name}: GetSecretValue on that one secret"
            );
            assert!(env.get("BERTH_UPLOAD_GATEWAY_URL").is_some(), "{name}");
        } else {
            assert!(grants.is_empty(), "{name} may read secrets: {grants:?}");
            assert!(env.get("BERTH_UPLOAD_SECRET_ARN").is_none(), "{name}");
        }
    }
    assert_eq!(
        t["Resources"]["UploadTokenKey"]["Type"],
        "AWS::SecretsManager::Secret"
    );
}

#[test]
fn gateway_resources_exist_only_when_an_image_is_given() {
    let t = template();
    assert_eq!(t["Parameters"]["UploadGatewayImage"]["Default"], "");
    assert_eq!(
        t["Conditions"]["CreateUploadGateway"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "UploadGatewayImage"}, ""]}]})
    );
    let mut gateway = BTreeSet::new();
    for (id, r) in t["Resources"].as_object().unwrap() {
        let is_gateway = id.starts_with("UploadGateway")
            || r["Type"].as_str().unwrap().starts_with("AWS::ECS::");
        if is_gateway {
            assert_eq!(
                r["Condition"], "CreateUploadGateway",
                "{id} is made without a gateway image"
            );
            gateway.insert(id.as_str());
        } else {
            assert!(r.get("Condition").is_none(), "{id} has a condition");
        }
    }
    assert_eq!(
        gateway,
        BTreeSet::from([
            "UploadGateway",
            "UploadGatewayExecutionRole",
            "UploadGatewayInfrastructureRole",
            "UploadGatewayLogGroup",
            "UploadGatewayTaskRole",
        ])
    );
    assert_eq!(
        t["Resources"]["UploadGateway"]["Type"],
        "AWS::ECS::ExpressGatewayService"
    );
    assert_eq!(
        t["Outputs"]["UploadGatewayEndpoint"]["Condition"],
        "CreateUploadGateway"
    );
    // With a gateway, the functions send uploads there; without one, to
    // UploadGatewayUrl (empty: no gateway, large PATCHes get 413).
    let wiring = &env_of(&t, "blob")["BERTH_UPLOAD_GATEWAY_URL"]["Fn::If"];
    assert_eq!(wiring[0], "CreateUploadGateway");
    assert!(
        wiring[1]
            .to_string()
            .contains(r#"{"Fn::GetAtt":["UploadGateway","Endpoint"]}"#),
        "{}",
        wiring[1]
    );
    assert!(
        wiring[1]
            .to_string()
            .starts_with(r#"{"Fn::Join":["",["https://","#)
    );
    assert_eq!(wiring[2], serde_json::json!({"Ref": "UploadGatewayUrl"}));
    assert_eq!(t["Parameters"]["UploadGatewayUrl"]["Default"], "");
    assert_eq!(
        t["Rules"]["OneUploadGateway"]["Assertions"][0]["Assert"],
        serde_json::json!({"Fn::Equals": [{"Ref": "UploadGatewayUrl"}, ""]})
    );
}

#[test]
fn gateway_service_runs_the_gateway_with_the_blob_functions_rights() {
    let t = template();
    let p = &t["Resources"]["UploadGateway"]["Properties"];
    let c = &p["PrimaryContainer"];
    assert_eq!(c["Image"], serde_json::json!({"Ref": "UploadGatewayImage"}));
    let port = c["ContainerPort"].as_u64().unwrap();
    let env: serde_json::Map<String, serde_json::Value> = c["Environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["Name"].as_str().unwrap().to_owned(), e["Value"].clone()))
        .collect();
    let want = serde_json::json!({
        "BERTH_BACKEND": "aws",
        "BERTH_UPLOAD_GATEWAY": "true",
        "BERTH_ADDR": format!("0.0.0.0:{port}"),
        "BERTH_LOG_FORMAT": "json",
        "METADATA_TABLE": {"Ref": "MetadataTable"},
        "BLOB_BUCKET": {"Ref": "BlobBucket"},
        "BERTH_PUBLIC_URL": {"Fn::If": ["HasPublicUrl", {"Ref": "PublicUrl"}, {"Fn::GetAtt": ["HttpApi", "ApiEndpoint"]}]},
        "BERTH_UPLOAD_SECRET_ARN": {"Ref": "UploadTokenKey"},
    });
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(env.get(k), Some(v), "gateway env {k}");
    }
    assert!(env.get("BERTH_UPLOAD_SECRET").is_none());
    assert_eq!(p["HealthCheckPath"], "/v2/");
    assert_eq!(
        p["TaskRoleArn"],
        serde_json::json!({"Fn::GetAtt": ["UploadGatewayTaskRole", "Arn"]})
    );
    // Least privilege: the blob function's table and bucket actions, the
    // one secret, nothing else.
    let sids: BTreeSet<&str> = statements(&t, "UploadGatewayTaskRole")
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert_eq!(
        sids,
        BTreeSet::from(["Metadata", "Blobs", "BlobListing", "UploadTokenKey"])
    );
    for sid in ["Metadata", "Blobs", "BlobListing"] {
        assert_eq!(
            actions_of(&t, "UploadGatewayTaskRole", sid),
            actions_of(&t, "BlobRole", sid),
            "{sid}"
        );
    }
    assert!(statements(&t, "UploadGatewayTaskRole").contains(&secret_grant()));
    let trust = &t["Resources"]["UploadGatewayTaskRole"]["Properties"]["AssumeRolePolicyDocument"]
        ["Statement"][0]["Principal"]["Service"];
    assert_eq!(trust, "ecs-tasks.amazonaws.com");
}

#[test]
fn lifecycle_rules_outlive_every_upload_session() {
    // Sessions live at most 7 days (renewed by each PATCH); the sweeper in
    // gc cleans up after them, the lifecycle rules only behind it.
    let t = template();
    let rules = t["Resources"]["BlobBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_array()
        .unwrap();
    let abort = rules
        .iter()
        .find(|r| r.get("AbortIncompleteMultipartUpload").is_some())
        .unwrap();
    assert_eq!(
        abort["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"],
        8
    );
    assert!(abort.get("Prefix").is_none(), "every multipart upload");
    let staged = rules
        .iter()
        .find(|r| r.get("ExpirationInDays").is_some())
        .unwrap();
    assert_eq!(staged["Prefix"], "uploads/");
    assert_eq!(staged["ExpirationInDays"], 8);
    let res = resources_json();
    let max_age = res["uploads"]["maxSessionAgeDays"].as_u64().unwrap();
    assert_eq!(max_age, 7);
    assert!(
        res["bucket"]["abortIncompleteMultipartUploadDays"]
            .as_u64()
            .unwrap()
            > max_age
    );
    assert!(res["bucket"]["expireStagedAfterDays"].as_u64().unwrap() > max_age);
}

#[test]
fn default_route_goes_to_a_function_that_serves_and_cleans_up_uploads() {
    let t = template();
    assert_eq!(
        t["Resources"]["RouteDefault"]["Properties"]["Target"],
        serde_json::json!({"Fn::Sub": "integrations/${BlobIntegration}"})
    );
    let blobs = actions_of(&t, "BlobRole", "Blobs");
    for a in [
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    ] {
        assert!(blobs.contains(a), "$default's function lacks {a}");
    }
    let env = env_of(&t, "blob");
    assert!(env.get("BERTH_UPLOAD_GATEWAY_URL").is_some());
    assert!(env.get("BERTH_UPLOAD_SECRET_ARN").is_some());
    // Names deeper than the enumerated routes include manifest requests:
    // blob may do everything manifest may.
    for sid in ["Metadata", "Blobs", "BlobListing"] {
        let (m, b) = (
            actions_of(&t, "ManifestRole", sid),
            actions_of(&t, "BlobRole", sid),
        );
        assert!(
            m.is_subset(&b),
            "{sid}: manifest {m:?} not within blob {b:?}"
        );
    }
}

#[test]
fn gc_sweeps_upload_sessions_hourly() {
    let t = template();
    assert_eq!(
        t["Parameters"]["GcScheduleExpression"]["Default"],
        "rate(1 hour)"
    );
    let table: BTreeSet<String> = [
        "GetItem",
        "Query",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "ConditionCheckItem",
        "BatchGetItem",
    ]
    .iter()
    .map(|a| format!("dynamodb:{a}"))
    .collect();
    assert_eq!(actions_of(&t, "GcRole", "Metadata"), table);
    let bucket: BTreeSet<String> = [
        "GetObject",
        "PutObject",
        "DeleteObject",
        "AbortMultipartUpload",
        "ListMultipartUploadParts",
    ]
    .iter()
    .map(|a| format!("s3:{a}"))
    .collect();
    assert_eq!(actions_of(&t, "GcRole", "Blobs"), bucket);
    assert_eq!(
        actions_of(&t, "GcRole", "BlobListing"),
        BTreeSet::from([
            "s3:ListBucket".to_owned(),
            "s3:ListBucketMultipartUploads".to_owned()
        ])
    );
    let env = env_of(&t, "gc");
    assert_eq!(
        env["METADATA_TABLE"],
        serde_json::json!({"Ref": "MetadataTable"})
    );
    assert_eq!(env["BLOB_BUCKET"], serde_json::json!({"Ref": "BlobBucket"}));
}
