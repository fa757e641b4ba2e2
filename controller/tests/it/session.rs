//! The web UI as a signed-in admin sees it: a session cookie, and pages read with it.

use crate::common::Controller;

impl Controller {
    /// Signs the admin in; the session cookie (`name=value`).
    pub async fn admin_session(&self) -> String {
        let password =
            std::fs::read_to_string(self.dir.path().join("state/admin-password")).unwrap();
        let r = self.post_login("admin", password.trim()).await;
        r.header("set-cookie")
            .and_then(|c| c.split(';').next().map(str::to_owned))
            .expect("a session cookie")
    }

    /// A page with the session `cookie`: status and text.
    pub async fn page(&self, cookie: &str, path: &str) -> (u16, String) {
        let r = self
            .request("GET", path, vec![("cookie", cookie.to_owned())], None)
            .await;
        (r.status, r.text())
    }

    /// Posts a form from this controller's own origin with the session `cookie`: status,
    /// where it redirects (empty when it does not) and the text.
    pub async fn post_form(
        &self,
        cookie: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String, String) {
        let enc = storefleet_controller::fmt::url_encode;
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        let r = self
            .send(
                storefleet_support::http::Request {
                    method: "POST",
                    url: &format!("{}{path}", self.url()),
                    headers: vec![("origin", self.url()), ("cookie", cookie.to_owned())],
                    body: Some((
                        "application/x-www-form-urlencoded",
                        body.join("&").into_bytes(),
                    )),
                },
                std::time::Duration::from_secs(30),
            )
            .await
            .unwrap();
        let to = r.header("location").unwrap_or_default().to_owned();
        (r.status, to, r.text())
    }
}
