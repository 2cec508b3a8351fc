//! The directory: users, projects, members, robot accounts, cookie
//! sessions and settings, over the metadata port.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `USER#<name>` | `META` | user record (JSON `doc`) |
//! | `USER#<name>` | `MEMBEROF#<project>` | the user's role in a project (reverse index) |
//! | `USERID#<id>` | `META` | id → name |
//! | `USERS` | `<name>` | listing index |
//! | `PROJECT#<name>` | `META` | project record |
//! | `PROJECT#<name>` | `MEMBER#<user>` | membership: role |
//! | `PROJECTID#<id>` | `META` | id → name |
//! | `PROJECTS` | `<name>` | listing index (with `public`) |
//! | `ROBOT#<full name>` | `META` | robot record (secret as SHA-256) |
//! | `ROBOTID#<id>` | `META` | id → full name |
//! | `ROBOTS` | `<full name>` | listing index (level, project) |
//! | `COUNTER` | `<kind>` | last id given out |
//! | `SESSION#<sha256 of id>` | `META` | cookie session: user, CSRF token, TTL |
//! | `SETTINGS` | `META` | system settings |
//! | `KEYS` | `JWKS` | the token service's public keys |
//!
//! Every create is one transaction whose `NotExists` conditions make a
//! second writer of the same name fail cleanly ([`DirectoryError::Conflict`]);
//! ids come from a counter moved by a conditional write.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::password;
use super::rbac::{RobotPermission, Role};
use crate::store::{Attr, Cond, Item, Kv, KvError, Query, WriteOp};

pub const ADMIN_USER: &str = "admin";
pub const LIBRARY_PROJECT: &str = "library";
/// Harbor's robot name prefix.
pub const ROBOT_PREFIX: &str = "robot$";
const DOC: &str = "doc";
const META: &str = "META";

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Kv(#[from] KvError),
}

pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub realname: String,
    #[serde(default)]
    pub comment: String,
    pub admin: bool,
    /// argon2id PHC string.
    pub hash: String,
    /// Credential generation: bumped by every password change, so refresh
    /// tokens and sessions issued before it stop working.
    pub cred: i64,
    pub created: i64,
    pub updated: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub public: bool,
    pub owner_id: i64,
    pub owner_name: String,
    pub created: i64,
    pub updated: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: i64,
    pub project: String,
    pub project_id: i64,
    pub entity_id: i64,
    pub entity_name: String,
    pub role: i64,
}

impl Member {
    pub fn role(&self) -> Option<Role> {
        Role::from_id(self.role)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Robot {
    pub id: i64,
    /// The full name: `robot$<project>+<name>` or `robot$<name>`.
    pub name: String,
    /// `system` or `project`.
    pub level: String,
    /// The project of a project-level robot.
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub project_id: i64,
    #[serde(default)]
    pub description: String,
    pub secret_digest: String,
    pub disable: bool,
    /// Days it lives (`-1`: never expires).
    pub duration: i64,
    /// Epoch seconds it expires at (`-1`: never).
    pub expires_at: i64,
    pub permissions: Vec<RobotPermission>,
    pub cred: i64,
    pub created: i64,
    pub updated: i64,
}

impl Robot {
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at >= 0 && self.expires_at <= now
    }
}

/// Who is asking.
#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    User(User),
    Robot(Robot),
}

impl Principal {
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "",
            Principal::User(u) => &u.username,
            Principal::Robot(r) => &r.name,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::User(u) if u.admin)
    }

    pub fn cred(&self) -> i64 {
        match self {
            Principal::Anonymous => 0,
            Principal::User(u) => u.cred,
            Principal::Robot(r) => r.cred,
        }
    }
}

/// System settings (Harbor's `/configurations` subset that identity uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Anyone may sign up (`self_registration`); off by default.
    #[serde(default)]
    pub self_registration: bool,
    /// `everyone` or `adminonly` (`project_creation_restriction`).
    #[serde(default = "default_creation")]
    pub project_creation_restriction: String,
    /// Outbound targets (webhooks, registry endpoints) may be loopback or
    /// private addresses (`webhook_allow_private`); unset: the process
    /// default (`BERTH_WEBHOOK_ALLOW_PRIVATE`, `--webhook-allow-private`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_allow_private: Option<bool>,
}

fn default_creation() -> String {
    "everyone".to_owned()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            self_registration: false,
            project_creation_restriction: default_creation(),
            webhook_allow_private: None,
        }
    }
}

/// A cookie session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    pub cred: i64,
}

/// Session cookies live 30 minutes after the last request that renewed them.
pub const SESSION_TTL_SECS: i64 = 1800;

fn encode<T: Serialize>(v: &T) -> Attr {
    Attr::S(serde_json::to_string(v).unwrap_or_default())
}

fn decode<T: for<'de> Deserialize<'de>>(item: &Item) -> Result<T> {
    let s = item
        .s(DOC)
        .ok_or_else(|| DirectoryError::Corrupt(format!("{} has no document", item.pk)))?;
    serde_json::from_str(s).map_err(|e| DirectoryError::Corrupt(format!("{}: {e}", item.pk)))
}

pub mod keys {
    pub fn user(name: &str) -> String {
        format!("USER#{name}")
    }
    pub fn user_id(id: i64) -> String {
        format!("USERID#{id}")
    }
    pub const USERS: &str = "USERS";
    pub fn project(name: &str) -> String {
        format!("PROJECT#{name}")
    }
    pub fn project_id(id: i64) -> String {
        format!("PROJECTID#{id}")
    }
    pub const PROJECTS: &str = "PROJECTS";
    pub fn member(user: &str) -> String {
        format!("MEMBER#{user}")
    }
    pub const MEMBER_PREFIX: &str = "MEMBER#";
    pub fn member_of(project: &str) -> String {
        format!("MEMBEROF#{project}")
    }
    pub const MEMBER_OF_PREFIX: &str = "MEMBEROF#";
    pub fn robot(name: &str) -> String {
        format!("ROBOT#{name}")
    }
    pub fn robot_id(id: i64) -> String {
        format!("ROBOTID#{id}")
    }
    pub const ROBOTS: &str = "ROBOTS";
    pub const COUNTER: &str = "COUNTER";
    pub fn session(id_hash: &str) -> String {
        format!("SESSION#{id_hash}")
    }
    pub const SETTINGS: &str = "SETTINGS";
    pub const KEYS: &str = "KEYS";
    pub const JWKS: &str = "JWKS";
}

/// Harbor's user-name rules: 1 to 255 characters, none of `,"~#$%:` or
/// whitespace (so no user name can look like a robot's).
pub fn check_username(name: &str) -> Result<()> {
    let bad = |c: char| c.is_whitespace() || ",\"~#$%:/\\".contains(c) || c.is_control();
    if name.is_empty() || name.len() > 255 || name.chars().any(bad) {
        return Err(DirectoryError::Invalid(format!(
            "user name {name:?} is invalid: 1 to 255 characters, no spaces and none of , \" ~ # $ % : / \\"
        )));
    }
    Ok(())
}

/// Project names: one lowercase path component of a repository name.
pub fn check_project_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.contains('/')
        && name.parse::<crate::oci::RepoName>().is_ok();
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!(
            "project name {name:?} is invalid: lowercase letters, digits and . _ - between them"
        )))
    }
}

/// The directory service.
#[derive(Clone)]
pub struct Directory {
    kv: Arc<dyn Kv>,
}

impl Directory {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.kv
    }

    async fn get_doc<T: for<'de> Deserialize<'de>>(&self, pk: &str, sk: &str) -> Result<Option<T>> {
        match self.kv.get(pk, sk).await? {
            Some(item) => decode(&item).map(Some),
            None => Ok(None),
        }
    }

    /// A new id of `kind` (users, projects, members, robots).
    pub async fn next_id(&self, kind: &str) -> Result<i64> {
        for _ in 0..50 {
            let current = self.kv.get(keys::COUNTER, kind).await?;
            let n = current.as_ref().and_then(|i| i.n("n")).unwrap_or(0);
            let cond = match current {
                Some(_) => Cond::Eq("n".to_owned(), Attr::N(n)),
                None => Cond::NotExists,
            };
            let item = Item::new(keys::COUNTER, kind).with("n", Attr::N(n + 1));
            match self.kv.write(WriteOp::Put { item, cond }).await {
                Ok(()) => return Ok(n + 1),
                Err(KvError::ConditionFailed { .. } | KvError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DirectoryError::Kv(KvError::Conflict))
    }

    // ---- users ----------------------------------------------------------

    pub async fn user(&self, name: &str) -> Result<Option<User>> {
        self.get_doc(&keys::user(name), META).await
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        let Some(item) = self.kv.get(&keys::user_id(id), META).await? else {
            return Ok(None);
        };
        match item.s("name") {
            Some(name) => self.user(name).await,
            None => Ok(None),
        }
    }

    /// Creates a user (password already checked against the rules).
    pub async fn create_user(&self, mut user: User, password: &str) -> Result<User> {
        check_username(&user.username)?;
        if self.user(&user.username).await?.is_some() {
            return Err(DirectoryError::Conflict(format!(
                "user {} already exists",
                user.username
            )));
        }
        user.hash = password::hash_password(password).map_err(DirectoryError::Invalid)?;
        if user.id == 0 {
            user.id = self.next_id("user").await?;
        }
        let ops = vec![
            WriteOp::Put {
                item: Item::new(keys::user(&user.username), META).with(DOC, encode(&user)),
                cond: Cond::NotExists,
            },
            WriteOp::Put {
                item: Item::new(keys::user_id(user.id), META)
                    .with("name", Attr::S(user.username.clone())),
                cond: Cond::NotExists,
            },
            WriteOp::put(Item::new(keys::USERS, &user.username).with("id", Attr::N(user.id))),
        ];
        self.kv.transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { .. } => {
                DirectoryError::Conflict(format!("user {} already exists", user.username))
            }
            e => e.into(),
        })?;
        Ok(user)
    }

    /// Replaces a user record, on the condition that it was not changed
    /// since `previous` was read.
    pub async fn save_user(&self, previous: &User, next: &User) -> Result<()> {
        let op = WriteOp::Put {
            item: Item::new(keys::user(&next.username), META).with(DOC, encode(next)),
            cond: Cond::Eq(DOC.to_owned(), encode(previous)),
        };
        self.kv.write(op).await.map_err(|e| match e {
            KvError::ConditionFailed { .. } => DirectoryError::Conflict(
                "the user was changed by another request; try again".to_owned(),
            ),
            e => e.into(),
        })
    }

    /// Checks a user's password (timing does not reveal whether the user exists).
    pub async fn authenticate_user(&self, name: &str, pass: &str) -> Result<Option<User>> {
        match self.user(name).await? {
            Some(u) if password::verify_password(pass, &u.hash) => Ok(Some(u)),
            Some(_) => Ok(None),
            None => {
                password::verify_nothing(pass);
                Ok(None)
            }
        }
    }

    /// Checks credentials of a user or a robot (`robot$…`): disabled and
    /// expired robots are refused.
    pub async fn authenticate(
        &self,
        name: &str,
        secret: &str,
        now: i64,
    ) -> Result<Option<Principal>> {
        if name.starts_with(ROBOT_PREFIX) {
            let Some(r) = self.robot(name).await? else {
                return Ok(None);
            };
            let ok = password::secret_matches(secret, &r.secret_digest);
            return Ok((ok && !r.disable && !r.expired(now)).then_some(Principal::Robot(r)));
        }
        Ok(self
            .authenticate_user(name, secret)
            .await?
            .map(Principal::User))
    }

    // ---- projects -------------------------------------------------------

    pub async fn project(&self, name: &str) -> Result<Option<Project>> {
        self.get_doc(&keys::project(name), META).await
    }

    pub async fn project_by_id(&self, id: i64) -> Result<Option<Project>> {
        let Some(item) = self.kv.get(&keys::project_id(id), META).await? else {
            return Ok(None);
        };
        match item.s("name") {
            Some(name) => self.project(name).await,
            None => Ok(None),
        }
    }

    /// Creates a project, its owner a project admin of it.
    pub async fn create_project(&self, mut project: Project) -> Result<Project> {
        check_project_name(&project.name)?;
        if self.project(&project.name).await?.is_some() {
            return Err(DirectoryError::Conflict(format!(
                "project {} already exists",
                project.name
            )));
        }
        if project.id == 0 {
            project.id = self.next_id("project").await?;
        }
        let member = Member {
            id: self.next_id("member").await?,
            project: project.name.clone(),
            project_id: project.id,
            entity_id: project.owner_id,
            entity_name: project.owner_name.clone(),
            role: Role::ProjectAdmin.id(),
        };
        let mut ops = vec![
            WriteOp::Put {
                item: Item::new(keys::project(&project.name), META).with(DOC, encode(&project)),
                cond: Cond::NotExists,
            },
            WriteOp::Put {
                item: Item::new(keys::project_id(project.id), META)
                    .with("name", Attr::S(project.name.clone())),
                cond: Cond::NotExists,
            },
            WriteOp::put(
                Item::new(keys::PROJECTS, &project.name)
                    .with("id", Attr::N(project.id))
                    .with("public", Attr::N(i64::from(project.public))),
            ),
        ];
        ops.extend(member_ops(&member));
        self.kv.transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { .. } => {
                DirectoryError::Conflict(format!("project {} already exists", project.name))
            }
            e => e.into(),
        })?;
        Ok(project)
    }

    // ---- members --------------------------------------------------------

    pub async fn member(&self, project: &str, user: &str) -> Result<Option<Member>> {
        self.get_doc(&keys::project(project), &keys::member(user))
            .await
    }

    /// The role of `user` in `project`, if a member.
    pub async fn role(&self, project: &str, user: &str) -> Result<Option<Role>> {
        Ok(self.member(project, user).await?.and_then(|m| m.role()))
    }

    /// Adds or replaces a membership.
    pub async fn put_member(&self, member: &Member) -> Result<()> {
        let mut ops = vec![WriteOp::Check {
            pk: keys::project(&member.project),
            sk: META.to_owned(),
            cond: Cond::Exists,
        }];
        ops.extend(member_ops(member));
        self.kv.transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { .. } => {
                DirectoryError::NotFound(format!("project {} not found", member.project))
            }
            e => e.into(),
        })
    }

    // ---- robots ---------------------------------------------------------

    pub async fn robot(&self, name: &str) -> Result<Option<Robot>> {
        self.get_doc(&keys::robot(name), META).await
    }

    pub async fn robot_by_id(&self, id: i64) -> Result<Option<Robot>> {
        let Some(item) = self.kv.get(&keys::robot_id(id), META).await? else {
            return Ok(None);
        };
        match item.s("name") {
            Some(name) => self.robot(name).await,
            None => Ok(None),
        }
    }

    /// Creates a robot with a new secret, returned once.
    pub async fn create_robot(&self, mut robot: Robot) -> Result<(Robot, String)> {
        let secret = password::new_robot_secret();
        robot.secret_digest = password::secret_digest(&secret);
        if robot.id == 0 {
            robot.id = self.next_id("robot").await?;
        }
        let ops = vec![
            WriteOp::Put {
                item: Item::new(keys::robot(&robot.name), META).with(DOC, encode(&robot)),
                cond: Cond::NotExists,
            },
            WriteOp::Put {
                item: Item::new(keys::robot_id(robot.id), META)
                    .with("name", Attr::S(robot.name.clone())),
                cond: Cond::NotExists,
            },
            WriteOp::put(
                Item::new(keys::ROBOTS, &robot.name)
                    .with("id", Attr::N(robot.id))
                    .with("level", Attr::S(robot.level.clone()))
                    .with("project_id", Attr::N(robot.project_id)),
            ),
        ];
        self.kv.transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { .. } => {
                DirectoryError::Conflict(format!("robot {} already exists", robot.name))
            }
            e => e.into(),
        })?;
        Ok((robot, secret))
    }

    /// Replaces a robot record, conditioned on it being as `previous`.
    pub async fn save_robot(&self, previous: &Robot, next: &Robot) -> Result<()> {
        let op = WriteOp::Put {
            item: Item::new(keys::robot(&next.name), META).with(DOC, encode(next)),
            cond: Cond::Eq(DOC.to_owned(), encode(previous)),
        };
        self.kv.write(op).await.map_err(|e| match e {
            KvError::ConditionFailed { .. } => DirectoryError::Conflict(
                "the robot was changed by another request; try again".to_owned(),
            ),
            e => e.into(),
        })
    }

    // ---- settings and keys ---------------------------------------------

    pub async fn settings(&self) -> Result<Settings> {
        Ok(self
            .get_doc(keys::SETTINGS, META)
            .await?
            .unwrap_or_default())
    }

    pub async fn save_settings(&self, s: &Settings) -> Result<()> {
        self.kv
            .write(WriteOp::put(
                Item::new(keys::SETTINGS, META).with(DOC, encode(s)),
            ))
            .await?;
        Ok(())
    }

    /// Publishes the token service's public keys (for registry functions
    /// that hold no key file).
    pub async fn publish_jwks(&self, jwks: &[super::token::Jwk]) -> Result<()> {
        let item = Item::new(keys::KEYS, keys::JWKS).with(DOC, encode(&jwks));
        if let Some(cur) = self.kv.get(keys::KEYS, keys::JWKS).await?
            && cur.attrs.get(DOC) == item.attrs.get(DOC)
        {
            return Ok(());
        }
        self.kv.write(WriteOp::put(item)).await?;
        Ok(())
    }

    pub async fn jwks(&self) -> Result<Vec<super::token::Jwk>> {
        Ok(self
            .get_doc(keys::KEYS, keys::JWKS)
            .await?
            .unwrap_or_default())
    }

    // ---- sessions -------------------------------------------------------

    /// Starts a cookie session; returns the session id (the cookie value).
    pub async fn create_session(&self, user: &User, now: i64) -> Result<(String, Session)> {
        let id = password::random_token();
        let session = Session {
            user: user.username.clone(),
            csrf: password::random_token(),
            cred: user.cred,
        };
        let item = Item::new(keys::session(&password::secret_digest(&id)), META)
            .with(DOC, encode(&session))
            .with(crate::store::kv::TTL_ATTR, Attr::N(now + SESSION_TTL_SECS));
        self.kv.write(WriteOp::put(item)).await?;
        Ok((id, session))
    }

    pub async fn session(&self, id: &str) -> Result<Option<Session>> {
        self.get_doc(&keys::session(&password::secret_digest(id)), META)
            .await
    }

    pub async fn delete_session(&self, id: &str) -> Result<()> {
        self.kv
            .write(WriteOp::delete(
                keys::session(&password::secret_digest(id)),
                META,
            ))
            .await?;
        Ok(())
    }

    // ---- listing --------------------------------------------------------

    /// One page of an index partition (`USERS`, `PROJECTS`, `ROBOTS`, or a
    /// project's members): sort keys after `after`, at most `limit`.
    pub async fn index_page(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<crate::store::Page> {
        let mut q = Query::prefix(pk, prefix, limit.max(1));
        q.after = after;
        Ok(self.kv.query(&q).await?)
    }

    // ---- bootstrap ------------------------------------------------------

    /// Creates the `admin` user and the public `library` project if they
    /// do not exist (DESIGN §7). Returns the admin password when this call
    /// generated it (to be shown once); an existing admin is left alone.
    pub async fn bootstrap(
        &self,
        admin_password: Option<&str>,
        now: i64,
    ) -> Result<Option<String>> {
        let mut generated = None;
        let admin = match self.user(ADMIN_USER).await? {
            Some(u) => u,
            None => {
                let pass = match admin_password {
                    Some(p) => p.to_owned(),
                    None => {
                        let p = format!("Berth-{}", password::new_robot_secret());
                        generated = Some(p.clone());
                        p
                    }
                };
                let user = User {
                    id: 1,
                    username: ADMIN_USER.to_owned(),
                    email: String::new(),
                    realname: "system admin".to_owned(),
                    comment: "created at first start".to_owned(),
                    admin: true,
                    hash: String::new(),
                    cred: 1,
                    created: now,
                    updated: now,
                };
                match self.create_user(user, &pass).await {
                    Ok(u) => u,
                    // Another instance bootstrapped first: its password stands.
                    Err(DirectoryError::Conflict(_)) => {
                        generated = None;
                        self.user(ADMIN_USER).await?.ok_or_else(|| {
                            DirectoryError::Corrupt("admin vanished during bootstrap".to_owned())
                        })?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if self.project(LIBRARY_PROJECT).await?.is_none() {
            let p = Project {
                id: 1,
                name: LIBRARY_PROJECT.to_owned(),
                public: true,
                owner_id: admin.id,
                owner_name: admin.username.clone(),
                created: now,
                updated: now,
            };
            match self.create_project(p).await {
                Ok(_) | Err(DirectoryError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // Counters start past the bootstrap ids.
        for kind in ["user", "project"] {
            let op = WriteOp::Put {
                item: Item::new(keys::COUNTER, kind).with("n", Attr::N(1)),
                cond: Cond::NotExists,
            };
            match self.kv.write(op).await {
                Ok(()) | Err(KvError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(generated)
    }
}

fn member_ops(m: &Member) -> Vec<WriteOp> {
    vec![
        WriteOp::put(
            Item::new(keys::project(&m.project), keys::member(&m.entity_name)).with(DOC, encode(m)),
        ),
        WriteOp::put(
            Item::new(keys::user(&m.entity_name), keys::member_of(&m.project))
                .with("role", Attr::N(m.role))
                .with("project_id", Attr::N(m.project_id)),
        ),
    ]
}

// ---- management API: listing, updates, deletes ----------------------------

/// Items read per query when walking a whole index partition.
const SCAN_PAGE: usize = 500;
/// Keys per `batch_get` (DynamoDB's limit).
const BATCH_GET: usize = 100;
/// Operations per transaction, leaving room for the final record's own.
const CHUNK_OPS: usize = crate::store::kv::MAX_TRANSACTION_OPS - 10;

/// A fresh credential generation for a new user or robot: random, so a
/// session or refresh token of a deleted namesake never matches it.
pub fn initial_cred() -> i64 {
    i64::from(rand::random::<u32>()) + 1
}

impl Directory {
    /// Every item of a partition under `prefix`, in sort-key order.
    pub async fn scan_partition(&self, pk: &str, prefix: &str) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.index_page(pk, prefix, after, SCAN_PAGE).await?;
            out.extend(page.items);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    async fn docs<T: for<'de> Deserialize<'de>>(
        &self,
        keys: Vec<(String, String)>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET) {
            for item in self.kv.batch_get(chunk).await?.into_iter().flatten() {
                out.push(decode(&item)?);
            }
        }
        Ok(out)
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let idx = self.scan_partition(keys::USERS, "").await?;
        let keys = idx
            .iter()
            .map(|i| (keys::user(&i.sk), META.to_owned()))
            .collect();
        self.docs(keys).await
    }

    /// Every project, by name.
    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        let idx = self.scan_partition(keys::PROJECTS, "").await?;
        let keys = idx
            .iter()
            .map(|i| (keys::project(&i.sk), META.to_owned()))
            .collect();
        self.docs(keys).await
    }

    /// Robots, by full name; with `project_id`, only that project's
    /// (filtered on the index before any record is read).
    pub async fn list_robots(&self, project_id: Option<i64>) -> Result<Vec<Robot>> {
        let idx = self.scan_partition(keys::ROBOTS, "").await?;
        let keys = idx
            .iter()
            .filter(|i| project_id.is_none_or(|p| i.n("project_id") == Some(p)))
            .map(|i| (keys::robot(&i.sk), META.to_owned()))
            .collect();
        self.docs(keys).await
    }

    /// A project's members, by user name.
    pub async fn project_members(&self, project: &str) -> Result<Vec<Member>> {
        let items = self
            .scan_partition(&keys::project(project), keys::MEMBER_PREFIX)
            .await?;
        items.iter().map(decode).collect()
    }

    /// The projects a user is a member of, with the role id there.
    pub async fn memberships(&self, user: &str) -> Result<Vec<(String, i64)>> {
        let items = self
            .scan_partition(&keys::user(user), keys::MEMBER_OF_PREFIX)
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                let p = i.sk.strip_prefix(keys::MEMBER_OF_PREFIX)?;
                Some((p.to_owned(), i.n("role").unwrap_or(0)))
            })
            .collect())
    }

    /// Adds a membership that must not exist yet (the project must).
    pub async fn create_member(&self, member: &Member) -> Result<()> {
        let mut ops = vec![WriteOp::Check {
            pk: keys::project(&member.project),
            sk: META.to_owned(),
            cond: Cond::Exists,
        }];
        let mut pair = member_ops(member);
        if let Some(WriteOp::Put { cond, .. }) = pair.first_mut() {
            *cond = Cond::NotExists;
        }
        ops.extend(pair);
        self.kv.transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { index: 0 } => {
                DirectoryError::NotFound(format!("project {} not found", member.project))
            }
            KvError::ConditionFailed { .. } => DirectoryError::Conflict(format!(
                "{} is already a member of project {}",
                member.entity_name, member.project
            )),
            e => e.into(),
        })
    }

    /// Replaces a membership, on the condition that it is still `previous`.
    pub async fn update_member(&self, previous: &Member, next: &Member) -> Result<()> {
        let mut ops = member_ops(next);
        if let Some(WriteOp::Put { cond, .. }) = ops.first_mut() {
            *cond = Cond::Eq(DOC.to_owned(), encode(previous));
        }
        self.kv.transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { .. } => DirectoryError::Conflict(
                "the member was changed by another request; try again".to_owned(),
            ),
            e => e.into(),
        })
    }

    /// Removes a membership (both of its items).
    pub async fn delete_member(&self, m: &Member) -> Result<()> {
        self.kv
            .transact(member_delete_ops(&m.project, &m.entity_name))
            .await?;
        Ok(())
    }

    /// Replaces a project record (and its listing entry), on the condition
    /// that it is still `previous`.
    pub async fn save_project(&self, previous: &Project, next: &Project) -> Result<()> {
        let ops = vec![
            WriteOp::Put {
                item: Item::new(keys::project(&next.name), META).with(DOC, encode(next)),
                cond: Cond::Eq(DOC.to_owned(), encode(previous)),
            },
            WriteOp::put(
                Item::new(keys::PROJECTS, &next.name)
                    .with("id", Attr::N(next.id))
                    .with("public", Attr::N(i64::from(next.public))),
            ),
        ];
        self.kv.transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { .. } => DirectoryError::Conflict(
                "the project was changed by another request; try again".to_owned(),
            ),
            e => e.into(),
        })
    }

    /// The number of repositories in a project: the counter the registry
    /// keeps in the same transaction as it creates or deletes one.
    pub async fn project_repo_count(&self, project: &str) -> Result<usize> {
        use crate::registry::keys;
        let item = self
            .kv
            .get(&keys::project_stats(project), keys::META)
            .await?;
        Ok(item
            .and_then(|i| i.n(keys::attr::REPOS))
            .map_or(0, |n| usize::try_from(n).unwrap_or(0)))
    }

    /// Repository counts of many projects in one batch read.
    pub async fn project_repo_counts(&self, projects: &[String]) -> Result<Vec<usize>> {
        use crate::registry::keys;
        let mut out = Vec::with_capacity(projects.len());
        for chunk in projects.chunks(BATCH_GET) {
            let lookups: Vec<(String, String)> = chunk
                .iter()
                .map(|p| (keys::project_stats(p), keys::META.to_owned()))
                .collect();
            for item in self.kv.batch_get(&lookups).await? {
                let n = item.and_then(|i| i.n(keys::attr::REPOS)).unwrap_or(0);
                out.push(usize::try_from(n).unwrap_or(0));
            }
        }
        Ok(out)
    }

    /// Deletes a project with its memberships and robot accounts. Members
    /// and robots go first (in chunks), then the record itself in one
    /// transaction with whatever of them appeared meanwhile, so no
    /// membership outlives its project to grant access to a namesake.
    pub async fn delete_project(&self, p: &Project) -> Result<()> {
        let dependants = self.project_dependant_ops(p).await?;
        for chunk in dependants.chunks(CHUNK_OPS) {
            self.kv.transact(chunk.to_vec()).await?;
        }
        let mut ops = vec![
            WriteOp::Delete {
                pk: keys::project(&p.name),
                sk: META.to_owned(),
                cond: Cond::Exists,
            },
            WriteOp::delete(keys::project_id(p.id), META),
            WriteOp::delete(keys::PROJECTS, &p.name),
        ];
        let late = self.project_dependant_ops(p).await?;
        if late.len() + ops.len() > crate::store::kv::MAX_TRANSACTION_OPS {
            return Err(DirectoryError::Kv(KvError::Conflict));
        }
        ops.extend(late);
        self.kv.transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { .. } => {
                DirectoryError::NotFound(format!("project {} not found", p.name))
            }
            e => e.into(),
        })
    }

    async fn project_dependant_ops(&self, p: &Project) -> Result<Vec<WriteOp>> {
        let mut ops = Vec::new();
        for m in self.project_members(&p.name).await? {
            ops.extend(member_delete_ops(&p.name, &m.entity_name));
        }
        for r in self.list_robots(Some(p.id)).await? {
            ops.extend(robot_delete_ops(&r));
        }
        Ok(ops)
    }

    /// Deletes a user with its memberships.
    pub async fn delete_user(&self, u: &User) -> Result<()> {
        let memberships = self.memberships(&u.username).await?;
        let ops: Vec<WriteOp> = memberships
            .iter()
            .flat_map(|(p, _)| member_delete_ops(p, &u.username))
            .collect();
        for chunk in ops.chunks(CHUNK_OPS) {
            self.kv.transact(chunk.to_vec()).await?;
        }
        let ops = vec![
            WriteOp::Delete {
                pk: keys::user(&u.username),
                sk: META.to_owned(),
                cond: Cond::Exists,
            },
            WriteOp::delete(keys::user_id(u.id), META),
            WriteOp::delete(keys::USERS, &u.username),
        ];
        self.kv.transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { .. } => {
                DirectoryError::NotFound(format!("user {} not found", u.username))
            }
            e => e.into(),
        })
    }

    /// Deletes a robot account.
    pub async fn delete_robot(&self, r: &Robot) -> Result<()> {
        let mut ops = robot_delete_ops(r);
        if let Some(WriteOp::Delete { cond, .. }) = ops.first_mut() {
            *cond = Cond::Exists;
        }
        self.kv.transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { .. } => {
                DirectoryError::NotFound(format!("robot {} not found", r.name))
            }
            e => e.into(),
        })
    }

    /// A session with the epoch second it expires at.
    pub async fn session_with_expiry(&self, id: &str) -> Result<Option<(Session, i64)>> {
        let pk = keys::session(&password::secret_digest(id));
        let Some(item) = self.kv.get(&pk, META).await? else {
            return Ok(None);
        };
        let expires = item.n(crate::store::kv::TTL_ATTR).unwrap_or(0);
        Ok(Some((decode(&item)?, expires)))
    }

    /// Extends a session to [`SESSION_TTL_SECS`] from `now` (only while it
    /// still exists: a logout in between wins).
    pub async fn renew_session(&self, id: &str, session: &Session, now: i64) -> Result<()> {
        let pk = keys::session(&password::secret_digest(id));
        let item = Item::new(pk, META)
            .with(DOC, encode(session))
            .with(crate::store::kv::TTL_ATTR, Attr::N(now + SESSION_TTL_SECS));
        match self
            .kv
            .write(WriteOp::Put {
                item,
                cond: Cond::Exists,
            })
            .await
        {
            Ok(()) | Err(KvError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn member_delete_ops(project: &str, user: &str) -> Vec<WriteOp> {
    vec![
        WriteOp::delete(keys::project(project), keys::member(user)),
        WriteOp::delete(keys::user(user), keys::member_of(project)),
    ]
}

fn robot_delete_ops(r: &Robot) -> Vec<WriteOp> {
    vec![
        WriteOp::delete(keys::robot(&r.name), META),
        WriteOp::delete(keys::robot_id(r.id), META),
        WriteOp::delete(keys::ROBOTS, &r.name),
    ]
}
