//! The port contract suite: the behaviour every adapter must show.
#![allow(clippy::unwrap_used)]
//!
//! Each case is a plain async function over a port; the macros
//! [`kv_contract!`](crate::kv_contract), [`blob_contract!`](crate::blob_contract)
//! and [`queue_contract!`](crate::queue_contract) expand them into one small
//! `#[tokio::test]` per case for an adapter, so the embedded and the AWS
//! adapters run the very same assertions.

/// Cases for [`Kv`](super::Kv).
pub mod kv {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::store::kv::{Attr, Cond, Item, Kv, KvError, Query, SkRange, TTL_ATTR, WriteOp};
    use crate::store::now_secs;

    fn item(pk: &str, sk: &str, n: i64) -> Item {
        Item::new(pk, sk)
            .with("n", Attr::N(n))
            .with("s", Attr::S(format!("v{n}")))
            .with("b", Attr::B(vec![0, 1, 255]))
    }

    fn unique(p: &str) -> String {
        format!("{p}#{}", uuid::Uuid::new_v4().simple())
    }

    pub async fn put_then_get_round_trips_every_attribute_kind(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        kv.write(WriteOp::put(item(&pk, "a", 7))).await.unwrap();
        assert_eq!(kv.get(&pk, "a").await.unwrap(), Some(item(&pk, "a", 7)));
        assert_eq!(kv.get(&pk, "missing").await.unwrap(), None);
    }

    pub async fn conditional_put_refuses_existing_item(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        let put = |n| WriteOp::Put {
            item: item(&pk, "a", n),
            cond: Cond::NotExists,
        };
        kv.write(put(1)).await.unwrap();
        assert_eq!(
            kv.write(put(2)).await,
            Err(KvError::ConditionFailed { index: 0 })
        );
        assert_eq!(kv.get(&pk, "a").await.unwrap().unwrap().n("n"), Some(1));
    }

    pub async fn version_equality_guards_replacement(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        kv.write(WriteOp::put(item(&pk, "a", 1))).await.unwrap();
        let stale = WriteOp::Put {
            item: item(&pk, "a", 3),
            cond: Cond::Eq("n".into(), Attr::N(2)),
        };
        assert!(matches!(
            kv.write(stale).await,
            Err(KvError::ConditionFailed { .. })
        ));
        let fresh = WriteOp::Put {
            item: item(&pk, "a", 2),
            cond: Cond::Eq("n".into(), Attr::N(1)),
        };
        kv.write(fresh).await.unwrap();
        assert_eq!(kv.get(&pk, "a").await.unwrap().unwrap().n("n"), Some(2));
    }

    pub async fn delete_with_numeric_condition(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        kv.write(WriteOp::put(item(&pk, "a", 10))).await.unwrap();
        let del = |below| WriteOp::Delete {
            pk: pk.clone(),
            sk: "a".into(),
            cond: Cond::Lt("n".into(), below),
        };
        assert!(matches!(
            kv.write(del(10)).await,
            Err(KvError::ConditionFailed { .. })
        ));
        kv.write(del(11)).await.unwrap();
        assert_eq!(kv.get(&pk, "a").await.unwrap(), None);
        // Deleting an absent item is not an error; a condition on it is.
        kv.write(WriteOp::delete(pk.clone(), "a")).await.unwrap();
        assert!(matches!(
            kv.write(del(11)).await,
            Err(KvError::ConditionFailed { .. })
        ));
    }

    pub async fn compound_conditions(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        let put = |cond: Cond| WriteOp::Update {
            pk: pk.clone(),
            sk: "a".into(),
            set: [("m".to_owned(), Attr::N(1))].into(),
            cond,
        };
        let refused = |r: Result<(), KvError>| matches!(r, Err(KvError::ConditionFailed { .. }));
        // On an absent item: Missing holds, Ge does not, Any of both does.
        let absent = WriteOp::Upsert {
            pk: pk.clone(),
            sk: "a".into(),
            add: [("n".to_owned(), 5)].into(),
            set: BTreeMap::new(),
            init: BTreeMap::new(),
            cond: Cond::Any(vec![Cond::Ge("n".into(), 1), Cond::Missing("n".into())]),
        };
        kv.write(absent.clone()).await.unwrap();
        // Now n = 5: Missing("n") fails, Ge(n, 5) holds, Ge(n, 6) fails.
        assert!(refused(kv.write(put(Cond::Missing("n".into()))).await));
        assert!(refused(kv.write(put(Cond::Ge("n".into(), 6))).await));
        kv.write(put(Cond::Ge("n".into(), 5))).await.unwrap();
        kv.write(put(Cond::Missing("zz".into()))).await.unwrap();
        // All needs every part; Any needs one; Always inside is neutral.
        assert!(refused(
            kv.write(put(Cond::All(vec![
                Cond::Ge("n".into(), 5),
                Cond::Lt("n".into(), 5)
            ])))
            .await
        ));
        kv.write(put(Cond::All(vec![
            Cond::Always,
            Cond::Ge("n".into(), 5),
            Cond::Lt("n".into(), 6),
            Cond::Eq("m".into(), Attr::N(1)),
        ])))
        .await
        .unwrap();
        kv.write(put(Cond::Any(vec![
            Cond::Lt("n".into(), 0),
            Cond::Eq("m".into(), Attr::N(1)),
        ])))
        .await
        .unwrap();
        assert!(refused(
            kv.write(put(Cond::Any(vec![
                Cond::Lt("n".into(), 0),
                Cond::NotExists
            ])))
            .await
        ));
        kv.write(put(Cond::Any(vec![Cond::Lt("n".into(), 0), Cond::Always])))
            .await
            .unwrap();
        // A delete guarded by a conjunction, as the collector deletes.
        let del = |below| WriteOp::Delete {
            pk: pk.clone(),
            sk: "a".into(),
            cond: Cond::All(vec![
                Cond::Eq("m".into(), Attr::N(1)),
                Cond::Lt("n".into(), below),
            ]),
        };
        assert!(refused(kv.write(del(5)).await));
        kv.write(del(6)).await.unwrap();
        assert_eq!(kv.get(&pk, "a").await.unwrap(), None);
    }

    pub async fn upsert_counts_without_lost_updates(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        // Creates the item; `init` only where absent; `set` always.
        let op = |delta: i64, tag: &str| WriteOp::Upsert {
            pk: pk.clone(),
            sk: "c".into(),
            add: [("n".to_owned(), delta)].into(),
            set: [("last".to_owned(), Attr::S(tag.to_owned()))].into(),
            init: [("first".to_owned(), Attr::S(tag.to_owned()))].into(),
            cond: Cond::Always,
        };
        kv.write(op(2, "a")).await.unwrap();
        kv.write(op(-1, "b")).await.unwrap();
        let got = kv.get(&pk, "c").await.unwrap().unwrap();
        assert_eq!(
            (got.n("n"), got.s("first"), got.s("last")),
            (Some(1), Some("a"), Some("b"))
        );
        // Concurrent increments all count.
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let kv = kv.clone();
            let pk = pk.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    match kv.write(WriteOp::count(pk.clone(), "c", "n", 1)).await {
                        Err(KvError::Conflict) => continue,
                        r => return r,
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(kv.get(&pk, "c").await.unwrap().unwrap().n("n"), Some(17));
        // With a condition: only on an existing item.
        let guarded = WriteOp::Upsert {
            pk: pk.clone(),
            sk: "absent".into(),
            add: [("n".to_owned(), 1)].into(),
            set: Default::default(),
            init: Default::default(),
            cond: Cond::Exists,
        };
        assert!(matches!(
            kv.write(guarded).await,
            Err(KvError::ConditionFailed { .. })
        ));
        assert_eq!(kv.get(&pk, "absent").await.unwrap(), None);
    }

    pub async fn reverse_queries_page_downwards(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        for sk in ["a#1", "a#2", "a#3", "a#4", "b#1"] {
            kv.write(WriteOp::put(item(&pk, sk, 1))).await.unwrap();
        }
        let mut q = Query::prefix(pk.clone(), "a#", 3).reversed();
        let first = kv.query(&q).await.unwrap();
        let sks: Vec<&str> = first.items.iter().map(|i| i.sk.as_str()).collect();
        assert_eq!(sks, ["a#4", "a#3", "a#2"]);
        q.after = first.next.clone();
        assert_eq!(q.after.as_deref(), Some("a#2"));
        let second = kv.query(&q).await.unwrap();
        let sks: Vec<&str> = second.items.iter().map(|i| i.sk.as_str()).collect();
        assert_eq!(sks, ["a#1"]);
        assert!(
            second.next.is_none()
                || kv
                    .query(&Query {
                        after: second.next,
                        ..q.clone()
                    })
                    .await
                    .unwrap()
                    .items
                    .is_empty()
        );
        let all = kv
            .query(&Query {
                pk: pk.clone(),
                range: SkRange::All,
                limit: 10,
                after: None,
                reverse: true,
            })
            .await
            .unwrap();
        assert_eq!(all.items.first().map(|i| i.sk.as_str()), Some("b#1"));
        assert_eq!(all.items.len(), 5);
    }

    pub async fn update_sets_attributes_only_on_existing_items(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        let upd = WriteOp::Update {
            pk: pk.clone(),
            sk: "a".into(),
            set: [
                ("n".to_owned(), Attr::N(5)),
                ("x".to_owned(), Attr::S("new".into())),
            ]
            .into(),
            cond: Cond::Always,
        };
        assert!(matches!(
            kv.write(upd.clone()).await,
            Err(KvError::ConditionFailed { .. })
        ));
        kv.write(WriteOp::put(item(&pk, "a", 1))).await.unwrap();
        kv.write(upd).await.unwrap();
        let got = kv.get(&pk, "a").await.unwrap().unwrap();
        assert_eq!(
            (got.n("n"), got.s("x"), got.s("s")),
            (Some(5), Some("new"), Some("v1"))
        );
    }

    pub async fn transaction_is_all_or_nothing(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        kv.write(WriteOp::put(item(&pk, "exists", 1)))
            .await
            .unwrap();
        let ops = vec![
            WriteOp::put(item(&pk, "new1", 1)),
            WriteOp::Delete {
                pk: pk.clone(),
                sk: "exists".into(),
                cond: Cond::Always,
            },
            WriteOp::Check {
                pk: pk.clone(),
                sk: "nothing".into(),
                cond: Cond::Exists,
            },
        ];
        assert_eq!(
            kv.transact(ops).await,
            Err(KvError::ConditionFailed { index: 2 })
        );
        assert_eq!(kv.get(&pk, "new1").await.unwrap(), None);
        assert!(kv.get(&pk, "exists").await.unwrap().is_some());

        let ops = vec![
            WriteOp::put(item(&pk, "new1", 1)),
            WriteOp::Delete {
                pk: pk.clone(),
                sk: "exists".into(),
                cond: Cond::Exists,
            },
            WriteOp::Check {
                pk: pk.clone(),
                sk: "nothing".into(),
                cond: Cond::NotExists,
            },
        ];
        kv.transact(ops).await.unwrap();
        assert!(kv.get(&pk, "new1").await.unwrap().is_some());
        assert_eq!(kv.get(&pk, "exists").await.unwrap(), None);
    }

    pub async fn transaction_limits_match_dynamodb(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        let many: Vec<_> = (0..101)
            .map(|i| WriteOp::put(item(&pk, &format!("k{i:03}"), i)))
            .collect();
        assert_eq!(kv.transact(many).await, Err(KvError::InvalidTransaction));
        let hundred: Vec<_> = (0..100)
            .map(|i| WriteOp::put(item(&pk, &format!("k{i:03}"), i)))
            .collect();
        kv.transact(hundred).await.unwrap();
        let twice = vec![
            WriteOp::put(item(&pk, "a", 1)),
            WriteOp::delete(pk.clone(), "a"),
        ];
        assert_eq!(kv.transact(twice).await, Err(KvError::InvalidTransaction));
    }

    pub async fn query_pages_by_prefix_in_order(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        let other = unique("T");
        for i in (0..25).rev() {
            kv.write(WriteOp::put(item(&pk, &format!("TAG#{i:02}"), i)))
                .await
                .unwrap();
        }
        kv.write(WriteOp::put(item(&pk, "MANIFEST#x", 0)))
            .await
            .unwrap();
        kv.write(WriteOp::put(item(&pk, "ZZZ", 0))).await.unwrap();
        kv.write(WriteOp::put(item(&other, "TAG#00", 0)))
            .await
            .unwrap();
        let mut q = Query::prefix(pk.clone(), "TAG#", 10);
        let mut seen = Vec::new();
        loop {
            let page = kv.query(&q).await.unwrap();
            assert!(page.items.len() <= 10);
            seen.extend(page.items.iter().map(|i| i.n("n").unwrap()));
            match page.next {
                Some(n) => q.after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
        let between = Query {
            pk: pk.clone(),
            range: SkRange::Between("TAG#05".into(), "TAG#07".into()),
            limit: 100,
            after: None,
            reverse: false,
        };
        let got: Vec<_> = kv
            .query(&between)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|i| i.sk)
            .collect();
        assert_eq!(got, ["TAG#05", "TAG#06", "TAG#07"]);
        // Open-ended lower bound and empty prefix (the sweeper's and the
        // embedded queue's shapes; DynamoDB refuses empty key values).
        let up_to = Query {
            pk: pk.clone(),
            range: SkRange::Between(String::new(), "TAG#01".into()),
            limit: 100,
            after: None,
            reverse: false,
        };
        let got: Vec<_> = kv.query(&up_to).await.unwrap().items;
        let got: Vec<_> = got.into_iter().map(|i| i.sk).collect();
        assert_eq!(got, ["MANIFEST#x", "TAG#00", "TAG#01"]);
        let all = kv.query(&Query::prefix(pk.clone(), "", 100)).await.unwrap();
        assert_eq!(all.items.len(), 27);
        let empty = kv
            .query(&Query::prefix(pk.clone(), "NOPE#", 5))
            .await
            .unwrap();
        assert_eq!(empty, Default::default());
    }

    pub async fn batch_get_answers_in_key_order(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        for i in 0..3 {
            kv.write(WriteOp::put(item(&pk, &format!("k{i}"), i)))
                .await
                .unwrap();
        }
        let keys: Vec<_> = ["k2", "zz", "k0", "k1"]
            .iter()
            .map(|s| (pk.clone(), (*s).to_owned()))
            .collect();
        let got: Vec<_> = kv
            .batch_get(&keys)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.and_then(|i| i.n("n")))
            .collect();
        assert_eq!(got, [Some(2), None, Some(0), Some(1)]);
        assert!(kv.batch_get(&[]).await.unwrap().is_empty());
    }

    pub async fn expired_items_are_invisible(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        let past = item(&pk, "old", 1).with(TTL_ATTR, Attr::N(now_secs() - 10));
        let future = item(&pk, "new", 2).with(TTL_ATTR, Attr::N(now_secs() + 3600));
        kv.write(WriteOp::put(past)).await.unwrap();
        kv.write(WriteOp::put(future)).await.unwrap();
        assert_eq!(kv.get(&pk, "old").await.unwrap(), None);
        assert!(kv.get(&pk, "new").await.unwrap().is_some());
        let page = kv
            .query(&Query {
                pk: pk.clone(),
                range: SkRange::All,
                limit: 10,
                after: None,
                reverse: false,
            })
            .await
            .unwrap();
        assert_eq!(
            page.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(),
            ["new"]
        );
        // An expired item does not block a create.
        kv.write(WriteOp::Put {
            item: item(&pk, "old", 3),
            cond: Cond::NotExists,
        })
        .await
        .unwrap();
    }

    pub async fn concurrent_creates_have_one_winner(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let kv = kv.clone();
                let pk = pk.clone();
                tokio::spawn(async move {
                    kv.write(WriteOp::Put {
                        item: item(&pk, "one", i),
                        cond: Cond::NotExists,
                    })
                    .await
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1);
    }

    pub async fn large_binary_attributes_survive(kv: Arc<dyn Kv>) {
        let pk = unique("T");
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        kv.write(WriteOp::put(
            Item::new(&pk, "big").with("b", Attr::B(big.clone())),
        ))
        .await
        .unwrap();
        assert_eq!(
            kv.get(&pk, "big").await.unwrap().unwrap().b("b"),
            Some(big.as_slice())
        );
    }
}

/// Cases for [`BlobStore`](super::BlobStore).
pub mod blob {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    use crate::store::blob::{BlobError, BlobStore, CompletedPart, read_all};

    fn key(p: &str) -> String {
        format!("contract/{p}/{}", uuid::Uuid::new_v4().simple())
    }

    async fn read_stream(mut body: crate::store::ByteStream) -> Vec<u8> {
        let mut got = Vec::new();
        while let Some(c) = futures_util::StreamExt::next(&mut body).await {
            got.extend_from_slice(&c.unwrap());
        }
        got
    }

    fn pattern(len: usize, seed: u8) -> Bytes {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>()
            .into()
    }

    pub async fn put_get_head_delete(store: Arc<dyn BlobStore>) {
        let k = key("a");
        assert_eq!(store.head(&k).await.unwrap(), None);
        assert!(matches!(
            store.get(&k, None).await,
            Err(BlobError::NotFound)
        ));
        store.put(&k, pattern(1000, 1)).await.unwrap();
        assert_eq!(store.head(&k).await.unwrap(), Some(1000));
        assert_eq!(
            read_all(store.as_ref(), &k).await.unwrap(),
            pattern(1000, 1)
        );
        store.delete(&k).await.unwrap();
        store.delete(&k).await.unwrap();
        assert_eq!(store.head(&k).await.unwrap(), None);
    }

    pub async fn ranged_get(store: Arc<dyn BlobStore>) {
        let k = key("r");
        let data = pattern(5000, 2);
        store.put(&k, data.clone()).await.unwrap();
        let mut obj = store.get(&k, Some((100, 199))).await.unwrap();
        assert_eq!(obj.total_size, 5000);
        let mut got = Vec::new();
        while let Some(c) = futures_util::StreamExt::next(&mut obj.body).await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, data[100..200]);
        // An end past the object is clamped, as HTTP and S3 do.
        let obj = store.get(&k, Some((4990, 6000))).await.unwrap();
        assert_eq!(obj.total_size, 5000);
        assert_eq!(read_stream(obj.body).await, data[4990..]);
        assert!(matches!(
            store.get(&k, Some((5000, 5001))).await,
            Err(BlobError::InvalidRange)
        ));
        assert!(matches!(
            store.get(&k, Some((10, 5))).await,
            Err(BlobError::InvalidRange)
        ));
    }

    /// Opens a multipart upload of `k` and uploads `parts` as 1, 2, ….
    async fn upload_parts(
        store: &dyn BlobStore,
        k: &str,
        parts: &[Bytes],
    ) -> (String, Vec<CompletedPart>) {
        let id = store.create_multipart(k).await.unwrap();
        let mut done = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let number = i as u32 + 1;
            let etag = store.upload_part(k, &id, number, p.clone()).await.unwrap();
            done.push(CompletedPart { number, etag });
        }
        (id, done)
    }

    pub async fn multipart_joins_parts_in_order(store: Arc<dyn BlobStore>) {
        let k = key("mp");
        let min = store.min_part_size().max(1) as usize;
        let parts = [pattern(min, 3), pattern(min, 4), pattern(123, 5)];
        let (id, mut done) = upload_parts(store.as_ref(), &k, &parts).await;
        // A retried part replaces the first attempt.
        let etag = store
            .upload_part(&k, &id, 3, parts[2].clone())
            .await
            .unwrap();
        done[2].etag = etag;
        assert_eq!(
            store.head(&k).await.unwrap(),
            None,
            "nothing visible before completion"
        );
        store.complete_multipart(&k, &id, &done).await.unwrap();
        let want: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(read_all(store.as_ref(), &k).await.unwrap(), want);
    }

    /// Two writers of one part: completing with the loser's ETag must fail,
    /// never assemble the other writer's bytes under the first one's name.
    pub async fn completion_with_an_overwritten_part_fails(store: Arc<dyn BlobStore>) {
        let k = key("race");
        let id = store.create_multipart(&k).await.unwrap();
        let first = store
            .upload_part(&k, &id, 1, pattern(1000, 7))
            .await
            .unwrap();
        let second = store
            .upload_part(&k, &id, 1, pattern(1000, 8))
            .await
            .unwrap();
        assert_ne!(first, second);
        let stale = [CompletedPart {
            number: 1,
            etag: first,
        }];
        assert_eq!(
            store.complete_multipart(&k, &id, &stale).await,
            Err(BlobError::PartsMismatch)
        );
        let current = [CompletedPart {
            number: 1,
            etag: second,
        }];
        store.complete_multipart(&k, &id, &current).await.unwrap();
        assert_eq!(
            read_all(store.as_ref(), &k).await.unwrap(),
            pattern(1000, 8)
        );
    }

    /// A request that died after writing part `n + 1` but before recording
    /// it leaves one part more than the caller names: completing with the
    /// parts it names, a prefix, stores exactly those bytes (S3 accepts a
    /// subset of the uploaded parts and drops the rest).
    pub async fn completion_with_a_prefix_of_the_parts(store: Arc<dyn BlobStore>) {
        let k = key("prefix");
        let min = store.min_part_size().max(1) as usize;
        let parts = [pattern(min, 9), pattern(min, 10), pattern(123, 11)];
        let (id, done) = upload_parts(store.as_ref(), &k, &parts).await;
        store.complete_multipart(&k, &id, &done[..2]).await.unwrap();
        let want: Vec<u8> = parts[..2].iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(read_all(store.as_ref(), &k).await.unwrap(), want);
        assert_eq!(store.head(&k).await.unwrap(), Some(want.len() as u64));
    }

    pub async fn aborted_multipart_leaves_nothing(store: Arc<dyn BlobStore>) {
        let k = key("ab");
        let id = store.create_multipart(&k).await.unwrap();
        store.upload_part(&k, &id, 1, pattern(10, 6)).await.unwrap();
        store.abort_multipart(&k, &id).await.unwrap();
        assert_eq!(store.head(&k).await.unwrap(), None);
        assert!(store.upload_part(&k, &id, 2, pattern(10, 6)).await.is_err());
    }

    pub async fn list_by_prefix(store: Arc<dyn BlobStore>) {
        let base = key("ls");
        for n in ["c", "a", "b/x"] {
            store
                .put(&format!("{base}/{n}"), Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        let all = store.list(&format!("{base}/"), None, 10).await.unwrap();
        assert_eq!(
            all,
            [
                format!("{base}/a"),
                format!("{base}/b/x"),
                format!("{base}/c")
            ]
        );
        let after = store
            .list(&format!("{base}/"), Some(&format!("{base}/a")), 1)
            .await
            .unwrap();
        assert_eq!(after, [format!("{base}/b/x")]);
    }

    pub async fn presigned_urls_are_short_lived_or_absent(store: Arc<dyn BlobStore>) {
        let k = key("p");
        store.put(&k, Bytes::from_static(b"x")).await.unwrap();
        if let Some(url) = store
            .presign_get(&k, Duration::from_secs(300))
            .await
            .unwrap()
        {
            assert!(url.contains("X-Amz-Expires=300"), "{url}");
        }
    }
}

/// Cases for [`Queue`](super::Queue).
pub mod queue {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use crate::store::queue::{Job, Queue};

    pub async fn sent_jobs_are_received_once_until_acked(q: Arc<dyn Queue>) {
        let sent: Vec<Job> = (0..5)
            .map(|i| Job::new("test.job", serde_json::json!({ "i": i })))
            .collect();
        for j in &sent {
            q.send(j).await.unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..10 {
            let batch = q.receive(10).await.unwrap();
            for r in batch {
                q.ack(&r.receipt).await.unwrap();
                got.push(r.job);
            }
            if got.len() >= sent.len() {
                break;
            }
        }
        let ids = |v: &[Job]| v.iter().map(|j| j.id.clone()).collect::<BTreeSet<_>>();
        assert_eq!(ids(&got), ids(&sent));
        assert!(q.receive(10).await.unwrap().is_empty());
    }
}

/// Expands the [`kv`] cases into tests; `$make` is an async expression
/// yielding `Arc<dyn Kv>`.
#[macro_export]
macro_rules! kv_contract {
    ($make:expr) => {
        $crate::__contract_cases!($crate::store::contract::kv, $make;
            put_then_get_round_trips_every_attribute_kind, conditional_put_refuses_existing_item,
            version_equality_guards_replacement, delete_with_numeric_condition,
            update_sets_attributes_only_on_existing_items, upsert_counts_without_lost_updates,
            compound_conditions,
            reverse_queries_page_downwards,
            transaction_is_all_or_nothing,
            transaction_limits_match_dynamodb, query_pages_by_prefix_in_order,
            batch_get_answers_in_key_order, expired_items_are_invisible,
            concurrent_creates_have_one_winner, large_binary_attributes_survive);
    };
}

/// Expands the [`blob`] cases into tests.
#[macro_export]
macro_rules! blob_contract {
    ($make:expr) => {
        $crate::__contract_cases!($crate::store::contract::blob, $make;
            put_get_head_delete, ranged_get, multipart_joins_parts_in_order,
            aborted_multipart_leaves_nothing, completion_with_an_overwritten_part_fails, list_by_prefix,
            presigned_urls_are_short_lived_or_absent, completion_with_a_prefix_of_the_parts);
    };
}

/// Expands the [`queue`] cases into tests.
#[macro_export]
macro_rules! queue_contract {
    ($make:expr) => {
        $crate::__contract_cases!($crate::store::contract::queue, $make; sent_jobs_are_received_once_until_acked);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __contract_cases {
    ($module:path, $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                use $module as cases;
                cases::$case($make.await).await;
            }
        )+
    };
}

#[cfg(all(test, feature = "local"))]
mod embedded {
    use std::sync::Arc;

    use crate::store::fs_blob::FsBlobStore;
    use crate::store::local_queue::LocalQueue;
    use crate::store::redb_kv::RedbKv;
    use crate::store::{BlobStore, Kv, Queue};

    fn kv() -> Arc<dyn Kv> {
        let dir = tempfile::tempdir().unwrap().keep();
        Arc::new(RedbKv::open(&dir.join("meta.redb")).unwrap())
    }

    async fn blobs() -> Arc<dyn BlobStore> {
        let dir = tempfile::tempdir().unwrap().keep();
        Arc::new(FsBlobStore::open(&dir).await.unwrap())
    }

    fn queue() -> Arc<dyn Queue> {
        Arc::new(LocalQueue::new(
            kv(),
            "test",
            std::time::Duration::from_secs(30),
        ))
    }

    mod redb_kv {
        crate::kv_contract!(async { super::kv() });
    }
    mod fs_blob {
        crate::blob_contract!(super::blobs());
    }
    mod local_queue {
        crate::queue_contract!(async { super::queue() });
    }
}
