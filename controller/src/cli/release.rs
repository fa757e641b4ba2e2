//! `storefleet release`: make the release key, publish an agent binary signed with it,
//! list what is published. Signing happens here, where the release is built: the private
//! key never goes to the controller, which knows only its public half.

use std::path::PathBuf;

use clap::Subcommand;
use storefleet_protocol::release::Release;
use storefleet_protocol::SigningKey;

use super::table::{json_of, output, render, rows};
use super::{CliError, Client};

/// `release` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReleaseCmd {
    /// Make a release key (PKCS#8, mode 0600) and print its public half for
    /// `releases.public_key` in the controller's config.
    Keygen {
        /// Where to write the private key (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign an agent binary with the release key and publish it.
    Publish {
        /// The agent binary.
        file: PathBuf,
        /// Its version (what the binary reports).
        #[arg(long)]
        version: String,
        /// Its architecture: x86_64 or aarch64.
        #[arg(long)]
        arch: String,
        /// The release key made by `release keygen`.
        #[arg(long)]
        key: PathBuf,
    },
    /// Published releases.
    List,
}

fn local(message: String) -> CliError {
    CliError::Api { status: 0, message }
}

/// Makes a release key at `out` (needs no controller).
pub fn keygen(out: &std::path::Path) -> Result<String, CliError> {
    if out.exists() {
        return Err(local(format!(
            "{} exists; a release key is never overwritten",
            out.display()
        )));
    }
    let key = SigningKey::generate().map_err(|e| local(e.to_string()))?;
    storefleet_support::keyfile::write_private(out, key.pkcs8())
        .map_err(|e| local(e.to_string()))?;
    Ok(format!(
        "wrote {}; keep it where releases are built, not on the controller\n\
         controller config:\n[releases]\npublic_key = \"{}\"\n",
        out.display(),
        key.public_key().to_base64()
    ))
}

/// Runs a `release` subcommand.
pub async fn run(client: &Client, cmd: ReleaseCmd, json_out: bool) -> Result<String, CliError> {
    match cmd {
        ReleaseCmd::Keygen { out } => keygen(&out),
        ReleaseCmd::Publish {
            file,
            version,
            arch,
            key,
        } => {
            let read =
                |p: &PathBuf| std::fs::read(p).map_err(|e| local(format!("{}: {e}", p.display())));
            let k = SigningKey::from_pkcs8(&read(&key)?)
                .map_err(|e| local(format!("{}: {e}", key.display())))?;
            let binary = read(&file)?;
            let r =
                Release::sign(&version, &arch, &binary, &k).map_err(|e| local(e.to_string()))?;
            let v = json_of(&client.publish_release(&r, binary).await?);
            Ok(output(json_out, &v, format!(
                "published {version} for {arch}: {} bytes, sha256 {}\npush it: storefleet task push --update {version} --select all --canary 1 --waves 10,50,100\n",
                r.size, r.sha256
            )))
        }
        ReleaseCmd::List => {
            let v = json_of(&client.releases().await?);
            let table = render(
                &["VERSION", "ARCH", "SIZE", "SHA256", "PUBLISHED BY"],
                &rows(&v, &["version", "arch", "size", "sha256", "published_by"]),
            );
            Ok(output(json_out, &v, table))
        }
    }
}
