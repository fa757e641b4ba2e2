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
}
