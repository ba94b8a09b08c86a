//! ApiVersions: the supported table, from [`crate::api::advertised`].

use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader};

use crate::api::{advertised, ApiError, Code, Ctx};

fn table() -> Vec<ApiVersion> {
    advertised()
        .map(|(k, min, max)| {
            ApiVersion::default()
                .with_api_key(k as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

/// The v0 answer to an ApiVersions request at a version we do not know: UNSUPPORTED_VERSION
/// plus our table, so the client retries at a version we share.
pub fn fallback_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(Code::UnsupportedVersion.code())
        .with_api_keys(table())
}

/// The features advertised from ApiVersions v3, as a Kafka 4.3.1 broker of a new cluster
/// answers them (read off one: `kafka-features describe` and its ApiVersions answer), less
/// those of what Sluice does not serve (KIP-1071's `streams.version`). Clients read the
/// finalized levels: `transaction.version` 2 (KIP-890: partitions added implicitly, EndTxn
/// bumps the epoch), `group.version` 1 (KIP-848), `share.version` 1 (KIP-932 share groups).
const FEATURES: &[(&str, i16, i16, i16)] = &[
    // (name, supported min, supported max, finalized level)
    ("eligible.leader.replicas.version", 0, 1, 1),
    ("group.version", 0, 1, 1),
    ("kraft.version", 0, 1, 1),
    // 7 is 3.3-IV3, the oldest KRaft level; 30 is 4.3-IV0.
    ("metadata.version", 7, 30, 30),
    ("share.version", 0, 1, 1),
    ("transaction.version", 0, 2, 2),
];

/// Epoch of the finalized features; they never change on a running Sluice.
const FEATURES_EPOCH: i64 = 1;

/// The supported features answered to a request at `version`. Below v4, those whose minimum
/// is 0 are left out, as Kafka's `ApiVersionsResponse.maybeFilterSupportedFeatureKeys` does
/// (KAFKA-17492): clients before KIP-1022 (Java's kafka-clients up to 3.8, e.g. Spark 3.5's
/// 3.4.1) refuse a `SupportedVersionRange` with minimum 0 and fail every connection.
fn supported_features(version: i16) -> Vec<SupportedFeatureKey> {
    FEATURES
        .iter()
        .filter(|(_, min, _, _)| version >= 4 || *min != 0)
        .map(|(name, min, max, _)| {
            SupportedFeatureKey::default()
                .with_name(crate::api::sb(*name))
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect()
}

/// Handle ApiVersions.
pub(crate) async fn handle(
    _ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    _req: ApiVersionsRequest,
) -> Result<ApiVersionsResponse, ApiError> {
    Ok(ApiVersionsResponse::default()
        .with_api_keys(table())
        .with_supported_features(supported_features(hdr.request_api_version))
        .with_finalized_features_epoch(FEATURES_EPOCH)
        .with_finalized_features(
            FEATURES
                .iter()
                .map(|(name, _, _, level)| {
                    FinalizedFeatureKey::default()
                        .with_name(crate::api::sb(*name))
                        .with_min_version_level(*level)
                        .with_max_version_level(*level)
                })
                .collect(),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SUPPORTED;
    use kafka_protocol::messages::ApiKey;

    #[test]
    fn table_lists_every_supported_key() {
        let t = table();
        assert_eq!(t.len(), SUPPORTED.len());
        let av = t
            .iter()
            .find(|v| v.api_key == ApiKey::ApiVersions as i16)
            .unwrap();
        assert_eq!((av.min_version, av.max_version), (0, 4));
        assert_eq!(fallback_response().error_code, 35);
        let produce = t
            .iter()
            .find(|v| v.api_key == ApiKey::Produce as i16)
            .unwrap();
        assert_eq!(
            produce.min_version, 0,
            "advertised from v0 for old librdkafka"
        );
    }

    #[test]
    fn features_with_minimum_zero_are_left_out_below_v4() {
        let names = |v: i16| -> Vec<String> {
            supported_features(v)
                .iter()
                .map(|f| f.name.to_string())
                .collect()
        };
        assert_eq!(names(3), vec!["metadata.version"]);
        assert_eq!(names(4).len(), FEATURES.len());
        assert!(supported_features(3).iter().all(|f| f.min_version >= 1));
    }
}
