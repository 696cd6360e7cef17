//! Tests of the AWS adapters against a moto server (`eval "$(bash scripts/moto.sh start)"`).
//! Without `AWS_ENDPOINT_URL` they are skipped, loudly, unless `CI` is set: then they fail.

mod aws {
    mod checksums;
    mod dlq;
    mod env;
    mod events;
    mod ledger;
    mod rate_budget;
    mod s3_sink;
    mod secrets;
    mod sfn;
    mod slots;
}
