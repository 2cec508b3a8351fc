//! The port contract suite on the AWS adapters, against moto.
#![cfg(feature = "aws")]

#[path = "support/moto.rs"]
mod support;

use berth::store::aws::CallCounter;
use support::moto;

mod dynamodb {
    berth::kv_contract!(async { super::moto().kv(&super::CallCounter::default()).await });
}
mod s3 {
    berth::blob_contract!(async { super::moto().blobs(&super::CallCounter::default()).await });
}
mod sqs {
    berth::queue_contract!(async { super::moto().queue(&super::CallCounter::default()).await });
}
