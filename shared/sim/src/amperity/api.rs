//! What every Amperity workflow route shares: the `{status, message}` error shape, the admission
//! checks in the API's order (tenant header, per-tenant rate limit, bearer token, API version),
//! query-parameter checks, and the client-credentials token endpoint.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::model::Run;
use super::{AmperitySim, QueryPairs, Shared, API_VERSION, CATALOG, RATE_LIMIT_PER_SECOND, VENDOR};
use crate::auth::{self, AuthPolicy};
use crate::{RunScript, ScriptedRun};

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"status": status.as_u16(), "message": message})),
    )
        .into_response()
}

pub(super) fn bad_request(message: impl AsRef<str>) -> Response {
    error(StatusCode::BAD_REQUEST, message.as_ref())
}

const AUTH: AuthPolicy = AuthPolicy {
    invalid: StatusCode::UNAUTHORIZED,
    expired: StatusCode::UNAUTHORIZED,
    error,
};

/// The token endpoint takes a form body; the router has no form extractor, so the body is
/// decoded with the query-string parser (same `application/x-www-form-urlencoded` format).
/// A token request counts against its tenant's rate limit, named by the `amperity-tenant`
/// header every Amperity request carries (one without it is counted under no tenant).
pub(super) async fn token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let tenant = headers
        .get("amperity-tenant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Err(refused) = state.rate_limit(tenant) {
        return refused;
    }
    let form = auth::form_fields(&String::from_utf8_lossy(&body)).unwrap_or_default();
    auth::token_endpoint(&state.sim, VENDOR, &form, "client_credentials")
}

impl AmperitySim {
    /// Headers, rate limit, auth and version, common to every workflow route. Returns the tenant.
    fn admit(&self, headers: &HeaderMap, query: &[(String, String)]) -> Result<String, Response> {
        let tenant = auth::require_header(headers, "amperity-tenant", error)?.to_owned();
        self.rate_limit(&tenant)?;
        auth::check_bearer(&self.sim, VENDOR, headers, AUTH)?;
        // Amperity API keys are issued per tenant: another tenant's token is simply invalid here.
        if !auth::owns(&self.sim, VENDOR, headers, &tenant) {
            return Err(error(StatusCode::UNAUTHORIZED, "Invalid access token"));
        }
        let version = headers
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .or_else(|| {
                query
                    .iter()
                    .find(|(k, _)| k == "api_version")
                    .map(|(_, v)| v.as_str())
            });
        match version {
            None | Some("") => Err(bad_request("Missing required header api-version")),
            Some(API_VERSION) => Ok(tenant),
            Some(other) => Err(error(
                StatusCode::UNAUTHORIZED,
                &format!("Invalid API version identifier: {other}"),
            )),
        }
    }

    /// The common prelude of the single-run routes: a well-formed query with only `allowed`
    /// parameters, then [`Self::admit`]. Returns the tenant and the parsed query.
    pub(super) fn admit_request(
        &self,
        headers: &HeaderMap,
        query: QueryPairs,
        allowed: &[&str],
    ) -> Result<(String, Vec<(String, String)>), Response> {
        let query = query_pairs(query)?;
        self.take_foreign_runs();
        let tenant = self.admit(headers, &query)?;
        only_params(&query, allowed)?;
        Ok((tenant, query))
    }

    /// Adds the runs others started (`Control::add_foreign_run`) since the last request.
    fn take_foreign_runs(&self) {
        for foreign in self.sim.control.take_foreign_runs(VENDOR) {
            let Some(config) = CATALOG.iter().find(|c| c.id == foreign.config_id) else {
                continue;
            };
            let run = Run {
                id: self.new_run_id(foreign.created_at),
                tenant: foreign.tenant,
                config: *config,
                scripted: ScriptedRun::new(foreign.created_at, RunScript::default()),
                starter: Some(foreign.starter),
            };
            self.runs
                .lock()
                .expect("runs lock")
                .insert(run.id.clone(), run);
        }
    }

    /// Amperity's 10 requests per second per tenant, over a sliding second: a request is
    /// refused (429) when the tenant's last 10 admitted requests all came within the second
    /// before it. Token requests count too.
    fn rate_limit(&self, tenant: &str) -> Result<(), Response> {
        let now = self.sim.clock.now();
        let mut rate = self.rate.lock().expect("rate lock");
        let admitted = rate.entry(tenant.to_owned()).or_default();
        while admitted
            .front()
            .is_some_and(|at| now - *at >= time::Duration::SECOND)
        {
            admitted.pop_front();
        }
        if admitted.len() >= RATE_LIMIT_PER_SECOND as usize {
            self.sim.control.count("amperity.rate_limited");
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit exceeded: 10 requests per second",
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(1));
            return Err(response);
        }
        admitted.push_back(now);
        Ok(())
    }
}

fn only_params(query: &[(String, String)], allowed: &[&str]) -> Result<(), Response> {
    match query
        .iter()
        .find(|(k, _)| k != "api_version" && !allowed.contains(&k.as_str()))
    {
        Some((k, _)) => Err(bad_request(format!("Unknown query parameter: {k}"))),
        None => Ok(()),
    }
}

fn query_pairs(query: QueryPairs) -> Result<Vec<(String, String)>, Response> {
    query
        .map(|Query(q)| q)
        .map_err(|e| bad_request(format!("Invalid query string: {e}")))
}
