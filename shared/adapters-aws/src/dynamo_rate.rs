//! [`DynamoRateBudget`]: a vendor's request rate budget shared by every Lambda environment of a
//! stack, kept in a DynamoDB table (`RATE_BUDGET_TABLE`).
//!
//! Time is cut into windows of one second (longer when the limit is under one request a
//! second). A window has `seats`, one every [`spacing`] (the limit's period widened by
//! `runbridge_vendors::rate::HEADROOM`), and one item per account and window counts the seats
//! taken (`taken`). A request claims a seat with a conditional `UpdateItem` and is sent at the seat's time, so the
//! requests of all environments together are spaced at least [`spacing`] apart: no sliding
//! second holds more than the limit. (Counting requests per fixed one-second window would not
//! do: ten at the end of one window and ten at the start of the next are twenty within a
//! second.) A full window sends the claim on to the next one at once, rather than waiting for it
//! to open, so environments queue in the table instead of racing at every window's start.
//!
//! A seat already in the past cannot be taken: its request would crowd the seats after it. A
//! claim therefore first asks for the first seat still ahead (when nobody has claimed it or a
//! later one), then for the seat after the last one taken. A seat that went by while it was
//! being claimed (a slow answer) is left unused and another is claimed.
//!
//! The environments' clocks are the Lambda hosts' (synchronised by the Amazon Time Sync
//! Service, well within the headroom). An in-process budget in front of the table keeps one
//! environment's concurrent calls evenly spaced before they reach the table. Items carry a TTL
//! attribute (`expires_at`) an hour after their window, so the table holds only the last hour.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use runbridge_vendors::rate::{spacing, InProcessBudget, RateBudget, RateBudgetError};

use crate::error::sdk_error;

/// The item's key attribute: the account and the window.
pub const KEY_ATTRIBUTE: &str = "pk";
/// The seats of the window taken so far.
const TAKEN: &str = "taken";
/// The table's TTL attribute (seconds since the epoch).
pub const EXPIRES_ATTRIBUTE: &str = "expires_at";
/// How long a window's item is kept after the window ends.
const ITEM_LIFETIME: Duration = Duration::from_secs(3600);
/// How late a seat may still be used: well under the headroom's slack per request.
const LATE_TOLERANCE: Duration = Duration::from_millis(30);

/// A rate budget shared through a DynamoDB table by every environment of a stack.
#[derive(Debug)]
pub struct DynamoRateBudget {
    client: aws_sdk_dynamodb::Client,
    table: String,
    local: InProcessBudget,
}

impl DynamoRateBudget {
    /// The budget kept in `table` (partition key [`KEY_ATTRIBUTE`], a string).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            local: InProcessBudget::new(),
        }
    }

    fn store_error(&self, e: crate::AwsError) -> RateBudgetError {
        RateBudgetError::Store {
            store: format!("dynamodb table {}", self.table),
            message: e.to_string(),
        }
    }

    /// Claims a seat of window `index` of `account`: the first seat still ahead (`first`) or the
    /// one after the last taken. `None`: the window is full.
    async fn claim(
        &self,
        account: &str,
        windows: &Windows,
        index: u64,
        first: u32,
    ) -> Result<Option<u32>, RateBudgetError> {
        let key = AttributeValue::S(format!("{account}#{}#{index}", windows.seats));
        let expires = (windows.start(index) + windows.length + ITEM_LIFETIME.as_secs_f64()) as u64;
        let first_free = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, key.clone())
            .update_expression("SET #taken = :first, #expires = :expires")
            .condition_expression("attribute_not_exists(#taken) OR #taken < :first")
            .expression_attribute_names("#taken", TAKEN)
            .expression_attribute_names("#expires", EXPIRES_ATTRIBUTE)
            .expression_attribute_values(":first", AttributeValue::N(first.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(expires.to_string()))
            .send()
            .await;
        match first_free {
            Ok(_) => return Ok(Some(first)),
            Err(e) if !is_condition_failure(&e) => {
                return Err(self.store_error(sdk_error("dynamodb", "UpdateItem", e)))
            }
            Err(_) => {}
        }
        let next = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, key)
            .update_expression("ADD #taken :one")
            .condition_expression("#taken < :seats")
            .expression_attribute_names("#taken", TAKEN)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":seats", AttributeValue::N(windows.seats.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match next {
            Ok(out) => {
                let taken = out
                    .attributes()
                    .and_then(|a| a.get(TAKEN))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<u32>().ok())
                    .ok_or_else(|| RateBudgetError::Store {
                        store: format!("dynamodb table {}", self.table),
                        message: format!("UpdateItem answered no number `{TAKEN}`"),
                    })?;
                Ok(Some(taken))
            }
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(self.store_error(sdk_error("dynamodb", "UpdateItem", e))),
        }
    }
}

fn is_condition_failure<R>(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        R,
    >,
) -> bool {
    e.as_service_error()
        .is_some_and(|e| e.is_conditional_check_failed_exception())
}

#[async_trait]
impl RateBudget for DynamoRateBudget {
    async fn take(&self, account: &str, per_second: NonZeroU32) -> Result<(), RateBudgetError> {
        self.local.take(account, per_second).await?;
        let windows = Windows::of(per_second);
        loop {
            let now = unix_now();
            let mut index = windows.index(now);
            let (index, seat) = loop {
                if let Some(first) = windows.first_seat_after(index, now) {
                    if let Some(seat) = self.claim(account, &windows, index, first).await? {
                        break (index, seat);
                    }
                }
                index += 1;
            };
            let at = windows.seat_time(index, seat);
            let now = unix_now();
            if now > at + LATE_TOLERANCE.as_secs_f64() {
                tracing::debug!(
                    account,
                    late_ms = ((now - at) * 1000.0) as u64,
                    "rate budget seat went by; claiming another"
                );
                continue;
            }
            if at > now {
                tokio::time::sleep(Duration::from_secs_f64(at - now)).await;
            }
            return Ok(());
        }
    }
}

/// The windows and seats of one limit.
#[derive(Debug, Clone, Copy)]
struct Windows {
    /// Seconds per window.
    length: f64,
    /// Seconds between two seats.
    spacing: f64,
    /// Seats per window: every seat and the first of the next window are `spacing` apart.
    seats: u32,
}

impl Windows {
    fn of(per_second: NonZeroU32) -> Self {
        let spacing = spacing(per_second).as_secs_f64();
        let length = spacing.max(1.0);
        // A little under the quotient, so float rounding never adds a seat.
        let seats = ((length / spacing) - 1e-9).floor().max(1.0) as u32;
        Self {
            length,
            spacing,
            seats,
        }
    }

    fn index(&self, now: f64) -> u64 {
        (now / self.length).floor() as u64
    }

    fn start(&self, index: u64) -> f64 {
        index as f64 * self.length
    }

    /// The time of seat `seat` (from 1) of window `index`.
    fn seat_time(&self, index: u64, seat: u32) -> f64 {
        self.start(index) + f64::from(seat - 1) * self.spacing
    }

    /// The first seat of window `index` not before `now`; `None` when all have gone by.
    fn first_seat_after(&self, index: u64, now: f64) -> Option<u32> {
        let elapsed = (now - self.start(index)).max(0.0);
        let seat = (elapsed / self.spacing).ceil() as u32 + 1;
        (seat <= self.seats).then_some(seat)
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_spaced_across_window_boundaries_so_no_second_holds_more_than_the_limit() {
        for limit in [1u32, 2, 3, 7, 10, 25] {
            let windows = Windows::of(NonZeroU32::new(limit).unwrap());
            let mut times = Vec::new();
            for index in 100..103 {
                for seat in 1..=windows.seats {
                    times.push(windows.seat_time(index, seat));
                }
            }
            for pair in times.windows(2) {
                assert!(
                    pair[1] - pair[0] >= windows.spacing - 1e-9,
                    "{limit}: {pair:?}"
                );
            }
            for (i, start) in times.iter().enumerate() {
                let within = times[i..].iter().filter(|t| **t < start + 1.0).count();
                assert!(within <= limit as usize, "{limit}/s: {within} in a second");
            }
        }
        assert_eq!(Windows::of(NonZeroU32::new(10).unwrap()).seats, 9);
    }

    #[test]
    fn a_seat_gone_by_is_not_offered() {
        let windows = Windows::of(NonZeroU32::new(10).unwrap());
        assert_eq!(windows.first_seat_after(5, 5.0), Some(1));
        assert_eq!(windows.first_seat_after(5, 5.05), Some(2));
        assert_eq!(windows.first_seat_after(5, 5.95), None);
    }
}
