//! Listing the ledger's keys for `list`: by the day index the ledger writes beside its
//! entries (`S3Ledger::day_index_prefix`), or, for a ledger from before the index, its entries
//! themselves; never the queue, history or index records kept under the same prefix.

use super::{sdk_error, Ops};
use crate::exit::CliError;

impl Ops {
    /// Keys in the ledger claimed since `since` (seconds since the epoch; `None`: any time the
    /// ledger keeps), newest day first, with when each was claimed or last written, at most
    /// `limit` of them. Read from the ledger's day index (one listing per day asked about); a
    /// ledger written before the index existed is listed whole instead. Either way only entries
    /// are listed, never the queue, history or index records beside them.
    pub async fn ledger_keys(
        &self,
        since: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, CliError> {
        let ledger = self.ledger()?;
        let index = ledger.day_index_prefix();
        let (_, day_folders) = self.list_folder(&index, usize::MAX).await?;
        let since_day = since
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .map(|t| t.date());
        let mut days: Vec<time::Date> = day_folders
            .iter()
            .filter_map(|folder| {
                let day = folder.strip_prefix(&index)?.trim_end_matches('/');
                time::Date::parse(day, &time::format_description::well_known::Iso8601::DATE).ok()
            })
            .filter(|day| since_day.is_none_or(|since| *day >= since))
            .collect();
        days.sort_unstable_by(|a, b| b.cmp(a));
        let mut keys = Vec::new();
        if day_folders.is_empty() {
            // A ledger from before the day index: its entries, not its subfolders.
            let entries = ledger.object_key("");
            let folder = entries.trim_end_matches(".json");
            let (objects, _) = self.list_folder(folder, limit).await?;
            for (object, modified) in objects {
                if let Some(name) = object
                    .strip_prefix(folder)
                    .and_then(|k| k.strip_suffix(".json"))
                {
                    keys.push((name.to_owned(), modified));
                }
            }
            return Ok(keys);
        }
        for day in days {
            let folder = format!("{index}{day}/");
            let (markers, _) = self.list_folder(&folder, limit - keys.len()).await?;
            for (marker, claimed) in markers {
                if let Some(name) = marker.strip_prefix(&folder) {
                    keys.push((name.to_owned(), claimed));
                }
            }
            if keys.len() >= limit {
                break;
            }
        }
        Ok(keys)
    }

    /// The objects directly in `folder` (key, last modified; at most `limit`) and its
    /// subfolders.
    async fn list_folder(
        &self,
        folder: &str,
        limit: usize,
    ) -> Result<(Vec<(String, i64)>, Vec<String>), CliError> {
        let (mut objects, mut folders) = (Vec::new(), Vec::new());
        let mut token: Option<String> = None;
        loop {
            let out = self
                .s3
                .list_objects_v2()
                .bucket(self.stack.bucket()?)
                .prefix(folder)
                .delimiter("/")
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| sdk_error("s3 ListObjectsV2", &["NoSuchBucket"], e))?;
            folders.extend(
                out.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
            for o in out.contents() {
                if objects.len() >= limit {
                    return Ok((objects, folders));
                }
                if let Some(key) = o.key() {
                    objects.push((key.to_owned(), o.last_modified().map_or(0, |t| t.secs())));
                }
            }
            token = out.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return Ok((objects, folders));
            }
        }
    }
}
