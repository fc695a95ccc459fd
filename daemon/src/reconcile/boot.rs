//! First boot: the site file an installer dropped on the boot partition.
//!
//! If `<boot-dir>/site.toml` exists, `/etc/sited/site.toml` does not, and no import happened
//! before (`<state-dir>/boot-imported`), the file is copied into place: written beside it,
//! synced, and renamed over, so a crash never leaves half a file.

use std::path::Path;

use crate::base::Error;
use crate::base::fs::write_atomic;

/// What the import did.
#[derive(Debug, PartialEq, Eq)]
pub enum Import {
    /// Nothing to import.
    Nothing,
    /// The file was imported; its text.
    Imported(String),
}

/// Imports the boot partition's site secret (`site.secret`) beside the site file, once, when
/// there is none yet: mode 0600, as it is the site's membership.
pub fn import_secret(boot_dir: &Path, config: &Path) -> Result<bool, Error> {
    let source = boot_dir.join("site.secret");
    let target = config.with_file_name("site.secret");
    if target.exists() || !source.exists() {
        return Ok(false);
    }
    let text = std::fs::read(&source)
        .map_err(|e| Error::from(e).context(format!("cannot read {}", source.display())))?;
    write_atomic(&target, &text)
        .map_err(|e| Error::from(e).context(format!("cannot write {}", target.display())))?;
    Ok(true)
}

/// Imports the boot partition's site file once.
pub fn import(boot_dir: &Path, config: &Path, state: &Path) -> Result<Import, Error> {
    let source = boot_dir.join("site.toml");
    let marker = state.join("boot-imported");
    if config.exists() || marker.exists() || !source.exists() {
        return Ok(Import::Nothing);
    }
    let text = std::fs::read_to_string(&source)
        .map_err(|e| Error::from(e).context(format!("cannot read {}", source.display())))?;
    write_atomic(config, text.as_bytes())
        .map_err(|e| Error::from(e).context(format!("cannot write {}", config.display())))?;
    write_atomic(&marker, source.display().to_string().as_bytes())
        .map_err(|e| Error::from(e).context(format!("cannot write {}", marker.display())))?;
    Ok(Import::Imported(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_once_and_never_over_an_existing_file() {
        let root = std::env::temp_dir().join(format!("sited-boot-{}", std::process::id()));
        let (boot, etc, state) = (root.join("boot"), root.join("etc"), root.join("state"));
        std::fs::create_dir_all(&boot).unwrap();
        let config = etc.join("site.toml");
        assert_eq!(import(&boot, &config, &state).unwrap(), Import::Nothing);
        std::fs::write(boot.join("site.toml"), "x = 1\n").unwrap();
        assert_eq!(
            import(&boot, &config, &state).unwrap(),
            Import::Imported("x = 1\n".into())
        );
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "x = 1\n");
        std::fs::remove_file(&config).unwrap();
        assert_eq!(
            import(&boot, &config, &state).unwrap(),
            Import::Nothing,
            "only once"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
