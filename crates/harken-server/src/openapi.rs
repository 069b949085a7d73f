//! `GET /openapi.json`: the OpenAPI 3.1 description of every endpoint, kept as a file
//! (`openapi.json`, checked with `openapi-spec-validator`). A test below fails when a route is
//! served that the document does not describe, or described but not served.

use axum::routing::get;
use axum::Router;

use crate::web::asset;
use crate::AppState;

const SPEC: &str = include_str!("openapi.json");

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| asset("application/json", SPEC)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// The web page and its assets are not API.
    const NOT_API: [&str; 4] = ["/", "/assets/app.css", "/assets/app.js", "/favicon.ico"];

    /// Every `.route("<path>", <method>(...` in the crate's sources, as (path, method).
    fn served_routes(dir: &Path, out: &mut BTreeSet<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                served_routes(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split(".route(\"").skip(1) {
                    let (route, rest) = piece.split_once('"').unwrap();
                    let method = rest.trim_start_matches([',', ' ']).split('(').next().unwrap();
                    if !NOT_API.contains(&route) && ["get", "post"].contains(&method) {
                        out.insert((route.to_owned(), method.to_owned()));
                    }
                }
            }
        }
    }

    #[test]
    fn the_document_describes_exactly_the_routes_served() {
        let spec: serde_json::Value = serde_json::from_str(SPEC).expect("openapi.json is JSON");
        assert_eq!(spec["openapi"], "3.1.0");
        let described: BTreeSet<(String, String)> = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (path.clone(), m.clone())))
            .collect();
        let mut served = BTreeSet::new();
        served_routes(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut served);
        assert!(served.len() >= 13, "the route scan finds the routes: {served:?}");
        assert_eq!(described, served, "openapi.json against the router's routes");
    }
}
