//! The coordinator against a real `__share_group_state` log in a temp dir: acknowledged
//! state survives a reopen, acquired records come back available, deletes stick.

use super::*;
use crate::log::{LogConfig, LogManager};

fn batch(base: i64, last: i64) -> BatchInfo {
    BatchInfo {
        base,
        last,
        control: false,
        aborted: false,
    }
}

#[test]
fn acknowledged_state_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = ShareGroupConfig::default();
    let t = Uuid::new_v4();
    let key: Key = ("g".into(), t, 0);
    {
        let logs = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        let c = Coordinator::open(&logs).unwrap();
        c.fetch_session("g", "m", 0, &[(t, 0)], &[], false).unwrap();
        assert_eq!(c.prepare_fetch(&key, 0, || 0, &config).unwrap(), Some(0));
        let got = c.acquire(&key, "m", &[batch(0, 9)], 100, &config);
        assert_eq!(got.len(), 1);
        let r = c.acknowledge(
            "g",
            "m",
            vec![((t, 0), vec![(0, 3, vec![1]), (5, 5, vec![3])])],
            &config,
        );
        assert_eq!(r, vec![Ok(())]);
        assert_eq!(c.start_offsets("g"), vec![(t, 0, 4)]);
        // a second group, deleted: it must stay deleted
        c.alter_offsets("h", &[((t, 0), 7)]).unwrap();
        c.delete_group("h").unwrap();
        drop(logs);
    }
    let logs = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
    let c = Coordinator::open(&logs).unwrap();
    assert_eq!(c.start_offsets("g"), vec![(t, 0, 4)]);
    assert!(!c.is_share_group("h"));
    assert_eq!(c.list(), vec![("g".to_string(), "Empty")]);
    // 4 and 6..9 were acquired, never acknowledged: handed out again; 5 was rejected.
    let got = c.acquire(&key, "n", &[batch(0, 9)], 100, &config);
    let offsets: Vec<i64> = got.iter().flat_map(|a| a.first..=a.last).collect();
    assert_eq!(offsets, vec![4, 6, 7, 8, 9]);
}

#[test]
fn sessions_follow_kafkas_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let logs = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
    let c = Coordinator::open(&logs).unwrap();
    let t = Uuid::new_v4();
    assert_eq!(
        c.fetch_session("g", "m", 1, &[], &[], false),
        Err(Code::ShareSessionNotFound)
    );
    assert_eq!(
        c.fetch_session("g", "m", 0, &[(t, 0)], &[], true),
        Err(Code::InvalidRequest)
    );
    c.fetch_session("g", "m", 0, &[(t, 0)], &[], false).unwrap();
    assert_eq!(
        c.fetch_session("g", "m", 2, &[], &[], false),
        Err(Code::InvalidShareSessionEpoch)
    );
    assert_eq!(
        c.fetch_session("g", "m", 1, &[(t, 1)], &[(t, 0)], false),
        Ok(vec![(t, 1)])
    );
    c.acknowledge_session("g", "m", 2).unwrap();
    assert_eq!(
        c.acknowledge_session("g", "m", 0),
        Err(Code::InvalidShareSessionEpoch)
    );
    assert_eq!(
        c.fetch_session("g", "m", 3, &[], &[], false),
        Ok(vec![(t, 1)])
    );
}
