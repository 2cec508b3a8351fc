//! Authentication and authorization pieces. For now: the signed upload
//! session tokens that let a client follow an upload `Location` to the
//! upload gateway without carrying any other credential.

pub mod upload_token;

pub use upload_token::{SecretSource, UploadKey, UploadSigner, UploadTokenError};
