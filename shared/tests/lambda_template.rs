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

/// `adminPassword` / `blob` -> `AdminPassword` / `Blob`, as gen-template names things.
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
        // The variables that carry a value itself (local use only): the
        // stack passes ARNs, each function reads its secrets.
        for direct in [
            "BERTH_UPLOAD_SECRET",
            "BERTH_TOKEN_KEYS",
            "BERTH_ADMIN_PASSWORD",
        ] {
            assert!(vars.get(direct).is_none(), "{id} gets {direct} itself");
        }
    }
    // The old model (an SSM parameter the operator created) is gone: no
    // parameter names a secret, no role reads Parameter Store.
    for (name, _) in t["Parameters"].as_object().unwrap() {
        assert!(
            !name.ends_with("ParameterName")
                && !name.contains("Signing")
                && !name.contains("Password"),
            "parameter {name} names a secret"
        );
    }
    for (id, r) in t["Resources"].as_object().unwrap() {
        if r["Type"] != "AWS::IAM::Role" || r["Properties"].get("Policies").is_none() {
            continue;
        }
        for st in statements(&t, id) {
            assert!(
                !actions(st).iter().any(|a| a.starts_with("ssm:")),
                "{id} reads SSM: {st}"
            );
        }
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
        // Every secret grant is one the definition asks for: the upload
        // key (`uploads`) and the listed `secrets`, each by its own ARN.
        let mut want: BTreeSet<String> = spec["secrets"]
            .as_array()
            .map(|a| a.iter().map(|k| camel(k.as_str().unwrap())).collect())
            .unwrap_or_default();
        if spec["uploads"] == true {
            want.insert("UploadTokenKey".to_owned());
        }
        let granted: BTreeSet<String> = grants
            .iter()
            .map(|s| {
                assert_eq!(s["Sid"], s["Resource"]["Ref"], "{name}: {s}");
                s["Resource"]["Ref"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(granted, want, "{name}: the secrets it may read");
        assert_eq!(grants.len(), want.len(), "{name}: one statement per secret");
        // The identity secrets are checked below; here, the upload key.
        let grants: Vec<&serde_json::Value> = grants
            .into_iter()
            .filter(|s| s["Resource"] == serde_json::json!({"Ref": "UploadTokenKey"}))
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

/// The roles (every `AWS::IAM::Role`, the gateway's too) whose policy
/// mentions the secret `secret` (a resource's logical id), and checks that
/// no statement reads secrets by wildcard.
fn roles_reading(t: &serde_json::Value, secret: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (id, r) in t["Resources"].as_object().unwrap() {
        if r["Type"] != "AWS::IAM::Role" || r["Properties"].get("Policies").is_none() {
            continue;
        }
        for st in statements(t, id) {
            let reads = actions(st).iter().any(|a| a.starts_with("secretsmanager:"));
            if reads {
                assert_eq!(
                    actions(st),
                    BTreeSet::from(["secretsmanager:GetSecretValue".to_owned()]),
                    "{id}: {st}"
                );
                assert!(
                    st["Resource"].get("Ref").is_some(),
                    "{id} reads secrets beyond one it names: {st}"
                );
            }
            if st.to_string().contains(&format!(r#"{{"Ref":"{secret}"}}"#)) {
                assert!(
                    reads,
                    "{id} names {secret} in a statement that does not read it: {st}"
                );
                assert_eq!(st["Resource"], serde_json::json!({"Ref": secret}), "{id}");
                out.insert(id.clone());
            }
        }
    }
    out
}

/// The functions whose environment mentions `secret`, by variable.
fn functions_told(t: &serde_json::Value, secret: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (id, r) in t["Resources"].as_object().unwrap() {
        let Some(vars) = r["Properties"]["Environment"]["Variables"].as_object() else {
            continue;
        };
        for (k, v) in vars {
            if v.to_string().contains(&format!(r#""{secret}""#)) {
                out.insert((id.clone(), k.clone()));
            }
        }
    }
    out
}

#[test]
fn only_the_token_function_may_read_the_signing_secret() {
    let t = template();
    let secret = &t["Resources"]["TokenSigningKey"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    // Generated in the stack: the operator creates nothing.
    let generate = &secret["Properties"]["GenerateSecretString"];
    assert!(
        generate["PasswordLength"].as_u64().unwrap() >= 32,
        "a seed is >= 32 characters"
    );
    assert_eq!(
        generate["ExcludePunctuation"], true,
        "a bare seed never looks like JSON"
    );
    assert!(secret["Properties"].get("SecretString").is_none());
    assert_eq!(
        roles_reading(&t, "TokenSigningKey"),
        BTreeSet::from(["TokenRole".to_owned()]),
        "the private key never leaves the token function"
    );
    assert_eq!(
        functions_told(&t, "TokenSigningKey"),
        BTreeSet::from([(
            "TokenFunction".to_owned(),
            "BERTH_TOKEN_KEY_SECRET_ARN".to_owned()
        )])
    );
    // The gateway is told nothing about it either (its env is a list).
    let gateway = t["Resources"]["UploadGateway"].to_string();
    assert!(!gateway.contains("TokenSigningKey") && !gateway.contains("AdminPassword"));
    // The registry functions verify with the published public keys: they
    // read the KEYS item with GetItem, and need no secret for it.
    for f in ["manifest", "blob"] {
        let env = env_of(&t, f);
        assert!(env.get("BERTH_TOKEN_KEY_SECRET_ARN").is_none(), "{f}");
        assert!(
            actions_of(&t, &format!("{}Role", camel(f)), "Metadata").contains("dynamodb:GetItem"),
            "{f} reads the published keys"
        );
    }
    assert_eq!(
        t["Outputs"]["TokenSigningKeySecretArn"]["Value"],
        serde_json::json!({"Ref": "TokenSigningKey"})
    );
}

#[test]
fn token_and_admin_read_the_admin_password_secret_and_nothing_else_does() {
    let t = template();
    let secret = &t["Resources"]["AdminPassword"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    assert!(secret["Properties"].get("SecretString").is_none());
    // The password rules: >= 8 characters, an uppercase letter, a lowercase
    // letter and a digit; no punctuation, so it is easy to type.
    let generate = &secret["Properties"]["GenerateSecretString"];
    assert!(generate["PasswordLength"].as_u64().unwrap() >= 8);
    assert_eq!(generate["RequireEachIncludedType"], true);
    assert_eq!(generate["ExcludePunctuation"], true);
    for excluded in ["ExcludeUppercase", "ExcludeLowercase", "ExcludeNumbers"] {
        assert!(generate.get(excluded).is_none(), "{excluded}");
    }
    assert_eq!(
        roles_reading(&t, "AdminPassword"),
        BTreeSet::from(["AdminRole".to_owned(), "TokenRole".to_owned()])
    );
    assert_eq!(
        functions_told(&t, "AdminPassword"),
        BTreeSet::from([
            (
                "AdminFunction".to_owned(),
                "BERTH_ADMIN_PASSWORD_SECRET_ARN".to_owned()
            ),
            (
                "TokenFunction".to_owned(),
                "BERTH_ADMIN_PASSWORD_SECRET_ARN".to_owned()
            ),
        ])
    );
    // The operator finds it by its ARN; the value is never an output.
    let out = &t["Outputs"]["AdminPasswordSecretArn"];
    assert_eq!(out["Value"], serde_json::json!({"Ref": "AdminPassword"}));
    assert!(
        out["Description"]
            .as_str()
            .unwrap()
            .contains("get-secret-value")
    );
    // Both functions are built alone (sam build): their crates must ask
    // for the adapter that reads a secret by ARN.
    for f in ["token", "admin"] {
        let manifest =
            std::fs::read_to_string(root().join(format!("functions/{f}/Cargo.toml"))).unwrap();
        assert!(
            manifest.contains("\"aws-secrets\""),
            "functions/{f} reads its secrets by ARN: it needs berth-shared's aws-secrets feature"
        );
    }
}

#[test]
fn identity_functions_hold_the_directory_and_nothing_of_the_blobs() {
    let t = template();
    // Users, projects, members, robots, sessions, audit entries, the
    // published keys: items read and written one by one, in queries and in
    // transactions (authorised by their item actions: ConditionCheckItem).
    let directory: BTreeSet<String> = [
        "GetItem",
        "BatchGetItem",
        "Query",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "ConditionCheckItem",
    ]
    .iter()
    .map(|a| format!("dynamodb:{a}"))
    .collect();
    for f in ["token", "admin"] {
        let role = format!("{}Role", camel(f));
        assert_eq!(actions_of(&t, &role, "Metadata"), directory, "{f}");
        let sids: BTreeSet<&str> = statements(&t, &role)
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert!(
            !sids.contains("Blobs") && !sids.contains("BlobListing"),
            "{f} may touch the bucket: {sids:?}"
        );
        let env = env_of(&t, f);
        assert_eq!(
            env["METADATA_TABLE"],
            serde_json::json!({"Ref": "MetadataTable"})
        );
        // The AWS configuration needs the bucket's name to start.
        assert_eq!(env["BLOB_BUCKET"], serde_json::json!({"Ref": "BlobBucket"}));
        // BERTH_TOKEN_SERVICE defaults alike everywhere: not set here.
        assert!(env.get("BERTH_TOKEN_SERVICE").is_none(), "{f}");
    }
    for (id, r) in t["Resources"].as_object().unwrap() {
        let vars = &r["Properties"]["Environment"]["Variables"];
        assert!(vars.get("BERTH_TOKEN_SERVICE").is_none(), "{id}");
    }
    // Audit entries from the registry functions are PutItems.
    for role in ["ManifestRole", "BlobRole"] {
        assert!(actions_of(&t, role, "Metadata").contains("dynamodb:PutItem"));
    }
}

#[test]
fn portal_login_and_logout_go_to_the_admin_function() {
    let t = template();
    let admin = serde_json::json!({"Fn::Sub": "integrations/${AdminIntegration}"});
    for key in ["POST /c/login", "GET /c/log_out", "ANY /api/v2.0/{proxy+}"] {
        let routes: Vec<&serde_json::Value> = t["Resources"]
            .as_object()
            .unwrap()
            .values()
            .filter(|r| r["Type"] == "AWS::ApiGatewayV2::Route")
            .filter(|r| r["Properties"]["RouteKey"] == key)
            .collect();
        assert_eq!(routes.len(), 1, "{key}");
        assert_eq!(routes[0]["Properties"]["Target"], admin, "{key}");
    }
    // The Rust route table (berth stack, the function routers) agrees.
    let table = RouteTable::builtin().unwrap();
    for key in ["POST /c/login", "GET /c/log_out"] {
        let route = table
            .routes()
            .find(|r| r.key() == key)
            .unwrap_or_else(|| panic!("no route {key}"));
        assert_eq!(route.function, "admin", "{key}");
    }
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
        "BERTH_PUBLIC_URL": {"Fn::If": ["HasPublicUrl", {"Ref": "PublicUrl"}, {"Fn::Sub": "https://${PortalDistribution.DomainName}"}]},
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

/// The gc worker ticks every five minutes (due scheduled collections and
/// retention runs, stalled tasks, expired uploads) and, like the admin
/// function that starts runs, may send to its own queue to fan out.
#[test]
fn gc_ticks_often_and_fans_out_over_its_queue() {
    let t = template();
    assert_eq!(
        t["Parameters"]["GcScheduleExpression"]["Default"],
        "rate(5 minutes)"
    );
    for f in ["gc", "admin"] {
        assert_eq!(
            env_of(&t, f)["GC_QUEUE_URL"],
            serde_json::json!({"Ref": "GcQueue"}),
            "{f}"
        );
    }
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

// ------------------------------------------------- the portal on AWS ----

const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const ALL_VIEWER_EXCEPT_HOST_HEADER: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

fn distribution(t: &serde_json::Value) -> &serde_json::Value {
    let d = &t["Resources"]["PortalDistribution"];
    assert_eq!(d["Type"], "AWS::CloudFront::Distribution");
    &d["Properties"]["DistributionConfig"]
}

fn origin<'a>(t: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    distribution(t)["Origins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["Id"] == id)
        .unwrap_or_else(|| panic!("no origin {id}"))
}

/// Whether a CloudFront path pattern (`*`: any characters) matches `path`.
fn glob(pattern: &str, path: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == path,
        Some((head, tail)) => {
            path.starts_with(head) && (head.len()..=path.len()).any(|i| glob(tail, &path[i..]))
        }
    }
}

/// The logical ids a template fragment refers to (`Ref`, `Fn::GetAtt`, `${X}` in `Fn::Sub`).
fn references(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(r)) = m.get("Ref") {
                out.insert(r.clone());
            }
            if let Some(serde_json::Value::Array(a)) = m.get("Fn::GetAtt") {
                out.insert(a[0].as_str().unwrap().to_owned());
            }
            if let Some(serde_json::Value::String(s)) = m.get("Fn::Sub") {
                for piece in s.split("${").skip(1) {
                    let name = piece.split('}').next().unwrap();
                    out.insert(name.split('.').next().unwrap().to_owned());
                }
            }
            m.values().for_each(|v| references(v, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

#[test]
fn portal_bucket_is_private_and_read_by_the_distribution_only() {
    let t = template();
    let bucket = &t["Resources"]["PortalBucket"];
    assert_eq!(bucket["Type"], "AWS::S3::Bucket");
    let p = &bucket["Properties"];
    for k in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(p["PublicAccessBlockConfiguration"][k], true, "{k}");
    }
    assert_eq!(
        p["OwnershipControls"]["Rules"],
        serde_json::json!([{"ObjectOwnership": "BucketOwnerEnforced"}])
    );
    assert_eq!(
        p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
            ["SSEAlgorithm"],
        "AES256"
    );
    assert!(
        p.get("WebsiteConfiguration").is_none(),
        "a website endpoint is public"
    );

    let policy = &t["Resources"]["PortalBucketPolicy"]["Properties"];
    assert_eq!(policy["Bucket"], serde_json::json!({"Ref": "PortalBucket"}));
    let st = policy["PolicyDocument"]["Statement"].as_array().unwrap();
    let tls = st.iter().find(|s| s["Sid"] == "TlsOnly").unwrap();
    assert_eq!(tls["Effect"], "Deny");
    assert_eq!(
        tls["Condition"],
        serde_json::json!({"Bool": {"aws:SecureTransport": "false"}})
    );
    // Every Allow names CloudFront, for this distribution only, to read.
    let source = serde_json::json!({"StringEquals": {"AWS:SourceArn": {"Fn::Sub":
        "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${PortalDistribution}"}}});
    let allows: Vec<&serde_json::Value> = st.iter().filter(|s| s["Effect"] == "Allow").collect();
    assert!(!allows.is_empty());
    let mut granted = BTreeSet::new();
    for s in &allows {
        assert_eq!(
            s["Principal"],
            serde_json::json!({"Service": "cloudfront.amazonaws.com"}),
            "{s}"
        );
        assert_eq!(s["Condition"], source, "{s}");
        granted.extend(actions(s));
    }
    assert!(granted.contains("s3:GetObject"));
    assert!(
        granted
            .iter()
            .all(|a| a == "s3:GetObject" || a == "s3:ListBucket"),
        "CloudFront may only read: {granted:?}"
    );

    let oac = &t["Resources"]["PortalOriginAccessControl"];
    assert_eq!(oac["Type"], "AWS::CloudFront::OriginAccessControl");
    let c = &oac["Properties"]["OriginAccessControlConfig"];
    assert_eq!(c["OriginAccessControlOriginType"], "s3");
    assert_eq!(c["SigningProtocol"], "sigv4");
    assert_eq!(c["SigningBehavior"], "always");
    let o = origin(&t, "portal");
    assert_eq!(
        o["DomainName"],
        serde_json::json!({"Fn::GetAtt": ["PortalBucket", "RegionalDomainName"]})
    );
    assert_eq!(
        o["OriginAccessControlId"],
        serde_json::json!({"Fn::GetAtt": ["PortalOriginAccessControl", "Id"]})
    );
    assert_eq!(o["S3OriginConfig"]["OriginAccessIdentity"], "");

    for (name, value) in [
        (
            "PortalBucketName",
            serde_json::json!({"Ref": "PortalBucket"}),
        ),
        (
            "PortalDistributionId",
            serde_json::json!({"Ref": "PortalDistribution"}),
        ),
        (
            "PortalUrl",
            serde_json::json!({"Fn::Sub": "https://${PortalDistribution.DomainName}"}),
        ),
    ] {
        assert_eq!(t["Outputs"][name]["Value"], value, "output {name}");
    }
}

#[test]
fn api_paths_go_to_the_http_api_uncached_with_every_method() {
    let t = template();
    let d = distribution(&t);
    let api = origin(&t, "api");
    assert_eq!(
        api["DomainName"],
        serde_json::json!({"Fn::Select": [1, {"Fn::Split": ["://", {"Fn::GetAtt": ["HttpApi", "ApiEndpoint"]}]}]})
    );
    assert_eq!(
        api["CustomOriginConfig"]["OriginProtocolPolicy"],
        "https-only"
    );
    // API Gateway gives up after 29 s; CloudFront must wait at least that.
    assert!(
        api["CustomOriginConfig"]["OriginReadTimeout"]
            .as_u64()
            .unwrap()
            >= 29
    );

    let behaviours = d["CacheBehaviors"].as_array().unwrap();
    let patterns: Vec<&str> = behaviours
        .iter()
        .map(|b| b["PathPattern"].as_str().unwrap())
        .collect();
    for p in ["/v2", "/v2/*", "/service/*", "/api/*", "/c/*"] {
        assert!(patterns.contains(&p), "no behaviour for {p}: {patterns:?}");
    }
    let every: BTreeSet<&str> = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"].into();
    for b in behaviours {
        let p = &b["PathPattern"];
        assert_eq!(b["TargetOriginId"], "api", "{p}");
        assert_eq!(b["CachePolicyId"], CACHING_DISABLED, "{p}");
        assert_eq!(
            b["OriginRequestPolicyId"], ALL_VIEWER_EXCEPT_HOST_HEADER,
            "{p}"
        );
        let methods: BTreeSet<&str> = b["AllowedMethods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        assert_eq!(methods, every, "{p}");
        assert_ne!(b["ViewerProtocolPolicy"], "allow-all", "{p}");
        // Manifests arrive byte for byte; no SPA rewriting of API paths.
        assert_eq!(b["Compress"], false, "{p}");
        assert!(b.get("FunctionAssociations").is_none(), "{p}");
    }
    // Every route of the HTTP API is reachable through the distribution.
    let out = run(Command::new(python()).args(["infra/gen-template", "--routes"]));
    assert!(out.status.success(), "{}", text(&out));
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let path = line.split_once(' ').unwrap().1.split('\t').next().unwrap();
        assert!(
            patterns.iter().any(|p| glob(p, path)),
            "{path} reaches the portal bucket, not the API"
        );
    }
    for portal_path in ["/", "/harbor/projects/3", "/assets/index-1a2b.js", "/v2x"] {
        assert!(
            !patterns.iter().any(|p| glob(p, portal_path)),
            "{portal_path} goes to the API"
        );
    }
    // An API 404 must stay a 404: no error page rewriting.
    assert!(d.get("CustomErrorResponses").is_none());
}

#[test]
fn portal_default_behaviour_serves_the_bucket_through_the_spa_function() {
    let t = template();
    let d = distribution(&t);
    assert_eq!(d["HttpVersion"], "http2and3");
    assert_eq!(d["DefaultRootObject"], "index.html");
    assert_eq!(
        d["PriceClass"],
        serde_json::json!({"Ref": "PortalPriceClass"})
    );
    assert_eq!(
        t["Parameters"]["PortalPriceClass"]["Default"],
        "PriceClass_100"
    );
    let b = &d["DefaultCacheBehavior"];
    assert_eq!(b["TargetOriginId"], "portal");
    assert_eq!(b["ViewerProtocolPolicy"], "redirect-to-https");
    assert_eq!(b["CachePolicyId"], CACHING_OPTIMIZED);
    assert_eq!(
        b["FunctionAssociations"],
        serde_json::json!([{
            "EventType": "viewer-request",
            "FunctionARN": {"Fn::GetAtt": ["PortalViewerRequestFunction", "FunctionARN"]}
        }])
    );
    let f = &t["Resources"]["PortalViewerRequestFunction"];
    assert_eq!(f["Type"], "AWS::CloudFront::Function");
    assert_eq!(
        f["Properties"]["FunctionConfig"]["Runtime"],
        "cloudfront-js-2.0"
    );
    assert_eq!(f["Properties"]["AutoPublish"], true);

    // The security headers berth serve sends with the portal.
    assert_eq!(
        b["ResponseHeadersPolicyId"],
        serde_json::json!({"Ref": "PortalResponseHeadersPolicy"})
    );
    let h = &t["Resources"]["PortalResponseHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
        ["SecurityHeadersConfig"];
    assert_eq!(
        h["ContentSecurityPolicy"]["ContentSecurityPolicy"],
        berth::http::portal::CONTENT_SECURITY_POLICY
    );
    assert_eq!(h["FrameOptions"]["FrameOption"], "DENY");
    assert_eq!(h["ReferrerPolicy"]["ReferrerPolicy"], "same-origin");
    assert_eq!(h["ContentTypeOptions"]["Override"], true);
    assert!(
        h["StrictTransportSecurity"]["AccessControlMaxAgeSec"]
            .as_u64()
            .unwrap()
            >= 31_536_000
    );
}

#[test]
fn portal_function_rewrites_app_routes_to_index_html_only() {
    let t = template();
    let code = t["Resources"]["PortalViewerRequestFunction"]["Properties"]["FunctionCode"]
        .as_str()
        .unwrap();
    let cases = [
        ("/", "/index.html"),
        ("/harbor", "/index.html"),
        ("/harbor/projects/3", "/index.html"),
        (
            "/harbor/projects/3/repositories/library%2Fnginx",
            "/index.html",
        ),
        // A repository name may contain dots: still a route.
        ("/harbor/projects/3/repositories/my.app", "/index.html"),
        (
            "/harbor/projects/3/repositories/a%2Fb/artifacts-tab/artifacts/sha256:0a1b",
            "/index.html",
        ),
        ("/some/route", "/index.html"),
        ("/index.html", "/index.html"),
        ("/assets/x.js", "/assets/x.js"),
        ("/assets/index-1a2b3c.css", "/assets/index-1a2b3c.css"),
        ("/assets/gone", "/assets/gone"),
        ("/favicon.svg", "/favicon.svg"),
    ];
    // CloudFront runs it; here node does (the function uses nothing but ES5).
    let script = r#"
        const code = require('fs').readFileSync(0, 'utf8');
        const handler = new Function(code + '\nreturn handler;')();
        for (const uri of process.argv.slice(1)) {
            const out = handler({ request: { uri, method: 'GET', headers: {} } });
            console.log(out.uri);
        }
    "#;
    let mut cmd = Command::new("node");
    cmd.arg("-e")
        .arg(script)
        .args(cases.iter().map(|(uri, _)| uri))
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: node not found ({e}); the portal build needs it anyway");
            return;
        }
    };
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(code.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let want: Vec<String> = cases.iter().map(|(_, w)| (*w).to_owned()).collect();
    for ((uri, _), (g, w)) in cases.iter().zip(got.iter().zip(&want)) {
        assert_eq!(g, w, "{uri}");
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn http_functions_name_the_distribution_as_the_public_url() {
    // The token realm, absolute Locations, systeminfo's registry_url and the
    // session cookie's Secure flag all follow BERTH_PUBLIC_URL; behind
    // CloudFront the Host the API sees is its own, so it must be set.
    let t = template();
    let want = serde_json::json!({"Fn::If": ["HasPublicUrl", {"Ref": "PublicUrl"},
        {"Fn::Sub": "https://${PortalDistribution.DomainName}"}]});
    for (name, spec) in functions(&resources_json()) {
        if spec["trigger"] == "http" {
            assert_eq!(env_of(&t, &name)["BERTH_PUBLIC_URL"], want, "{name}");
        }
    }
    // No cycle: the distribution needs the API itself, never a function, an
    // integration or a route (which need the functions).
    let mut refs = BTreeSet::new();
    references(&t["Resources"]["PortalDistribution"], &mut refs);
    let refs: BTreeSet<&str> = refs.iter().map(String::as_str).collect();
    assert_eq!(
        refs,
        BTreeSet::from([
            "HttpApi",
            "PortalBucket",
            "PortalOriginAccessControl",
            "PortalPriceClass",
            "PortalResponseHeadersPolicy",
            "PortalViewerRequestFunction",
        ])
    );
}

#[test]
fn deploy_portal_uploads_assets_then_html_then_prunes_then_invalidates() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(dist.join("index.html"), "<!doctype html>").unwrap();
    std::fs::write(dist.join("assets/index-1a2b.js"), "0").unwrap();
    // A stand-in `aws` that records its arguments and knows the stack.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = tmp.path().join("aws.log");
    std::fs::write(
        bin.join("aws"),
        "#!/usr/bin/env bash\nprintf '%s\\n' \"$*\" >> \"$AWS_LOG\"\n\
         case \"$*\" in *describe-stacks*) printf 'PortalDistributionId\\tE2EXAMPLE\\nPortalBucketName\\tportal-b\\n' ;; \
         *create-invalidation*) echo I2EXAMPLE ;; esac\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("aws"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(Command::new("bash")
        .arg("infra/deploy-portal")
        .args(["--dist", dist.to_str().unwrap(), "my-stack"])
        .env("PATH", &path)
        .env("AWS_LOG", &log));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "I2EXAMPLE");
    let calls: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let d = dist.to_str().unwrap();
    assert_eq!(calls.len(), 5, "{calls:#?}");
    assert!(calls[0].starts_with("cloudformation describe-stacks --stack-name my-stack "));
    assert_eq!(
        calls[1],
        format!(
            "s3 sync {d}/assets s3://portal-b/assets --cache-control public, max-age=31536000, immutable --only-show-errors"
        )
    );
    assert_eq!(
        calls[2],
        format!(
            "s3 cp {d} s3://portal-b --recursive --exclude assets/* --cache-control no-cache --only-show-errors"
        )
    );
    // Stale files go last, after the new ones are in place.
    assert!(
        calls[3].starts_with(&format!("s3 sync {d} s3://portal-b --delete")),
        "{}",
        calls[3]
    );
    assert!(
        calls[4].starts_with(
            "cloudfront create-invalidation --distribution-id E2EXAMPLE --paths /index.html /"
        ),
        "{}",
        calls[4]
    );
    // --dry-run runs nothing, not even the stack lookup.
    std::fs::remove_file(&log).unwrap();
    let out = run(Command::new("bash")
        .arg("infra/deploy-portal")
        .args(["--dry-run", "--dist", d])
        .env("PATH", &path)
        .env("AWS_LOG", &log));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!log.exists(), "--dry-run called aws");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("describe-stacks --stack-name berth "),
        "{printed}"
    );
    assert!(printed.contains("create-invalidation"), "{printed}");
}
