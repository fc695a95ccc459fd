//! First boot: the site file an installer dropped on the boot partition.
//!
//! If `<boot-dir>/site.toml` exists, `/etc/sited/site.toml` does not, and no import happened
//! before (`<state-dir>/boot-imported`), the file is copied into place: written beside it,
//! synced, and renamed over, so a crash never leaves half a file.

use std::io::Write as _;
use std::path::Path;

/// What the import did.
#[derive(Debug, PartialEq, Eq)]
pub enum Import {
    /// Nothing to import.
    Nothing,
    /// The file was imported; its text.
    Imported(String),
}

/// Imports the boot partition's site file once.
pub fn import(boot_dir: &Path, config: &Path, state: &Path) -> Result<Import, String> {
    let source = boot_dir.join("site.toml");
    let marker = state.join("boot-imported");
    if config.exists() || marker.exists() || !source.exists() {
        return Ok(Import::Nothing);
    }
    let text = std::fs::read_to_string(&source)
        .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    if let Some(dir) = config.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = config.with_extension("toml.import");
    let mut f =
        std::fs::File::create(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, config)
        .map_err(|e| format!("cannot move {} into place: {e}", tmp.display()))?;
    std::fs::create_dir_all(state)
        .and_then(|()| std::fs::write(&marker, source.display().to_string()))
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
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
        assert_eq!(import(&boot, &config, &state), Ok(Import::Nothing));
        std::fs::write(boot.join("site.toml"), "x = 1\n").unwrap();
        assert_eq!(
            import(&boot, &config, &state),
            Ok(Import::Imported("x = 1\n".into()))
        );
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "x = 1\n");
        std::fs::remove_file(&config).unwrap();
        assert_eq!(
            import(&boot, &config, &state),
            Ok(Import::Nothing),
            "only once"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
