//! The local "API Gateway" stack: every HTTP function's router in one
//! process, behind a server that selects routes as API Gateway does (from
//! `infra/routes.json`) and passes each request through the harness
//! ([`super::apigw`]): events, base64 bodies, the 10 MiB and 6 MiB limits.
//! What works here works through Lambda; what Lambda refuses is refused
//! here, the same way.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Response;

use super::apigw::{Gateway, GatewayConfig, LambdaFunction};
use super::functions::router_for;
use super::routes::{RouteTable, RoutesError};
use crate::http::AppState;

/// Routes, the gateway, and one [`LambdaFunction`] per function name.
pub struct Stack {
    routes: RouteTable,
    gateway: Gateway,
    functions: BTreeMap<String, LambdaFunction>,
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Routes(#[from] RoutesError),
    #[error("a route sends requests to function {0:?}, which this stack does not have")]
    MissingFunction(String),
}

impl Stack {
    /// A stack over explicit routes and functions; every function a route
    /// names must be present.
    pub fn new(
        routes: RouteTable,
        gateway: Gateway,
        functions: impl IntoIterator<Item = LambdaFunction>,
    ) -> Result<Self, StackError> {
        let functions: BTreeMap<String, LambdaFunction> = functions
            .into_iter()
            .map(|f| (f.name().to_owned(), f))
            .collect();
        if let Some(missing) = routes
            .functions()
            .into_iter()
            .find(|f| !functions.contains_key(*f))
        {
            return Err(StackError::MissingFunction(missing.to_owned()));
        }
        Ok(Self {
            routes,
            gateway,
            functions,
        })
    }

    /// Berth's HTTP functions over `state`, routed by the built-in
    /// `infra/routes.json`.
    pub fn registry(state: Arc<AppState>, gateway: GatewayConfig) -> Result<Self, StackError> {
        let routes = RouteTable::builtin()?;
        let mut functions = Vec::new();
        for name in routes.functions() {
            let router = router_for(name, &state)
                .ok_or_else(|| StackError::MissingFunction(name.to_owned()))?;
            functions.push(LambdaFunction::new(name, router));
        }
        Self::new(routes, Gateway::new(gateway), functions)
    }

    /// Sends one request the way API Gateway would.
    pub async fn call(&self, req: Request) -> Response<Body> {
        let selected = self.routes.select(req.method().as_str(), req.uri().path());
        match self.functions.get(&selected.function) {
            Some(function) => self.gateway.handle(function, &selected, req).await,
            // Unreachable: `new` checked that every routed function exists.
            None => {
                let mut resp = Response::new(Body::from(r#"{"message":"Internal Server Error"}"#));
                *resp.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                resp
            }
        }
    }

    /// The stack as an axum router (for [`serve`] or `oneshot`).
    pub fn into_router(self) -> Router {
        Router::new().fallback(dispatch).with_state(Arc::new(self))
    }
}

async fn dispatch(State(stack): State<Arc<Stack>>, req: Request) -> Response<Body> {
    stack.call(req).await
}

/// Serves `stack` on `listener` under `limits` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    stack: Stack,
    limits: crate::http::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::http::serve(listener, stack.into_router(), limits, shutdown).await
}
