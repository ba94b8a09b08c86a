//! ApiVersions: the supported table, from [`crate::api::advertised`].

use kafka_protocol::messages::api_versions_response::ApiVersion;
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

/// Handle ApiVersions.
pub(crate) async fn handle(
    _ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    _req: ApiVersionsRequest,
) -> Result<ApiVersionsResponse, ApiError> {
    Ok(ApiVersionsResponse::default().with_api_keys(table()))
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
}
