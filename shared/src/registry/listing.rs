//! Paginated listings: tags, the catalog, referrers. Every listing is a
//! query on one partition with a cursor; nothing scans.

use super::keys::{self, attr};
use super::manifests::ReferrerDescriptor;
use super::{Registry, RegistryError, Result};
use crate::oci::name::MAX_NAME_LEN;
use crate::oci::{Digest, RepoName};
use crate::store::Query;

/// The most entries one listing page returns.
pub(crate) const MAX_PAGE: usize = 10_000;

/// A referrers page stops once its descriptors pass this many bytes of
/// JSON (a response must stay far below Lambda's 6 MB; one descriptor's
/// annotations can be large, so pages are cut by size, not count).
pub(crate) const REFERRERS_PAGE_BYTES: usize = 1024 * 1024;

/// The most descriptors one referrers page holds.
pub(crate) const REFERRERS_PAGE_MAX: usize = 1000;

/// One page of the referrers list.
#[derive(Debug, Clone, Default)]
pub struct ReferrersPage {
    pub manifests: Vec<serde_json::Value>,
    /// Set when more follow: the digest to continue after.
    pub next: Option<String>,
}

/// One page of names, and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub names: Vec<String>,
    pub more: bool,
}

impl Registry {
    /// Tags of `repo` in lexical order after `last`, at most `n`.
    pub async fn list_tags(
        &self,
        repo: &RepoName,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Listing> {
        let listing = self
            .list_names(&keys::repo(repo), keys::TAG_PREFIX, n, last)
            .await?;
        if listing.names.is_empty() && last.is_none() && !self.repo_exists(repo).await? {
            return Err(RegistryError::NameUnknown);
        }
        Ok(listing)
    }

    /// Repository names in lexical order after `last`, at most `n`.
    pub async fn catalog(&self, n: Option<usize>, last: Option<&str>) -> Result<Listing> {
        self.list_names(keys::CATALOG, keys::REPO_PREFIX, n, last)
            .await
    }

    async fn repo_exists(&self, repo: &RepoName) -> Result<bool> {
        Ok(self
            .kv
            .get(keys::CATALOG, &keys::catalog_entry(repo))
            .await?
            .is_some())
    }

    async fn list_names(
        &self,
        pk: &str,
        prefix: &str,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Listing> {
        if last.is_some_and(|l| l.len() > MAX_NAME_LEN) {
            return Err(RegistryError::BadParameter(format!(
                "last is longer than any name ({MAX_NAME_LEN} characters)"
            )));
        }
        let want = n.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let mut names = Vec::new();
        if want == 0 {
            return Ok(Listing { names, more: false });
        }
        let mut q = Query::prefix(pk, prefix, want.min(1000));
        q.after = last.map(|l| format!("{prefix}{l}"));
        loop {
            let page = self.kv.query(&q).await?;
            for item in page.items {
                if names.len() == want {
                    return Ok(Listing { names, more: true });
                }
                names.push(item.sk[prefix.len()..].to_owned());
            }
            match page.next {
                Some(next) if names.len() < want => q.after = Some(next),
                Some(_) => return Ok(Listing { names, more: true }),
                None => return Ok(Listing { names, more: false }),
            }
        }
    }

    /// Manifests in `repo` whose subject is `subject`, optionally only
    /// those of one artifact type, as descriptors for an image index; one
    /// page, continuing after the digest `after`.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
        after: Option<&Digest>,
    ) -> Result<ReferrersPage> {
        let mut q = Query::prefix(keys::repo(repo), keys::referrer_prefix(subject), 100);
        q.after = after.map(|a| keys::referrer(subject, a));
        let mut out = ReferrersPage::default();
        let mut bytes = 0;
        loop {
            let page = self.kv.query(&q).await?;
            for item in page.items {
                let Some(doc) = item.b(attr::DOC) else {
                    continue;
                };
                let Ok(d) = serde_json::from_slice::<ReferrerDescriptor>(doc) else {
                    continue;
                };
                if artifact_type.is_some_and(|t| d.artifact_type.as_deref() != Some(t)) {
                    continue;
                }
                if bytes >= REFERRERS_PAGE_BYTES || out.manifests.len() == REFERRERS_PAGE_MAX {
                    out.next = out
                        .manifests
                        .last()
                        .and_then(|m| m.get("digest"))
                        .and_then(|d| d.as_str())
                        .map(str::to_owned);
                    return Ok(out);
                }
                bytes += doc.len();
                out.manifests
                    .push(serde_json::to_value(&d).unwrap_or_default());
            }
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok(out),
            }
        }
    }
}
