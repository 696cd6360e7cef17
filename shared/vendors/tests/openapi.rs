//! Every JSON exchange between a vendor client and its simulator, checked against the vendor's
//! own OpenAPI spec (`shared/vendor-docs/openapi/`, read at run time).
//!
//! Each test drives a vendor through the whole `Vendor` contract (success with downloads,
//! failures, cancel, token expiry, reconciliation) with the recorder on, then checks each
//! recorded exchange: an operation matches its method and path, its query parameters are
//! declared, and its request and response bodies validate against the operation's schemas.
//! Known deviations are listed per vendor as [`Exception`]s with their reason; an exception that
//! no longer matches anything fails the test too, so the list cannot go stale.
//!
//! CARTO publishes no machine-readable spec (see `shared/vendor-docs/openapi/SOURCES.md`), so it
//! has no test here.

mod contract;
mod openapi_spec;
mod util;

use openapi_spec::{Direction, Exception, FindingKind, Report, Spec};
use runbridge_core::VendorKind;
use runbridge_sim::Exchange;
use util::Harness;

/// Routes a vendor client calls that its workflow API spec does not describe, by design. The
/// reason is printed with the report, so a skipped route is never silent.
struct OutOfSpec {
    path_prefix: &'static str,
    reason: &'static str,
}

/// Downloads are presigned object-store URLs (S3 for AMC), not the vendor API.
const DOWNLOADS: OutOfSpec = OutOfSpec {
    path_prefix: "/__sim/files/",
    reason: "result files come from presigned object-store URLs, outside the API spec",
};

/// Runs the contract on a fresh simulator with recording on, and checks what was recorded.
/// `extra` checks bodies the spec types somewhere other than at their operation.
async fn check_against_spec(
    kind: VendorKind,
    spec_file: &str,
    out_of_spec: &[OutOfSpec],
    exceptions: &[Exception],
    extra: impl Fn(&mut Spec, &Exchange, &mut Report),
) -> Report {
    let mut spec = Spec::load(spec_file).unwrap_or_else(|e| panic!("{e}"));
    let h = Harness::start(1.0).await;
    h.sim.sim.recorder.enable();
    contract::check_vendor_contract(&h, kind, contract::valid_request(kind)).await;
    let exchanges: Vec<Exchange> = h
        .sim
        .sim
        .recorder
        .exchanges()
        .into_iter()
        .filter(|e| e.vendor == kind)
        .collect();
    let mut report = check_exchanges(&mut spec, &exchanges, out_of_spec);
    for exchange in &exchanges {
        extra(&mut spec, exchange, &mut report);
    }
    eprintln!(
        "{kind}: {} exchanges, {} bodies validated, {} JSON bodies without a schema in the spec, \
         {} findings ({} covered by exceptions); operations: {:?}; not in the spec: {}",
        exchanges.len(),
        report.bodies_validated,
        report.bodies_without_schema,
        report.findings.len(),
        report
            .findings
            .iter()
            .filter(|f| exceptions.iter().any(|e| e.covers(f)))
            .count(),
        report.operations_seen,
        out_of_spec
            .iter()
            .map(|r| format!("{} ({})", r.path_prefix, r.reason))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_conforms(kind, &report, exceptions);
    report
}

fn check_exchanges(spec: &mut Spec, exchanges: &[Exchange], out_of_spec: &[OutOfSpec]) -> Report {
    let mut report = Report::default();
    for exchange in exchanges {
        if out_of_spec
            .iter()
            .any(|route| exchange.path.starts_with(route.path_prefix))
        {
            continue;
        }
        spec.check(exchange, &mut report)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    report
}

/// Fails with every finding no exception covers, and every exception that covered nothing.
fn assert_conforms(kind: VendorKind, report: &Report, exceptions: &[Exception]) {
    let unexplained: Vec<String> = report
        .findings
        .iter()
        .filter(|f| !exceptions.iter().any(|e| e.covers(f)))
        .map(ToString::to_string)
        .collect();
    let unused: Vec<String> = exceptions
        .iter()
        .filter(|e| !report.findings.iter().any(|f| e.covers(f)))
        .map(|e| {
            format!(
                "{:?} {} {:?} {:?}",
                e.operations, e.direction, e.kind, e.pointers
            )
        })
        .collect();
    assert!(
        unexplained.is_empty() && unused.is_empty(),
        "{kind}: exchanges that depart from the spec:\n  {}\nexceptions that matched nothing:\n  {}",
        unexplained.join("\n  "),
        unused.join("\n  ")
    );
}

fn assert_exercised(kind: VendorKind, report: &Report, operations: &[&str]) {
    for operation in operations {
        assert!(
            report.operations_seen.contains_key(*operation),
            "{kind}: `{operation}` was never exercised; seen: {:?}",
            report.operations_seen
        );
    }
    assert!(report.bodies_validated > 0, "{kind}: no body was validated");
}

/// Label of findings from checking AMC's flat execution object against `WorkflowExecution`.
const AMC_FLAT_EXECUTION: &str = "flat WorkflowExecution (create/get answer)";

/// AMC's create and get answers are flat execution objects (see [`AMC_EXCEPTIONS`]); the spec's
/// `WorkflowExecution` schema still types their fields, so they are checked against it directly
/// rather than going unchecked.
fn check_amc_flat_execution(spec: &mut Spec, exchange: &Exchange, report: &mut Report) {
    let is_execution_answer = exchange.status == 200
        && exchange.path.contains("/workflowExecutions")
        && !exchange.path.ends_with("/downloadUrls")
        && matches!(
            (
                exchange.method.as_str(),
                exchange.path.ends_with("/workflowExecutions")
            ),
            ("POST", true) | ("GET", false)
        );
    if let (true, Some(body)) = (is_execution_answer, &exchange.response) {
        spec.check_body(
            AMC_FLAT_EXECUTION,
            Direction::Response,
            exchange.status,
            "/components/schemas/WorkflowExecution",
            body,
            report,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// AMC: where the service (as the Amazon Ads guide shows it) and the published spec differ.
const AMC_EXCEPTIONS: &[Exception] = &[
    Exception {
        operations: &["createWorkflowExecution", "getWorkflowExecution"],
        direction: Direction::Response,
        kind: FindingKind::UndeclaredProperty,
        pointers: &["/*"],
        problem_contains: "",
        reason: "the spec wraps the execution in `{\"workflowExecution\": …}`; the Ads guide's \
                 sample answers (vendor-docs/amc-workflow-executions.md) are the flat object, \
                 which the simulator sends. The client reads both shapes (amc.rs `execution`), and \
                 the flat object is checked against `WorkflowExecution` (AMC_FLAT_EXECUTION)",
    },
    Exception {
        operations: &["listWorkflowExecutions", AMC_FLAT_EXECUTION],
        direction: Direction::Response,
        kind: FindingKind::UndeclaredProperty,
        pointers: &[
            "/executions/*/dataGaps",
            "/executions/*/executionCategory",
            "/executions/*/ignoreDataGaps",
            "/executions/*/parameterValues",
            "/dataGaps",
            "/executionCategory",
            "/ignoreDataGaps",
            "/parameterValues",
        ],
        problem_contains: "",
        reason: "fields of the Ads guide's sample execution that the spec's `WorkflowExecution` \
                 omits; the client reads none of them except `parameterValues` for \
                 reconciliation, where it is optional",
    },
    Exception {
        operations: &[AMC_FLAT_EXECUTION],
        direction: Direction::Response,
        kind: FindingKind::UndeclaredProperty,
        pointers: &["/statusReason"],
        problem_contains: "",
        reason: "simulator's judgement: a failed execution's reason at the top level. The spec \
                 only has `outputChannels[].statusReason`; the client reads the top-level field \
                 and falls back to the output channel's, so it works with either placement",
    },
    Exception {
        operations: &["listWorkflowExecutions", AMC_FLAT_EXECUTION],
        direction: Direction::Response,
        kind: FindingKind::SchemaViolation,
        pointers: &["/status", "/executions/*/status"],
        problem_contains: "\"REJECTED\" is not one of",
        reason: "the spec's status enum stops at PENDING, RUNNING, SUCCEEDED, FAILED and \
                 CANCELLED; AMC also reports REJECTED (and PUBLISHING), as FACTS.md lists, and the \
                 client maps both. Only the REJECTED value is excepted: any other status value \
                 still fails",
    },
];

/// Adobe: where Adobe's own tutorial (vendor-docs/adobe-flow-service-runs.md, which the client
/// and simulator follow) and the Flow Service spec differ.
const ADOBE_EXCEPTIONS: &[Exception] = &[
    Exception {
        operations: &["createFlowRun"],
        direction: Direction::Request,
        kind: FindingKind::SchemaViolation,
        pointers: &[
            "/params/startTime",
            "/params/windowStartTime",
            "/params/windowEndTime",
        ],
        problem_contains: "is not of type \"integer\"",
        reason: "the tutorial sends unix seconds as strings (\"1663735590\"); the spec types them \
                 integers and calls them milliseconds while its own examples are seconds. The \
                 client follows the tutorial; the simulator accepts both forms",
    },
    Exception {
        operations: &["createFlowRun"],
        direction: Direction::Response,
        kind: FindingKind::UndeclaredProperty,
        pointers: &["/items"],
        problem_contains: "",
        reason:
            "the tutorial's create answer is `{\"items\": [{\"id\", \"etag\"}]}`, the spec's a \
                 bare `{\"id\", \"etag\"}`; the client reads both",
    },
    Exception {
        operations: &["retrieveFlowRun", "listFlowRuns"],
        direction: Direction::Response,
        kind: FindingKind::UndeclaredProperty,
        pointers: &["/items/*/etag", "/items/*/activities"],
        problem_contains: "",
        reason: "the spec spells these `eTag` and `activites` (sic); Adobe's responses and the \
                 create answer use `etag`, and the client reads `activities` for reconciliation",
    },
    Exception {
        operations: &["retrieveFlowRun", "listFlowRuns"],
        direction: Direction::Response,
        kind: FindingKind::UndeclaredProperty,
        pointers: &["/items/*/metrics/statusSummary/errors"],
        problem_contains: "",
        reason: "the spec's `StatusSummaryDTO` has only `status` and `extensions`; failures carry \
                 `errors[{code, message}]` there (FACTS.md), which the client needs for the \
                 reason and attribution",
    },
    Exception {
        operations: &["retrieveFlowRun"],
        direction: Direction::Response,
        kind: FindingKind::UndeclaredStatus,
        pointers: &[""],
        problem_contains: "",
        reason: "the spec lists only 403 (token missing) and 503; Adobe's gateway answers an \
                 expired token with 401 `401013 Oauth token is not valid`, which the contract's \
                 token-expiry step provokes",
    },
];

#[tokio::test]
async fn amc_exchanges_follow_the_workflow_management_spec() {
    let report = check_against_spec(
        VendorKind::Amc,
        "amazon-ads-amc-workflow-management-service.json",
        &[
            DOWNLOADS,
            OutOfSpec {
                path_prefix: "/auth/o2/token",
                reason: "Login with Amazon is a separate API",
            },
        ],
        AMC_EXCEPTIONS,
        check_amc_flat_execution,
    )
    .await;
    assert_exercised(
        VendorKind::Amc,
        &report,
        &[
            "createWorkflowExecution",
            "getWorkflowExecution",
            "getWorkflowExecutionDownloadUrls",
            "UpdateWorkflowExecution",
            "listWorkflowExecutions",
        ],
    );
}

#[tokio::test]
async fn amperity_exchanges_follow_the_control_plane_spec() {
    let report = check_against_spec(
        VendorKind::Amperity,
        "amperity-control-plane-2024-04-01.json",
        &[OutOfSpec {
            path_prefix: "/api/v0/oauth2/token",
            reason: "the token endpoint is not part of the control-plane spec",
        }],
        // Amperity's runs match the spec as published: no exception.
        &[],
        |_, _, _| {},
    )
    .await;
    assert_exercised(
        VendorKind::Amperity,
        &report,
        &[
            "run-workflow",
            "get-workflow",
            "stop-workflow",
            "list-workflows",
        ],
    );
}

#[tokio::test]
async fn adobe_exchanges_follow_the_flow_service_spec() {
    let report = check_against_spec(
        VendorKind::Adobe,
        "adobe-flow-service-sources.json",
        &[OutOfSpec {
            path_prefix: "/ims/token/v3",
            reason: "Adobe IMS is a separate API",
        }],
        ADOBE_EXCEPTIONS,
        |_, _, _| {},
    )
    .await;
    assert_exercised(
        VendorKind::Adobe,
        &report,
        &["createFlowRun", "retrieveFlowRun", "listFlowRuns"],
    );
}

/// The checker itself: a spec in miniature, so a checker that accepts everything fails here.
mod checker {
    use super::*;
    use runbridge_core::VendorKind;
    use serde_json::{json, Value};

    fn spec() -> Spec {
        Spec::from_document(
            "mini.json",
            json!({
                "openapi": "3.0.1",
                "servers": [{"url": "https://example.com/api"}],
                "paths": {
                    "/runs/{id}": {"get": {
                        "operationId": "getRun",
                        "parameters": [{"name": "view", "in": "query"}],
                        "responses": {"200": {"content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Run"}}}}}
                    }},
                    "/runs/search": {"get": {"operationId": "searchRuns", "responses": {"200": {}}}}
                },
                "components": {"schemas": {"Run": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {
                        "id": {"type": "string"},
                        "ended": {"type": "string", "format": "date-time", "nullable": true},
                        "state": {"type": "string", "enum": ["running", "done"]}
                    }
                }}}
            }),
        )
    }

    fn exchange(
        method: &str,
        path: &str,
        query: Option<&str>,
        status: u16,
        body: Value,
    ) -> Exchange {
        Exchange {
            vendor: VendorKind::Amperity,
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.map(str::to_owned),
            request: None,
            request_text: String::new(),
            status,
            response: Some(body),
        }
    }

    fn findings(e: &Exchange) -> Vec<(FindingKind, String)> {
        let mut report = Report::default();
        spec().check(e, &mut report).expect("spec is usable");
        report
            .findings
            .into_iter()
            .map(|f| (f.kind, f.pointer))
            .collect()
    }

    #[test]
    fn a_conforming_exchange_has_no_findings() {
        let e = exchange(
            "GET",
            "/api/runs/r1",
            Some("view=verbose"),
            200,
            json!({"id": "r1", "ended": null, "state": "done"}),
        );
        assert_eq!(findings(&e), vec![]);
    }

    #[test]
    fn departures_are_found_and_located() {
        let e = exchange(
            "GET",
            "/api/runs/r1",
            Some("view=verbose&limit=3"),
            200,
            json!({"state": "stopped", "ended": "yesterday", "extra": 1}),
        );
        let mut found = findings(&e);
        found.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            found,
            vec![
                (FindingKind::SchemaViolation, String::new()), // `id` is required
                (FindingKind::SchemaViolation, "/ended".to_owned()),
                (FindingKind::UndeclaredProperty, "/extra".to_owned()),
                (FindingKind::SchemaViolation, "/state".to_owned()),
                (FindingKind::UndeclaredQueryParameter, "?limit".to_owned()),
            ]
        );
    }

    #[test]
    fn routes_and_statuses_must_be_declared() {
        let unknown = exchange("DELETE", "/api/runs/r1", None, 200, json!({}));
        assert_eq!(
            findings(&unknown),
            vec![(FindingKind::UnknownRoute, String::new())]
        );
        let undeclared = exchange("GET", "/api/runs/r1", None, 418, json!({}));
        assert_eq!(
            findings(&undeclared),
            vec![(FindingKind::UndeclaredStatus, String::new())]
        );
        // A literal segment wins over a template: `/runs/search` is not `getRun`.
        let mut report = Report::default();
        spec()
            .check(
                &exchange("GET", "/api/runs/search", None, 200, json!({})),
                &mut report,
            )
            .unwrap();
        assert!(report.operations_seen.contains_key("searchRuns"));
    }

    #[test]
    fn exceptions_match_operation_kind_pointer_and_problem() {
        let finding = openapi_spec::Finding {
            operation: "getRun".to_owned(),
            direction: Direction::Response,
            pointer: "/items/3/status".to_owned(),
            kind: FindingKind::SchemaViolation,
            problem: "\"REJECTED\" is not one of ...".to_owned(),
            status: 200,
        };
        let mut exception = Exception {
            operations: &["getRun"],
            direction: Direction::Response,
            kind: FindingKind::SchemaViolation,
            pointers: &["/items/*/status"],
            problem_contains: "\"REJECTED\"",
            reason: "test",
        };
        assert!(exception.covers(&finding));
        exception.problem_contains = "\"PAUSED\"";
        assert!(!exception.covers(&finding));
        exception.problem_contains = "";
        exception.pointers = &["/items/*"];
        assert!(!exception.covers(&finding));
        exception.pointers = &["/items/*/status"];
        exception.kind = FindingKind::UndeclaredProperty;
        assert!(!exception.covers(&finding));
    }

    #[test]
    fn nullable_becomes_a_type_union() {
        let mut schema = json!({
            "a": {"type": "string", "nullable": true, "enum": ["x"]},
            "b": {"$ref": "#/c", "nullable": true},
            "c": {"type": "integer", "nullable": false}
        });
        openapi_spec::convert_nullable(&mut schema);
        assert_eq!(
            schema,
            json!({
                "a": {"type": ["string", "null"], "enum": ["x", null]},
                "b": {"anyOf": [{"$ref": "#/c"}, {"type": "null"}]},
                "c": {"type": "integer", "nullable": false}
            })
        );
    }
}

/// Issue 15: the two documented Amperity base URLs are the OpenAPI spec's two servers.
#[test]
fn amperity_base_urls_are_the_specs_servers() {
    let path = openapi_spec::spec_dir().join("amperity-control-plane-2024-04-01.json");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the Amperity spec")).unwrap();
    let servers: Vec<String> = spec["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["url"]
                .as_str()
                .unwrap()
                .replace("<tenant-id>", "{tenant}")
        })
        .collect();
    assert!(
        servers.contains(&runbridge_vendors::amperity::AWS_API_BASE.to_owned()),
        "{servers:?}"
    );
    assert!(
        servers.contains(&runbridge_vendors::amperity::AZURE_API_BASE.to_owned()),
        "{servers:?}"
    );
    assert_eq!(
        runbridge_vendors::amperity::DEFAULT_API_BASE,
        runbridge_vendors::amperity::AZURE_API_BASE
    );
}
