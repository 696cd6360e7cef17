//! The moto endpoint (`eval "$(bash scripts/moto.sh start)"`), SDK clients for it, unique
//! resource names.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use runbridge_adapters_aws::AwsEnv;

/// The moto endpoint and an SDK configuration pointing at it.
pub struct Moto {
    /// `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    /// SDK configuration with dummy credentials, pointing at it.
    pub sdk: SdkConfig,
}

/// Connects to moto, or returns `None` (after saying so on stderr) when `AWS_ENDPOINT_URL` is
/// unset outside CI. Under CI a missing endpoint is a failure, not a skip.
pub async fn moto(test: &str) -> Option<Moto> {
    let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") => {
            panic!("{test}: CI is set but AWS_ENDPOINT_URL is not; start moto first: eval \"$(bash scripts/moto.sh start)\"")
        }
        _ => {
            // Written to stderr directly: eprintln! output of a passing test is captured and
            // never shown, and a skip must not look like a pass.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED {test}: AWS_ENDPOINT_URL is not set; run: eval \"$(bash scripts/moto.sh start)\" ***"
            );
            return None;
        }
    };
    Some(connect(endpoint).await)
}

/// An SDK configuration for the moto server at `endpoint`.
async fn connect(endpoint: String) -> Moto {
    // Dummy credentials and region, set on the configuration rather than in the process
    // environment (which tests running in parallel share).
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "moto-tests",
        ))
        .http_client(runbridge_adapters_aws::env::https_client())
        .load()
        .await;
    Moto { endpoint, sdk }
}

/// A moto server of one test's own, started with `config` applied (`POST /moto-api/config`):
/// for switches that hold for a whole server, such as Step Functions really executing state
/// machines (`{"stepfunctions": {"execute_state_machine": true}}`), which would disturb the tests
/// sharing the server of `scripts/moto.sh`. Stopped (its process killed) when dropped.
pub struct OwnMoto {
    /// The endpoint and SDK configuration.
    pub moto: Moto,
    server: Child,
}

impl OwnMoto {
    /// `POST`s `body` (JSON) to `path` of this server (its `/moto-api/...` controls); the status
    /// line and the rest of the answer.
    pub fn post(&self, path: &str, body: &str) -> String {
        let port: u16 = self
            .moto
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the endpoint has a port");
        let answer = http(port, "POST", path, body).unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = answer.split_whitespace().nth(1).unwrap_or_default();
        assert!(status.starts_with('2'), "POST {path}: {answer}");
        answer
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Starts a moto server for `test` with `config`, where the shared one runs (`AWS_ENDPOINT_URL`
/// set; skipped as [`moto`] skips otherwise) from `.venv/bin/moto_server` of this checkout.
pub async fn own_moto(test: &str, config: &str) -> Option<OwnMoto> {
    moto(test).await?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // moto_server through scripts/moto_server.py, which lets a scripted Lambda answer be a
    // function error (the differential test's retried and caught errors).
    let binary = root.join(".venv/bin/python");
    assert!(
        binary.exists(),
        "{test}: {} is missing; run: bash scripts/install-tools.sh",
        binary.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = Command::new(&binary)
        .arg(root.join("scripts/moto_server.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        // moto's own calls between services (Step Functions sending to SQS) must stay in this
        // server, not follow the shared one's endpoint.
        .env_remove("AWS_ENDPOINT_URL")
        .env("MOTO_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{test}: start {}: {e}", binary.display()));
    let mut own = OwnMoto {
        moto: connect(format!("http://127.0.0.1:{port}")).await,
        server,
    };
    for _ in 0..100 {
        if http(port, "GET", "/moto-api/", "").is_ok() {
            let answer = http(port, "POST", "/moto-api/config", config)
                .unwrap_or_else(|e| panic!("{test}: configure moto: {e}"));
            let status = answer.split_whitespace().nth(1).unwrap_or_default();
            assert!(status.starts_with('2'), "{test}: configure moto: {answer}");
            return Some(own);
        }
        if let Ok(Some(status)) = own.server.try_wait() {
            panic!("{test}: moto_server exited during start-up: {status}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{test}: moto_server did not answer on port {port} within 20 s");
}

/// One plain HTTP/1.0 request to the local server on `port`; the whole answer.
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

impl Moto {
    /// An environment with these variables on top of the endpoint.
    pub fn env(&self, vars: &[(&str, &str)]) -> AwsEnv {
        let mut all = vec![("AWS_ENDPOINT_URL".to_owned(), self.endpoint.clone())];
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        AwsEnv::new(self.sdk.clone(), all)
    }

    /// A path-style S3 client (as `AwsEnv` builds it).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        self.env(&[]).s3_client()
    }

    /// A new bucket with a unique name.
    pub async fn bucket(&self) -> String {
        let name = unique("rb-test");
        self.s3()
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create bucket");
        name
    }

    /// An SQS client.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// A new queue; returns its URL.
    pub async fn queue(&self) -> String {
        let out = self
            .sqs()
            .create_queue()
            .queue_name(unique("rb-q"))
            .send()
            .await
            .expect("create queue");
        out.queue_url.expect("queue url")
    }

    /// The ARN of the queue at `url`.
    pub async fn queue_arn(&self, url: &str) -> String {
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        out.attributes.unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone()
    }

    /// Receives up to 10 messages (all attributes), waiting up to a second.
    pub async fn receive(&self, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let out = self
            .sqs()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        out.messages.unwrap_or_default()
    }

    /// A new event bus whose rule (matching `pattern`) delivers to a new queue; returns the bus
    /// name and the queue URL.
    pub async fn bus_to_queue(&self, pattern: &str) -> (String, String) {
        let eb = aws_sdk_eventbridge::Client::new(&self.sdk);
        let bus = unique("rb-bus");
        eb.create_event_bus().name(&bus).send().await.unwrap();
        let queue = self.queue().await;
        let rule = unique("rb-rule");
        eb.put_rule()
            .name(&rule)
            .event_bus_name(&bus)
            .event_pattern(pattern)
            .send()
            .await
            .unwrap();
        eb.put_targets()
            .rule(&rule)
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("q")
                    .arn(self.queue_arn(&queue).await)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        (bus, queue)
    }

    /// The runbridge state machine, created from `infra/statemachine.asl.json`.
    pub async fn state_machine(&self) -> String {
        let definition = include_str!("../../../infra/statemachine.asl.json")
            .replace(
                "${PollFunctionArn}",
                "arn:aws:lambda:us-east-1:123456789012:function:runbridge-poll",
            )
            .replace(
                "${CollectFunctionArn}",
                "arn:aws:lambda:us-east-1:123456789012:function:runbridge-collect",
            );
        let out = aws_sdk_sfn::Client::new(&self.sdk)
            .create_state_machine()
            .name(unique("rb-sm"))
            .definition(definition)
            .role_arn("arn:aws:iam::123456789012:role/runbridge-state-machine")
            .send()
            .await
            .expect("create state machine");
        out.state_machine_arn
    }
}

/// A unique, lower-case name valid for buckets, queues and state machines.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..20]
    )
}

/// Deterministic pseudo-random bytes (xorshift), so a mismatch is reproducible.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Reads a whole object.
pub async fn read(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

/// Whether an object exists.
pub async fn exists(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    s3.head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

/// Lower-case hex SHA-256.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
