//! DescribeLogDirs: the one data directory, with the size of every partition (or of the
//! partitions asked for), and the total and usable bytes of its file system (v4+), as Kafka
//! reports them from the directory's file store. Where they can't be read they are -1, as in
//! Kafka.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    DescribeLogDirsRequest, DescribeLogDirsResponse, RequestHeader, TopicName,
};

use crate::api::{blocking, sb, ApiError, Ctx};
use crate::security::acl::Operation;

/// Handle DescribeLogDirs.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DescribeLogDirsRequest,
) -> Result<DescribeLogDirsResponse, ApiError> {
    // DESCRIBE on the cluster (Kafka: CLUSTER_AUTHORIZATION_FAILED and no directories).
    if !ctx.authorize_cluster(Operation::Describe) {
        return Ok(DescribeLogDirsResponse::default()
            .with_error_code(crate::api::Code::ClusterAuthorizationFailed.code()));
    }
    let broker = std::sync::Arc::clone(ctx.broker);
    let result = blocking(move || {
        let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.topic.0.to_string(), t.partitions))
                .collect()
        });
        let topics = broker
            .logs
            .topics()
            .into_iter()
            .filter_map(|t| {
                let want = match &wanted {
                    None => None,
                    Some(w) => Some(w.iter().find(|(n, _)| n.as_str() == &*t.name)?.1.clone()),
                };
                let parts: Vec<DescribeLogDirsPartition> = t
                    .partitions
                    .iter()
                    .filter(|p| want.as_ref().is_none_or(|w| w.contains(&p.index())))
                    .map(|p| {
                        DescribeLogDirsPartition::default()
                            .with_partition_index(p.index())
                            .with_partition_size(i64::try_from(p.size_bytes()).unwrap_or(i64::MAX))
                    })
                    .collect();
                Some(
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(sb(t.name.to_string())))
                        .with_partitions(parts),
                )
            })
            .collect();
        let (total, usable) = disk_space(broker.logs.dir()).unwrap_or((-1, -1));
        let dir = std::fs::canonicalize(broker.logs.dir())
            .unwrap_or_else(|_| broker.logs.dir().to_path_buf());
        DescribeLogDirsResult::default()
            .with_log_dir(sb(dir.display().to_string()))
            .with_topics(topics)
            .with_total_bytes(total)
            .with_usable_bytes(usable)
    })
    .await?;
    Ok(DescribeLogDirsResponse::default().with_results(vec![result]))
}

/// Total and usable bytes of the file system holding `dir`: Kafka's `FileStore`
/// `getTotalSpace` and `getUsableSpace`, i.e. blocks and blocks available to unprivileged
/// users, times the fragment size.
#[cfg(target_os = "linux")]
fn disk_space(dir: &std::path::Path) -> Option<(i64, i64)> {
    let s = rustix::fs::statvfs(dir).ok()?;
    let total = s.f_blocks.checked_mul(s.f_frsize)?;
    let usable = s.f_bavail.checked_mul(s.f_frsize)?;
    Some((i64::try_from(total).ok()?, i64::try_from(usable).ok()?))
}

/// Not measured off Linux: -1, as Kafka answers when it can't tell.
#[cfg(not(target_os = "linux"))]
fn disk_space(_dir: &std::path::Path) -> Option<(i64, i64)> {
    None
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn disk_space_of_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (total, usable) = super::disk_space(dir.path()).unwrap();
        assert!(
            total > 0 && usable >= 0 && usable <= total,
            "{total} {usable}"
        );
    }
}
