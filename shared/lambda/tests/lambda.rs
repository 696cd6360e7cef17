//! Tests of the Lambda adapters, calling them as the Lambda runtime would, against moto for the
//! AWS side (`eval "$(bash scripts/moto.sh start)"`; skipped loudly without it, failing under CI)
//! and the vendor simulator's signed CSV downloads for collect.

mod lambda {
    pub mod doubles;

    mod collect;
    mod deployed;
    mod profiles;
    mod steps;
    mod stop;
    mod trigger_events;
    mod trigger_sqs;
}
