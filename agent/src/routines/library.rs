//! The retail routines shipped with the agent (`agent/routines/`, installed beside the
//! agent's config for operators to copy into `routines.d/` and adjust: queue names,
//! services, paths). Each says in its header what it needs allowed.

/// `(file name, document)` of every shipped routine.
pub const LIBRARY: [(&str, &str); 5] = [
    (
        "receipt-printer-unstick.toml",
        include_str!("../../routines/receipt-printer-unstick.toml"),
    ),
    (
        "pos-service-restart.toml",
        include_str!("../../routines/pos-service-restart.toml"),
    ),
    (
        "log-cleanup.toml",
        include_str!("../../routines/log-cleanup.toml"),
    ),
    (
        "nightly-backup.toml",
        include_str!("../../routines/nightly-backup.toml"),
    ),
    (
        "cert-expiry-warning.toml",
        include_str!("../../routines/cert-expiry-warning.toml"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RoutinesSection;
    use crate::routines::shell::Prepared;
    use crate::routines::Routine;

    #[test]
    fn every_shipped_routine_is_valid_and_refused_until_allowed() {
        let open = RoutinesSection {
            allow: [
                "cups.*",
                "service.*",
                "files.*",
                "backup.*",
                "disk.check",
                "http.check",
                "tls.cert_expiry",
            ]
            .map(String::from)
            .to_vec(),
            services: vec!["pos-server".into()],
            paths: ["/var/log/pos", "/srv/store", "/srv/backup"]
                .map(std::path::PathBuf::from)
                .to_vec(),
            ..RoutinesSection::default()
        };
        for (file, text) in LIBRARY {
            let r = Routine::parse(text, file).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                format!("{}.toml", r.name),
                file,
                "file named after its routine"
            );
            Prepared::new(r.clone(), &open).unwrap_or_else(|e| panic!("{file}: {e}"));
            let acts = r
                .steps
                .iter()
                .any(|s| s.kind == crate::routines::StepKind::Action);
            let refused = Prepared::new(r, &RoutinesSection::default());
            assert_eq!(
                refused.is_err(),
                acts,
                "{file}: the defaults allow only looking"
            );
        }
    }
}
