//! The real template, created: `infra/template.yaml` through the SAM translator, created as a
//! stack in moto's CloudFormation (`runbridge_test_support::stack`), and every resource moto
//! creates compared with what the template says CloudFormation makes of it (the template's
//! intrinsics resolved against the stack's parameters and physical ids). Which types moto creates
//! and which it only records is listed here, so a moto upgrade that changes it shows up.

use std::collections::{BTreeMap, BTreeSet};

use runbridge_test_support::stack::RealStack;
use runbridge_test_support::template::transformed;
use runbridge_test_support::{moto, unique};
use serde_json::{json, Value};

/// Resource types of the transformed template that moto's CloudFormation creates in the service
/// (listed by the stack with a logical id and physical id).
const CREATED: [&str; 11] = [
    "AWS::CloudWatch::Dashboard",
    "AWS::DynamoDB::Table",
    "AWS::Events::Rule",
    "AWS::IAM::Role",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::Function",
    "AWS::Lambda::Permission",
    "AWS::Logs::LogGroup",
    "AWS::S3::Bucket",
    "AWS::SQS::Queue",
    "AWS::StepFunctions::StateMachine",
];

/// Types moto 5.2 accepts but only records (no CloudFormation model: listed without id or type,
/// nothing made in the service). Their properties are checked by the policy scan of the same
/// transformed template (scripts/lint-infra.sh step 5) instead.
const RECORDED_ONLY: [&str; 5] = [
    "AWS::CloudWatch::Alarm",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::Scheduler::Schedule",
];

/// Parameters other than their defaults, to see them reach the resources.
const PARAMETERS: [(&str, &str); 4] = [
    ("LogRetentionDays", "14"),
    ("TriggerMaxConcurrency", "7"),
    ("CollectMemorySize", "1024"),
    ("ManifestSha256", "false"),
];

/// Resolves the template's intrinsics the way CloudFormation does for this stack.
struct Resolver<'a> {
    stack: &'a str,
    parameters: BTreeMap<String, String>,
    created: &'a Value,
    /// The template's `Conditions`.
    conditions: &'a Value,
}

impl Resolver<'_> {
    fn reference(&self, name: &str) -> String {
        match name {
            "AWS::Region" => "us-east-1".into(),
            "AWS::AccountId" => "123456789012".into(),
            "AWS::Partition" => "aws".into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            "AWS::StackName" => self.stack.into(),
            _ => match self.parameters.get(name) {
                Some(value) => value.clone(),
                None => self.resource(name)["physical_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            },
        }
    }

    fn resource(&self, logical: &str) -> &Value {
        let resource = &self.created[logical];
        assert!(resource.is_object(), "{logical} was not created");
        resource
    }

    fn attribute(&self, logical: &str, attribute: &str) -> String {
        let resource = self.resource(logical);
        let described = &resource["described"];
        let physical = resource["physical_id"].as_str().unwrap();
        let value = match (resource["type"].as_str().unwrap(), attribute) {
            ("AWS::Lambda::Function", "Arn") => described["FunctionArn"].clone(),
            ("AWS::SQS::Queue", "Arn") => described["QueueArn"].clone(),
            ("AWS::DynamoDB::Table", "Arn") => described["arn"].clone(),
            ("AWS::IAM::Role", "Arn") => described["arn"].clone(),
            ("AWS::S3::Bucket", "Arn") => json!(format!("arn:aws:s3:::{physical}")),
            ("AWS::StepFunctions::StateMachine", "Arn") => json!(physical),
            ("AWS::StepFunctions::StateMachine", "Name") => described["name"].clone(),
            // CloudFormation's Arn of a log group ends in ":*" (the group's streams); moto's
            // stops at the name. Compared here as moto resolves it.
            ("AWS::Logs::LogGroup", "Arn") => json!(format!(
                "arn:aws:logs:us-east-1:123456789012:log-group:{physical}"
            )),
            (kind, _) => panic!("no resolution of {kind} {logical}.{attribute} here"),
        };
        value.as_str().unwrap().to_owned()
    }

    fn substitute(&self, text: &str, variables: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = start + rest[start..].find('}').expect("a closed ${");
            let name = &rest[start + 2..end];
            out.push_str(&match variables.get(name) {
                Some(value) => value.clone(),
                None => match name.split_once('.') {
                    Some((logical, attribute)) => self.attribute(logical, attribute),
                    None => self.reference(name),
                },
            });
            rest = &rest[end + 1..];
        }
        out + rest
    }

    /// Whether a condition (a `Conditions` entry's body) holds for this stack.
    fn holds(&self, condition: &Value) -> bool {
        let (function, argument) = condition.as_object().unwrap().iter().next().unwrap();
        let list = || argument.as_array().unwrap();
        match function.as_str() {
            "Fn::Equals" => self.resolve(&list()[0]) == self.resolve(&list()[1]),
            "Fn::Not" => !self.holds(&list()[0]),
            "Fn::And" => list().iter().all(|c| self.holds(c)),
            "Fn::Or" => list().iter().any(|c| self.holds(c)),
            "Condition" => self.holds(&self.conditions[argument.as_str().unwrap()]),
            other => panic!("no condition function {other} here"),
        }
    }

    fn resolve(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (function, argument) = map.iter().next().unwrap();
                match function.as_str() {
                    // A property set to AWS::NoValue is left out (see the object case below).
                    "Ref" if argument == "AWS::NoValue" => Value::Null,
                    "Ref" => json!(self.reference(argument.as_str().unwrap())),
                    "Fn::If" => {
                        let name = argument[0].as_str().unwrap();
                        let branch = if self.holds(&self.conditions[name]) {
                            1
                        } else {
                            2
                        };
                        self.resolve(&argument[branch])
                    }
                    "Fn::GetAtt" => json!(self
                        .attribute(argument[0].as_str().unwrap(), argument[1].as_str().unwrap())),
                    "Fn::Sub" => {
                        let (text, variables) = match argument {
                            Value::String(text) => (text.as_str(), BTreeMap::new()),
                            _ => (
                                argument[0].as_str().unwrap(),
                                argument[1]
                                    .as_object()
                                    .unwrap()
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.clone(), self.resolve(v).as_str().unwrap().to_owned())
                                    })
                                    .collect(),
                            ),
                        };
                        json!(self.substitute(text, &variables))
                    }
                    "Fn::Join" => {
                        let parts: Vec<String> = argument[1]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|p| self.resolve(p).as_str().unwrap().to_owned())
                            .collect();
                        json!(parts.join(argument[0].as_str().unwrap()))
                    }
                    other if other.starts_with("Fn::") => panic!("no {other} here"),
                    _ => Value::Object(
                        map.iter()
                            .map(|(k, v)| (k.clone(), self.resolve(v)))
                            .filter(|(_, v)| !v.is_null())
                            .collect(),
                    ),
                }
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.resolve(v)))
                    .filter(|(_, v)| !v.is_null())
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.resolve(v)).collect()),
            other => other.clone(),
        }
    }
}

/// Numbers as CloudFormation passes parameters (strings), so "14" and 14 compare equal.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn the_real_template_is_created_in_moto_as_the_template_says() {
    const TEST: &str = "the_real_template_is_created_in_moto_as_the_template_says";
    let Some(moto) = moto(TEST).await else {
        return;
    };
    let name = unique("rb-real");
    let Some(stack) = RealStack::create(&moto, TEST, &name, &PARAMETERS).await else {
        return;
    };
    let Some(template) = transformed(TEST, "unused", "functions") else {
        return;
    };
    let described = stack.describe(TEST).await;
    let created = &described["created"];
    let resources = template["Resources"].as_object().unwrap();

    // Which types moto creates and which it only records.
    let template_types: BTreeSet<&str> = resources
        .values()
        .map(|r| r["Type"].as_str().unwrap())
        .collect();
    let created_types: BTreeSet<&str> = created
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(created_types, CREATED.into_iter().collect());
    assert_eq!(
        template_types
            .difference(&created_types)
            .copied()
            .collect::<BTreeSet<_>>(),
        RECORDED_ONLY.into_iter().collect()
    );
    for (logical, resource) in resources {
        let kind = resource["Type"].as_str().unwrap();
        if CREATED.contains(&kind) {
            assert_eq!(
                created[logical]["status"], "CREATE_COMPLETE",
                "{logical} ({kind})"
            );
        }
    }
    let recorded = resources
        .values()
        .filter(|r| RECORDED_ONLY.contains(&r["Type"].as_str().unwrap()))
        .count();
    assert_eq!(described["unnamed_records"], recorded);

    let mut parameters: BTreeMap<String, String> = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, p)| Some((k.clone(), as_text(p.get("Default")?))))
        .collect();
    parameters.extend(PARAMETERS.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    parameters.insert(
        "VendorSecretArn".into(),
        runbridge_test_support::stack::PLACEHOLDER_SECRET_ARN.into(),
    );
    let cfn = Resolver {
        stack: &name,
        parameters,
        created,
        conditions: &template["Conditions"],
    };
    let props = |logical: &str| cfn.resolve(&template["Resources"][logical]["Properties"]);
    let of = |logical: &str| &created[logical]["described"];

    // The outputs the operator commands read are the resources created.
    assert_eq!(
        stack.output("RunRequestQueueUrl"),
        created["RunRequestQueue"]["physical_id"]
    );
    assert_eq!(
        stack.output("StateMachineArn"),
        created["RunStateMachine"]["physical_id"]
    );
    assert_eq!(
        stack.output("ResultsBucketName"),
        created["ResultsBucket"]["physical_id"]
    );

    // Queues: encrypted at rest, the request queue redriving to the dead-letter queue.
    for queue in ["RunRequestQueue", "RunRequestDeadLetterQueue"] {
        let want = props(queue);
        let got = of(queue);
        assert_eq!(got["SqsManagedSseEnabled"], "true", "{queue}");
        assert_eq!(
            got["MessageRetentionPeriod"],
            as_text(&want["MessageRetentionPeriod"]),
            "{queue}"
        );
    }
    let redrive: Value =
        serde_json::from_str(of("RunRequestQueue")["RedrivePolicy"].as_str().unwrap()).unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"],
        of("RunRequestDeadLetterQueue")["QueueArn"]
    );
    assert_eq!(
        redrive,
        props("RunRequestQueue")["RedrivePolicy"],
        "the redrive as the template sets it"
    );
    assert_eq!(
        of("RunRequestQueue")["VisibilityTimeout"],
        as_text(&props("RunRequestQueue")["VisibilityTimeout"])
    );

    // The state machine: the deployed ASL is infra/statemachine.asl.json with the template's
    // substitutions resolved to this stack's functions.
    let machine = of("RunStateMachine");
    let asl = std::fs::read_to_string(
        runbridge_test_support::template::repository_root().join("infra/statemachine.asl.json"),
    )
    .unwrap();
    let substitutions: BTreeMap<String, String> = props("RunStateMachine")
        ["DefinitionSubstitutions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    assert!(!substitutions.is_empty());
    let mut expected = asl.clone();
    for (k, v) in &substitutions {
        assert!(expected.contains(&format!("${{{k}}}")), "{k} is used");
        expected = expected.replace(&format!("${{{k}}}"), v);
    }
    let deployed: Value = serde_json::from_str(machine["definition"].as_str().unwrap()).unwrap();
    assert_eq!(
        deployed,
        serde_json::from_str::<Value>(&expected).unwrap(),
        "the deployed definition"
    );
    assert!(!machine["definition"].as_str().unwrap().contains("${"));
    assert_eq!(
        substitutions["PollFunctionArn"],
        of("PollFunction")["FunctionArn"]
    );
    assert_eq!(machine["roleArn"], of("RunStateMachineRole")["arn"]);
    assert_eq!(machine["type"], "STANDARD");

    // The bucket: encrypted at rest (moto's bucket model applies BucketEncryption; public access
    // block, versioning and lifecycle it ignores, and the policy is a record only, see above).
    assert_eq!(
        of("ResultsBucket")["encryption"]["Rules"][0]["ApplyServerSideEncryptionByDefault"],
        json!({"SSEAlgorithm": "AES256"})
    );

    // Roles: trust and every inline policy exactly as the template resolves them.
    let mut roles = 0;
    for (logical, resource) in resources {
        if resource["Type"] != "AWS::IAM::Role" {
            continue;
        }
        roles += 1;
        let want = props(logical);
        let got = of(logical);
        assert_eq!(
            got["assume_role_policy"], want["AssumeRolePolicyDocument"],
            "{logical}: trust"
        );
        let want_policies: BTreeMap<String, Value> = want["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["PolicyName"].as_str().unwrap().to_owned(),
                    p["PolicyDocument"].clone(),
                )
            })
            .collect();
        let got_policies: BTreeMap<String, Value> =
            serde_json::from_value(got["policies"].clone()).unwrap();
        assert_eq!(got_policies, want_policies, "{logical}: inline policies");
        assert_eq!(got["attached"], json!([]), "{logical}: no managed policy");
    }
    assert_eq!(roles, 5);

    // Rules: pattern, state and targets (retry and dead letter) as the template says.
    for rule in ["RunRequestedRule", "ExecutionStoppedRule"] {
        let want = props(rule);
        let got = of(rule);
        assert_eq!(got["event_pattern"], want["EventPattern"], "{rule}");
        assert_eq!(got["state"], want["State"], "{rule}");
        assert_eq!(got["targets"], want["Targets"], "{rule}: targets");
    }
    assert_eq!(
        of("ExecutionStoppedRule")["event_pattern"]["detail"]["stateMachineArn"],
        json!([stack.output("StateMachineArn")])
    );

    // Functions: environment exactly as resolved, and their settings.
    for function in ["TriggerFunction", "PollFunction", "CollectFunction"] {
        let want = props(function);
        let got = of(function);
        assert_eq!(
            got["Environment"]["Variables"], want["Environment"]["Variables"],
            "{function}: environment"
        );
        for setting in ["Runtime", "Handler", "Description"] {
            assert_eq!(got[setting], want[setting], "{function}: {setting}");
        }
        for setting in ["Timeout", "MemorySize"] {
            assert_eq!(
                as_text(&got[setting]),
                as_text(&want[setting]),
                "{function}: {setting}"
            );
        }
        assert_eq!(got["Role"], want["Role"], "{function}: role");
        assert!(
            ["built", "stand-in"].contains(&stack.packages[function].as_str()),
            "{function}"
        );
    }
    assert_eq!(of("CollectFunction")["MemorySize"], 1024);
    assert_eq!(
        of("CollectFunction")["Environment"]["Variables"]["MANIFEST_SHA256"],
        "false"
    );
    let trigger_env = &of("TriggerFunction")["Environment"]["Variables"];
    assert_eq!(
        trigger_env["STATE_MACHINE_ARN"],
        stack.output("StateMachineArn")
    );
    assert_eq!(
        trigger_env["DEAD_LETTER_QUEUE_URL"],
        stack.output("RunRequestDeadLetterQueueUrl")
    );
    // The vendor rate budget every environment shares: its table, named to every function.
    let budget = of("RateBudgetTable");
    assert_eq!(budget["billing_mode"], "PAY_PER_REQUEST");
    assert_eq!(
        budget["key_schema"],
        json!([{"AttributeName": "pk", "KeyType": "HASH"}])
    );
    // moto 5 does not apply a table's TimeToLiveSpecification from CloudFormation (its TTL
    // stays DISABLED): the template's own is checked, naming the attribute the adapter writes.
    assert_eq!(
        props("RateBudgetTable")["TimeToLiveSpecification"],
        json!({"AttributeName": "expires_at", "Enabled": true})
    );
    for function in ["TriggerFunction", "PollFunction", "CollectFunction"] {
        assert_eq!(
            of(function)["Environment"]["Variables"]["RATE_BUDGET_TABLE"],
            created["RateBudgetTable"]["physical_id"],
            "{function}"
        );
    }
    let mapping = of("TriggerFunctionRunRequests");
    assert_eq!(mapping["EventSourceArn"], of("RunRequestQueue")["QueueArn"]);
    assert_eq!(mapping["FunctionArn"], of("TriggerFunction")["FunctionArn"]);
    assert_eq!(
        mapping["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(mapping["ScalingConfig"]["MaximumConcurrency"], 7);

    // Log groups: named per stack, with the retention asked for.
    for (logical, resource) in resources {
        if resource["Type"] == "AWS::Logs::LogGroup" {
            let want = props(logical);
            assert_eq!(of(logical)["name"], want["LogGroupName"], "{logical}");
            assert_eq!(of(logical)["retention_days"], 14, "{logical}");
        }
    }
}
