//! S3 [`BlobStore`] adapter.
//!
//! Presigned GET URLs are computed locally by the SDK's presigner (no
//! request is sent). Multipart parts other than the last must be at least
//! 5 MiB; the registry stages smaller chunks (see `registry::uploads`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart as SdkPart};
use bytes::Bytes;

use super::CallCounter;
use crate::store::blob::{BlobError, BlobStore, CompletedPart, ObjectBody};

/// S3's smallest non-final multipart part.
pub const S3_MIN_PART: u64 = 5 * 1024 * 1024;

/// The S3 blob store.
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

fn backend<E: ProvideErrorMetadata + std::error::Error + 'static>(e: E) -> BlobError {
    match e.code() {
        Some("NoSuchKey" | "NotFound") => BlobError::NotFound,
        Some("NoSuchUpload") => BlobError::NoSuchUpload,
        Some("InvalidPart" | "InvalidPartOrder") => BlobError::PartsMismatch,
        Some("InvalidRange") => BlobError::InvalidRange,
        Some(code) => BlobError::Backend(format!("S3 {code}: {}", e.message().unwrap_or(""))),
        None => BlobError::Backend(format!(
            "S3: {}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        )),
    }
}

impl S3BlobStore {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        bucket: &str,
        path_style: bool,
        counter: &CallCounter,
    ) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .interceptor(counter.clone())
            .build();
        Self {
            client: Client::from_conf(conf),
            bucket: bucket.to_owned(),
        }
    }
}

/// Total object size from `Content-Range: bytes a-b/total`.
fn total_from_content_range(v: Option<&str>) -> Option<u64> {
    v?.rsplit('/').next()?.parse().ok()
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(data.len() as i64)
            .body(SdkStream::from(data))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ObjectBody, BlobError> {
        if let Some((s, e)) = range
            && s > e
        {
            return Err(BlobError::InvalidRange);
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range.map(|(s, e)| format!("bytes={s}-{e}")))
            .send()
            .await
            .map_err(backend)?;
        let total_size = match range {
            Some(_) => total_from_content_range(out.content_range()).unwrap_or(0),
            None => out.content_length().unwrap_or(0).max(0) as u64,
        };
        let body = futures_util::stream::unfold(out.body, |mut b| async move {
            match b.try_next().await {
                Ok(Some(chunk)) => Some((Ok(chunk), b)),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e)), b)),
            }
        });
        Ok(ObjectBody {
            total_size,
            body: Box::pin(body),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, BlobError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => Ok(Some(o.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) => match backend(e) {
                BlobError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        let mut out = Vec::new();
        let mut token = None;
        while out.len() < limit {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_start_after(after.map(str::to_owned))
                .set_continuation_token(token.take())
                .max_keys((limit - out.len()).min(1000) as i32)
                .send()
                .await
                .map_err(backend)?;
            out.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn create_multipart(&self, key: &str) -> Result<String, BlobError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(backend)?;
        out.upload_id
            .ok_or_else(|| BlobError::Backend("S3 returned no upload id".to_owned()))
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
    ) -> Result<String, BlobError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number as i32)
            .content_length(data.len() as i64)
            .body(SdkStream::from(data))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // A server error (after the SDK's retries) on an upload that no
            // longer exists is NoSuchUpload: moto 5.2 answers a part sent to
            // a completed upload with a 500, where S3 says NoSuchUpload.
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| r.status().is_server_error()) =>
            {
                let exists = self
                    .client
                    .list_parts()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .max_parts(1)
                    .send()
                    .await;
                return match exists {
                    Err(l) if l.code() == Some("NoSuchUpload") => Err(BlobError::NoSuchUpload),
                    _ => Err(backend(e)),
                };
            }
            Err(e) => return Err(backend(e)),
        };
        out.e_tag
            .ok_or_else(|| BlobError::Backend("S3 returned no ETag for a part".to_owned()))
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), BlobError> {
        let parts = parts
            .iter()
            .map(|p| {
                SdkPart::builder()
                    .part_number(p.number as i32)
                    .e_tag(&p.etag)
                    .build()
            })
            .collect();
        let sent = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // Some emulators (moto 5.2) answer 200 with a differently named
            // XML root the SDK cannot parse. A 200 without an error code
            // means completed; confirm the object exists rather than trust it.
            Err(e)
                if e.code().is_none()
                    && e.raw_response().is_some_and(|r| r.status().as_u16() == 200) =>
            {
                match self.head(key).await? {
                    Some(_) => Ok(()),
                    None => Err(backend(e)),
                }
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), BlobError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<Option<String>, BlobError> {
        let cfg =
            PresigningConfig::expires_in(ttl).map_err(|e| BlobError::Backend(e.to_string()))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(cfg)
            .await
            .map_err(backend)?;
        Ok(Some(req.uri().to_owned()))
    }

    fn min_part_size(&self) -> u64 {
        S3_MIN_PART
    }
}
