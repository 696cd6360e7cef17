//! The checks across states, run on a parsed [`Definition`]: there is at least one state, names
//! are 1 to 80 characters, `StartAt` and every `Next`/`Default`/Catch `Next` name an existing
//! state, and every state is reachable from `StartAt`. Checks within one state's JSON live in
//! [`crate::parse`].

use crate::definition::Definition;
use crate::error::DefinitionError;
use std::collections::{HashSet, VecDeque};

/// Longest state name Step Functions accepts.
const MAX_STATE_NAME: usize = 80;

pub(crate) fn validate(definition: &Definition) -> Result<(), DefinitionError> {
    let Definition {
        start_at, states, ..
    } = definition;
    if states.is_empty() {
        return Err(DefinitionError::invalid(
            "top level",
            "States must not be empty",
        ));
    }
    if let Some(name) = states
        .keys()
        .find(|n| n.is_empty() || n.chars().count() > MAX_STATE_NAME)
    {
        return Err(DefinitionError::invalid(
            format!("state \"{name}\""),
            format!("state names must be 1 to {MAX_STATE_NAME} characters"),
        ));
    }
    if !states.contains_key(start_at) {
        return Err(DefinitionError::MissingTarget {
            location: "top level".into(),
            field: "StartAt".into(),
            target: start_at.clone(),
        });
    }
    for (name, state) in states {
        for (field, target) in state.targets() {
            if !states.contains_key(target) {
                return Err(DefinitionError::MissingTarget {
                    location: format!("state \"{name}\""),
                    field,
                    target: target.to_string(),
                });
            }
        }
    }
    // Step Functions rejects states nothing transitions to; so do we, since one usually means a
    // misspelt Next elsewhere.
    let mut reached: HashSet<&str> = HashSet::from([start_at.as_str()]);
    let mut queue = VecDeque::from([start_at.as_str()]);
    while let Some(name) = queue.pop_front() {
        for (_, target) in states[name].targets() {
            if reached.insert(target) {
                queue.push_back(target);
            }
        }
    }
    if let Some(orphan) = states.keys().find(|n| !reached.contains(n.as_str())) {
        return Err(DefinitionError::invalid(
            format!("state \"{orphan}\""),
            "is not reachable from StartAt",
        ));
    }
    Ok(())
}
