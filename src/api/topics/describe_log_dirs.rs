//! DescribeLogDirs: the one data directory, with the size of every partition (or of the
//! partitions asked for). Total and usable bytes are -1 (unknown), as Kafka reports when it
//! cannot tell.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    DescribeLogDirsRequest, DescribeLogDirsResponse, RequestHeader, TopicName,
};

use crate::api::{blocking, sb, ApiError, Ctx};

/// Handle DescribeLogDirs.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DescribeLogDirsRequest,
) -> Result<DescribeLogDirsResponse, ApiError> {
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
        let dir = std::fs::canonicalize(broker.logs.dir())
            .unwrap_or_else(|_| broker.logs.dir().to_path_buf());
        DescribeLogDirsResult::default()
            .with_log_dir(sb(dir.display().to_string()))
            .with_topics(topics)
            .with_total_bytes(-1)
            .with_usable_bytes(-1)
    })
    .await?;
    Ok(DescribeLogDirsResponse::default().with_results(vec![result]))
}
