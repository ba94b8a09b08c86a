//! Channel selectors: which channels each event goes to. `replicating` (the default: all
//! channels required except `selector.optional`), `multiplexing` (by a header's value) and
//! `load_balancing` (one channel per event, round robin or random; Flume 1.10+).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::conf::{ConfigError, Context};
use crate::event::Event;

/// Where one event goes: required channels (a failure fails the batch) and optional ones
/// (failures are logged and ignored). Indexes into the source's channel list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Required channel indexes.
    pub required: Vec<usize>,
    /// Optional channel indexes (never also required).
    pub optional: Vec<usize>,
}

/// A configured selector.
#[derive(Debug)]
pub enum Selector {
    /// Every channel; some optional.
    Replicating(Route),
    /// By header value.
    Multiplexing {
        /// Header to read (`selector.header`, default `flume.selector.header`).
        header: String,
        /// Value → route.
        mapping: HashMap<String, Route>,
        /// Route for an absent/blank/unmapped value.
        default: Route,
    },
    /// One channel per event.
    LoadBalancing {
        /// True for `random`, false for `round_robin`.
        random: bool,
        /// Round-robin position.
        next: AtomicUsize,
        /// Number of channels.
        n: usize,
    },
}

impl Selector {
    /// Build from the source's `selector.` context over its `channels` (names, in order).
    /// `Ok(None)`: unknown selector type.
    pub fn build(ctx: &Context, channels: &[String]) -> Result<Option<Selector>, ConfigError> {
        let index = |key: &str, list: &str| -> Result<Vec<usize>, ConfigError> {
            list.split_whitespace()
                .map(|name| {
                    channels.iter().position(|c| c == name).ok_or_else(|| {
                        ctx.error(
                            key,
                            &format!("channel {name} is not one of this source's channels"),
                        )
                    })
                })
                .collect()
        };
        let type_name = ctx.string("type", "replicating");
        match type_name.to_ascii_lowercase().as_str() {
            "replicating" => {
                let optional = index("optional", ctx.get("optional").unwrap_or(""))?;
                let required = (0..channels.len())
                    .filter(|i| !optional.contains(i))
                    .collect();
                Ok(Some(Selector::Replicating(Route { required, optional })))
            }
            "multiplexing" => {
                let header = ctx.string("header", "flume.selector.header");
                let mut mapping: HashMap<String, Route> = HashMap::new();
                let maps = ctx.sub("mapping.");
                for (value, prop) in maps.iter() {
                    let key = format!("mapping.{value}");
                    mapping.entry(value.to_string()).or_default().required =
                        index(&key, &prop.value)?;
                }
                let opts = ctx.sub("optional.");
                for (value, prop) in opts.iter() {
                    let key = format!("optional.{value}");
                    let optional = index(&key, &prop.value)?;
                    let route = mapping.entry(value.to_string()).or_default();
                    // A channel both required and optional counts as required.
                    route.optional = optional
                        .into_iter()
                        .filter(|i| !route.required.contains(i))
                        .collect();
                }
                let default = Route {
                    required: index("default", ctx.get("default").unwrap_or(""))?,
                    optional: Vec::new(),
                };
                Ok(Some(Selector::Multiplexing {
                    header,
                    mapping,
                    default,
                }))
            }
            "load_balancing" => {
                let policy = ctx.string("policy", "round_robin");
                let random = match policy.as_str() {
                    "round_robin" => false,
                    "random" => true,
                    other => {
                        return Err(ctx.error(
                            "policy",
                            &format!("unknown policy {other:?} (round_robin or random)"),
                        ))
                    }
                };
                Ok(Some(Selector::LoadBalancing {
                    random,
                    next: AtomicUsize::new(0),
                    n: channels.len(),
                }))
            }
            _ => Ok(None),
        }
    }

    /// The route for `event`.
    pub fn route(&self, event: &Event) -> Route {
        match self {
            Selector::Replicating(r) => r.clone(),
            Selector::Multiplexing {
                header,
                mapping,
                default,
            } => {
                let value = event
                    .headers
                    .get(header)
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty());
                match value.and_then(|v| mapping.get(v)) {
                    Some(r) if !r.required.is_empty() => r.clone(),
                    Some(r) => Route {
                        required: default.required.clone(),
                        optional: r.optional.clone(),
                    },
                    None => default.clone(),
                }
            }
            Selector::LoadBalancing { random, next, n } => {
                if *n == 0 {
                    return Route::default();
                }
                let i = if *random {
                    usize::try_from(uuid::Uuid::new_v4().as_u128() % (*n as u128)).unwrap_or(0)
                } else {
                    next.fetch_add(1, Ordering::Relaxed) % n
                };
                Route {
                    required: vec![i],
                    optional: Vec::new(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chans() -> Vec<String> {
        vec!["c1".into(), "c2".into(), "c3".into()]
    }

    #[test]
    fn replicating_with_optional() {
        let ctx = Context::from_pairs("a.sources.r.selector.", [("optional", "c3")]);
        let s = Selector::build(&ctx, &chans()).unwrap().unwrap();
        assert_eq!(
            s.route(&Event::new("x")),
            Route {
                required: vec![0, 1],
                optional: vec![2]
            }
        );
    }

    #[test]
    fn multiplexing_routes_by_header_and_defaults() {
        let ctx = Context::from_pairs(
            "a.sources.r.selector.",
            [
                ("type", "multiplexing"),
                ("header", "state"),
                ("mapping.CZ", "c1"),
                ("mapping.US", "c2 c3"),
                ("optional.CZ", "c1 c3"),
                ("default", "c3"),
            ],
        );
        let s = Selector::build(&ctx, &chans()).unwrap().unwrap();
        let cz = s.route(&Event::new("x").with_header("state", "CZ"));
        assert_eq!(
            cz,
            Route {
                required: vec![0],
                optional: vec![2]
            }
        );
        assert_eq!(
            s.route(&Event::new("x").with_header("state", "US"))
                .required,
            vec![1, 2]
        );
        assert_eq!(s.route(&Event::new("x")).required, vec![2]);
        assert_eq!(
            s.route(&Event::new("x").with_header("state", " ")).required,
            vec![2]
        );
    }

    #[test]
    fn unknown_channel_in_selector_is_an_error() {
        let ctx = Context::from_pairs("a.sources.r.selector.", [("optional", "nope")]);
        let err = Selector::build(&ctx, &chans()).unwrap_err();
        assert!(
            err.to_string().contains("a.sources.r.selector.optional"),
            "{err}"
        );
    }
}
